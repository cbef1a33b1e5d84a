// Probes and metrics for Kubernetes, and the sources' detailed state for admins. Readiness means
// "able to serve": it does not fail when a directory is down, because cached users must keep
// spawning on every replica; it shows only whether each source is up — the details (bind DNs,
// error texts) are behind users:read at /status (./status.ts).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { HealthSchema, ReadySchema } from '../schemas.js';

export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Liveness.', response: { 200: HealthSchema } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness, with whether each directory source is up.',
        response: { 200: ReadySchema },
      },
    },
    async () => ({
      status: 'ready' as const,
      sources: app.identity.sources.map((s) => ({ name: s.name, type: s.type, up: s.health().up })),
    }),
  );

  app.get(
    '/metrics',
    { schema: { tags: ['health'], summary: 'Prometheus metrics.', produces: ['text/plain'] } },
    async (_request, reply) => {
      reply.type(app.metrics.registry.contentType);
      return app.metrics.registry.metrics();
    },
  );
};
