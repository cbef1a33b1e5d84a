// The composition root of the identity service, as the API and the CLI both use it: the sources
// built from config, the chain over them, the cache rules over an in-process store, the plan for
// each identity, and the username check — wired the same way everywhere.
import type { Logger } from 'pino';
import { ConfigError } from './config/load.js';
import type { IdentityService } from './http/service-plugin.js';
import { createResolver, type Resolver, type ResolverEvents } from './identity/cache/resolver.js';
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
  now?: (() => number) | undefined;
}

export function createIdentityService(config: Config, options: IdentityServiceOptions): IdentityService {
  const { log, baseDir } = options;
  const sources =
    options.sources ??
    config.sources.map((s, i) => {
      try {
        return createSource(s, { log, baseDir });
      } catch (err) {
        // A source that cannot even start (unreadable file, bad CA) is a configuration problem.
        throw new ConfigError('config', [`sources[${i}] (${s.name}): ${(err as Error).message}`]);
      }
    });
  const chain = createChain(sources, config.merge);
  const resolver: Resolver<PlanOutcome> = createResolver({
    chain,
    store: createMemoryStore(config.cache),
    cache: config.cache,
    derive: (identity) => derivePlan(identity, config),
    log,
    events: options.events,
    now: options.now,
  });
  return {
    sources,
    resolver,
    plans: {
      build: (identity: Identity) => buildPlan(identity, config),
      explain: (identity: Identity) => explainPlan(identity, config),
    },
    checkUsername: createUsernameCheck(config.policy),
    close: () => chain.close(),
  };
}
