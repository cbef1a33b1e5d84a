// Builds the source chain and the resolver for an app, and closes the sources with the app.
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { createHeapTrimmer } from '../heap-trim.js';
import type { Resolver } from '../identity/resolver.js';
import { createIdentityService } from '../identity/service.js';
import type { IdentitySource } from '../identity/types.js';
import type { PlanDeriver, PlanOutcome } from '../mounts/spawn-plan.js';
import type { createUsernameCheck } from '../policy/policy.js';

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
    const trimmer = createHeapTrimmer({ idleMs: config.cache.trimAfterIdle, log });
    const events = app.metrics.events;
    const { sources, plans, resolver, checkUsername } = createIdentityService(config, {
      log,
      baseDir: opts.baseDir,
      sources: opts.sources,
      events: {
        cache: events.cache,
        lookup(result, seconds) {
          events.lookup(result, seconds);
          trimmer.noteFill();
        },
      },
      now: opts.now,
    });
    app.metrics.observe({
      cacheEntries: resolver.size,
      sources: () => sources.map((s) => ({ name: s.name, type: s.type, up: s.health().up })),
    });
    app.decorate('resolver', resolver);
    app.decorate('plans', plans);
    app.decorate('checkUsername', checkUsername);
    app.addHook('onClose', async () => {
      trimmer.close();
      await resolver.close();
    });
  },
  { name: 'idmount-resolver', dependencies: ['idmount-metrics'] },
);
