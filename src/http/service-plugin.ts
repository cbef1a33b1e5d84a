// Puts the identity service (built by the composition root) on the app: the resolver, the plan
// builders and the username check; reports its sources to the metrics; closes them with the app.
import fp from 'fastify-plugin';
import type { Resolver } from '../identity/cache/resolver.js';
import type { SharedTierStatus } from '../identity/cache/shared-tier.js';
import type { Identity, IdentitySource } from '../identity/types.js';
import type { explainPlan, PlanOutcome } from '../plan/build.js';
import type { SpawnPlan } from '../plan/schema.js';

/** What the HTTP layer needs of the identity service. */
export interface IdentityService {
  sources: readonly IdentitySource[];
  resolver: Resolver<PlanOutcome>;
  /** The cache tier replicas share, when configured. */
  shared?: { status(): SharedTierStatus } | undefined;
  plans: {
    build(identity: Identity): SpawnPlan;
    explain(identity: Identity): ReturnType<typeof explainPlan>;
  };
  checkUsername(name: string): void;
  close(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    identity: IdentityService;
  }
}

export const servicePlugin = fp(
  async (app, opts: { service: IdentityService }) => {
    const { service } = opts;
    app.metrics.observe({
      cacheEntries: service.resolver.size,
      sources: () => service.sources.map((s) => ({ name: s.name, type: s.type, up: s.health().up })),
      shared: service.shared === undefined ? undefined : () => service.shared?.status().state === 'up',
    });
    app.decorate('identity', service);
    app.addHook('onClose', async () => {
      await service.close();
    });
  },
  { name: 'idmount-service', dependencies: ['idmount-metrics'] },
);
