// /users routes: the identity (admins), the spawn plan (the hub, admins), cache eviction (admins).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { IdmountError } from '../../errors.js';
import type { Resolution } from '../../identity/cache/resolver.js';
import type { PlanOutcome } from '../../plan/build.js';
import { planBody } from '../../plan/guard.js';
import type { SpawnPlan } from '../../plan/schema.js';
import {
  CacheEvictedSchema,
  ExplainQuery,
  IdentitySchema,
  ProblemSchema,
  SpawnPlanSchema,
  UsernameParams,
} from '../schemas.js';

const errors = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: PROBLEM_DESCRIPTIONS[s],
        content: { 'application/problem+json': { schema: ProblemSchema } },
      },
    ]),
  );

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'INVALID_USERNAME or INVALID_REQUEST',
  401: 'UNAUTHENTICATED: no or an unknown bearer token',
  403: 'FORBIDDEN: the token lacks the scope',
  404: 'USER_NOT_FOUND',
  422: 'POLICY_VIOLATION or DIRECTORY_ENTRY_INVALID',
  429: 'RATE_LIMITED',
  503: 'SOURCE_UNAVAILABLE (with Retry-After)',
};

export const usersRoutes: FastifyPluginAsyncZod = async (app) => {
  const { resolver, plans, checkUsername } = app.identity;
  const resolve = async (name: string): Promise<Resolution<PlanOutcome>> => {
    checkUsername(name);
    return resolver.resolve(name);
  };

  app.get(
    '/users/:name',
    {
      onRequest: app.requireScope('users:read'),
      schema: {
        tags: ['users'],
        summary: "A user's identity as the directory sources report it (before policy).",
        security: [{ bearer: [] }],
        params: UsernameParams,
        response: { 200: IdentitySchema, ...errors(400, 401, 403, 404, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      request.log.info({ audit: true, caller: request.principal?.name, user: name }, 'identity lookup');
      const { identity, cache, stale } = await resolve(name);
      reply.header('cache-control', 'no-store').header('x-idmount-cache', cache);
      const origin = Object.fromEntries(Object.entries(identity.origin).filter(([, v]) => v !== undefined));
      return {
        name: identity.name,
        uid: identity.uid,
        gid: identity.gid,
        home: identity.home,
        gecos: identity.gecos,
        groups: identity.groups,
        source: identity.origin.uid ?? 'unknown',
        origin: origin as Record<string, string>,
        stale,
      };
    },
  );

  app.get(
    '/users/:name/spawn-plan',
    {
      onRequest: app.requireScope('spawn-plan:read'),
      schema: {
        tags: ['users'],
        summary:
          'The plan KubeSpawner applies: identity, supplemental groups, environment, volumes, NSS lines.',
        security: [{ bearer: [] }],
        params: UsernameParams,
        querystring: ExplainQuery,
        response: { 200: SpawnPlanSchema, ...errors(400, 401, 403, 404, 422, 429, 503) },
      },
    },
    (request, reply) => {
      const { name } = request.params;
      const explain = request.query.explain === 'true' || request.query.explain === '1';
      // A trace shows directory attributes (notes, dropped groups): admins only, not the hub's token.
      if (explain && request.principal?.scopes.has('users:read') !== true) {
        throw new IdmountError('FORBIDDEN', "An explain trace needs the 'users:read' scope.", {
          extras: { requiredScope: 'users:read' },
        });
      }
      // The hub's own spawns are in the request log already; an admin asking for a plan is audited.
      if (explain || request.principal?.scopes.has('users:read')) {
        request.log.info({ audit: true, caller: request.principal?.name, user: name, explain }, 'spawn plan');
      }
      const respond = (resolution: Resolution<PlanOutcome>) => {
        const outcome = resolution.derived;
        if (!outcome.ok) throw outcome.error;
        reply
          .headers({ 'cache-control': 'no-store', 'x-idmount-cache': resolution.cache })
          .type('application/json; charset=utf-8');
        // Every body is a string the plan's guard made (src/plan/guard.ts), which Fastify sends as
        // it is: the common spawn's when the cache was filled, a stale or explained one now.
        let body = outcome.body;
        if (explain) {
          const traced = plans.explain(resolution.identity);
          body = planBody({
            ...traced.plan,
            stale: resolution.stale,
            explain: { cache: resolution.cache, sources: [...resolution.attempts], ...traced.explain },
          });
        } else if (resolution.stale) {
          body = planBody({ ...plans.build(resolution.identity), stale: true });
        }
        reply.send(body as unknown as SpawnPlan);
        return undefined;
      };
      checkUsername(name);
      // A cache hit is answered synchronously; only a miss waits for the directory.
      const hit = resolver.cached(name);
      return hit === undefined ? resolver.lookup(name).then(respond) : respond(hit);
    },
  );

  app.delete(
    '/users/:name/cache',
    {
      onRequest: app.requireScope('cache:write'),
      schema: {
        tags: ['users'],
        summary:
          "Forget a user's cached identity on every replica (through the shared tier, when there is one), so the next request asks the directory.",
        security: [{ bearer: [] }],
        params: UsernameParams,
        response: { 200: CacheEvictedSchema, ...errors(400, 401, 403, 429) },
      },
    },
    async (request) => {
      const { name } = request.params;
      checkUsername(name);
      request.log.info({ audit: true, caller: request.principal?.name, user: name }, 'cache eviction');
      return { name, ...(await resolver.evict(name)) };
    },
  );
};
