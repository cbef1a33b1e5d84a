// The identity service as the API and the CLI both use it: the source chain built from config,
// the resolver with its cache, the plan deriver and the username check, wired the same way.
import type { Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createPlanDeriver } from '../mounts/spawn-plan.js';
import { createUsernameCheck } from '../policy/policy.js';
import { createResolver, type ResolverEvents } from './resolver.js';
import { createSource } from './sources/registry.js';
import type { IdentitySource } from './types.js';

export interface IdentityServiceOptions {
  log: Logger;
  /** Relative paths in source configs resolve against this folder. */
  baseDir: string;
  /** Prebuilt sources (tests); otherwise built from config.sources. */
  sources?: IdentitySource[] | undefined;
  events?: ResolverEvents | undefined;
  now?: (() => number) | undefined;
}

export function createIdentityService(config: Config, options: IdentityServiceOptions) {
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
  const plans = createPlanDeriver(config);
  const resolver = createResolver({
    sources,
    cache: config.cache,
    merge: config.merge,
    derive: plans.derive,
    log,
    events: options.events,
    now: options.now,
  });
  return { sources, plans, resolver, checkUsername: createUsernameCheck(config.policy) };
}
