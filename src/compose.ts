// The composition root of the identity service, as the API and the CLI both use it: the sources
// built from config, the chain over them, the cache rules over an in-process store (and, when
// configured, the shared tier behind it), the plan for each identity, and the username check —
// wired the same way everywhere.
import type { Logger } from 'pino';
import { ConfigError } from './config/load.js';
import type { IdentityService } from './http/service-plugin.js';
import { createResolver, type Resolver, type ResolverEvents } from './identity/cache/resolver.js';
import {
  createSharedTier,
  identityFingerprint,
  type SharedTier,
  type SharedTierEvents,
} from './identity/cache/shared-tier.js';
import { createMemoryStore } from './identity/cache/store.js';
import { createChain } from './identity/chain.js';
import { createSource } from './identity/sources/registry.js';
import type { Identity, IdentitySource } from './identity/types.js';
import { buildPlan, derivePlan, explainPlan, type PlanOutcome } from './plan/build.js';
import { createUsernameCheck } from './policy/policy.js';
import type { Config } from './settings.js';

export interface IdentityServiceOptions {
  log: Logger;
  /** Relative paths in source configs resolve against this folder. */
  baseDir: string;
  /** Prebuilt sources (tests); otherwise built from config.sources. */
  sources?: IdentitySource[] | undefined;
  events?: ResolverEvents | undefined;
  sharedEvents?: SharedTierEvents | undefined;
  now?: (() => number) | undefined;
}

export function createIdentityService(config: Config, options: IdentityServiceOptions): IdentityService {
  const { log, baseDir } = options;
  const store = createMemoryStore(config.cache);
  const shared = config.cache.shared === undefined ? undefined : sharedTierFor(config, options, store.size);
  const sources =
    options.sources ??
    config.sources.map((s, i) => {
      try {
        return createSource(s, { log, baseDir, slices: shared });
      } catch (err) {
        // A source that cannot even start (unreadable file, bad CA) is a configuration problem.
        throw new ConfigError('config', [`sources[${i}] (${s.name}): ${(err as Error).message}`]);
      }
    });
  const chain = createChain(sources, config.merge);
  const resolver: Resolver<PlanOutcome> = createResolver({
    chain,
    store,
    cache: config.cache,
    derive: (identity) => derivePlan(identity, config),
    // An identity whose plan policy refuses is never served from (or given to) the shared tier.
    usable: (outcome) => outcome.ok,
    shared: shared?.store,
    log,
    events: options.events,
    now: options.now,
  });
  shared?.onEviction((name) => resolver.forget(name));
  shared?.start();
  return {
    sources,
    resolver,
    shared,
    plans: {
      build: (identity: Identity) => buildPlan(identity, config),
      explain: (identity: Identity) => explainPlan(identity, config),
    },
    checkUsername: createUsernameCheck(config.policy),
    close: async () => {
      await chain.close();
      await shared?.close();
    },
  };
}

function sharedTierFor(
  config: Config,
  options: IdentityServiceOptions,
  localEntries: () => number,
): SharedTier {
  const settings = config.cache.shared as NonNullable<Config['cache']['shared']>;
  try {
    return createSharedTier(settings, {
      log: options.log.child({ component: 'shared-cache' }),
      cache: config.cache,
      fingerprint: identityFingerprint({ sources: config.sources, merge: config.merge }),
      events: options.sharedEvents,
      localEntries,
      now: options.now,
    });
  } catch (err) {
    // An unreadable CA file, say: the configuration's fault, named by its key.
    throw new ConfigError('config', [`cache.shared: ${(err as Error).message}`]);
  }
}
