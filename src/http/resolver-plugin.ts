// Builds the source chain and the resolver for an app, and closes the sources with the app.
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createResolver, type Resolver } from '../identity/resolver.js';
import { createSource } from '../identity/sources/registry.js';
import type { IdentitySource } from '../identity/types.js';
import { createPlanDeriver, type PlanDeriver, type PlanOutcome } from '../mounts/spawn-plan.js';
import { createUsernameCheck } from '../policy/policy.js';

declare module 'fastify' {
  interface FastifyInstance {
    resolver: Resolver<PlanOutcome>;
    plans: PlanDeriver;
    checkUsername: ReturnType<typeof createUsernameCheck>;
  }
}

export interface ResolverPluginOptions {
  config: Config;
  baseDir: string;
  /** Sources built by the caller (tests, the CLI); otherwise built from config.sources. */
  sources?: IdentitySource[];
  now?: () => number;
}

export const resolverPlugin = fp(
  async (app, opts: ResolverPluginOptions) => {
    const { config } = opts;
    // Fastify's logger is pino; its declared type is a narrower interface.
    const log = app.log as unknown as Logger;
    const sources =
      opts.sources ??
      config.sources.map((s, i) => {
        try {
          return createSource(s, { log, baseDir: opts.baseDir });
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
      events: app.metrics.events,
      now: opts.now,
    });
    app.metrics.observe({
      cacheEntries: resolver.size,
      sources: () => sources.map((s) => ({ name: s.name, type: s.type, up: s.health().up })),
    });
    app.decorate('resolver', resolver);
    app.decorate('plans', plans);
    app.decorate('checkUsername', createUsernameCheck(config.policy));
    app.addHook('onClose', async () => resolver.close());
  },
  { name: 'idmount-resolver', dependencies: ['idmount-metrics'] },
);
