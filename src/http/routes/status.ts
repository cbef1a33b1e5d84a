// GET /status: what this replica depends on, for admins — each directory source and the shared
// cache tier. Authenticated (it names servers), and apart from /readyz on purpose: neither a
// directory nor Redis being down may take a replica out of the Service.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ProblemSchema, StatusSchema } from '../schemas.js';

export const statusRoutes: FastifyPluginAsyncZod = async (app) => {
  const problem = { content: { 'application/problem+json': { schema: ProblemSchema } } };
  app.get(
    '/status',
    {
      onRequest: app.requireScope('users:read'),
      schema: {
        tags: ['health'],
        summary: "This replica's directory sources and shared cache tier, as it sees them.",
        security: [{ bearer: [] }],
        response: {
          200: StatusSchema,
          401: { description: 'UNAUTHENTICATED', ...problem },
          403: { description: 'FORBIDDEN', ...problem },
          429: { description: 'RATE_LIMITED', ...problem },
        },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      const { sources, resolver, shared } = app.identity;
      return {
        sources: sources.map((s) => ({ name: s.name, type: s.type, ...s.health() })),
        cache: { entries: resolver.size(), shared: shared?.status() ?? null },
      };
    },
  );
};
