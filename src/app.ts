// buildApp, the composition root of the service: the identity service (./compose.ts) and the
// HTTP layer wired into one Fastify instance that never listens by itself. The server
// (./server.ts) and the tests (app.inject) both start from here.

import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyServerOptions } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { createIdentityService } from './compose.js';
import { createHeapTrimmer } from './heap-trim.js';
import { authPlugin, type TokenVerifier } from './http/auth.js';
import { metricsPlugin } from './http/metrics.js';
import { createOidcVerifier } from './http/oidc.js';
import { registerProblemHandlers } from './http/problem.js';
import { healthRoutes } from './http/routes/health.js';
import { statusRoutes } from './http/routes/status.js';
import { usersRoutes } from './http/routes/users.js';
import { servicePlugin } from './http/service-plugin.js';
import type { IdentitySource } from './identity/types.js';
import type { Config } from './settings.js';

export interface AppDeps {
  /** Relative paths in the config resolve against this folder. */
  baseDir: string;
  /** Logger options or instance for Fastify; tests pass false or a capturing stream. */
  logger?: FastifyServerOptions['logger'];
  loggerInstance?: FastifyServerOptions['loggerInstance'];
  /** Prebuilt sources (tests, the CLI); otherwise built from config. */
  sources?: IdentitySource[];
  /** Extra bearer-token verifiers (OIDC). */
  verifiers?: TokenVerifier[];
  /** Clock for cache ages (tests). */
  now?: () => number;
}

export const VERSION = '0.1.0';

export async function buildApp(config: Config, deps: AppDeps) {
  const app = Fastify({
    ...(deps.loggerInstance !== undefined
      ? { loggerInstance: deps.loggerInstance }
      : { logger: deps.logger ?? false }),
    trustProxy: config.server.trustProxy,
    // Usernames may be long and hostile; let them reach the username check (400) rather than
    // being cut off by the router's default 100-character parameter limit (404).
    routerOptions: { maxParamLength: 16_384 },
    requestIdHeader: false,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerProblemHandlers(app);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'idmount',
        version: VERSION,
        description:
          'Tells KubeSpawner which POSIX identity and which directories a JupyterHub user must run with. ' +
          'Errors are application/problem+json with a stable `code`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      tags: [
        { name: 'users', description: 'Identities and spawn plans.' },
        { name: 'health', description: 'Probes and metrics.' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  await app.register(metricsPlugin);
  // A bearer token that is a JWT goes to the OIDC verifier when oidc is configured; static tokens first.
  const oidcVerifiers = config.auth.oidc === undefined ? [] : [createOidcVerifier(config.auth.oidc)];
  await app.register(authPlugin, {
    auth: config.auth,
    rateLimit: { max: config.auth.rateLimit.max, windowMs: config.auth.rateLimit.window },
    verifiers: [...oidcVerifiers, ...(deps.verifiers ?? [])],
  });
  // Fastify's logger is pino; its declared type is a narrower interface.
  const log = app.log as unknown as Logger;
  const trimmer = createHeapTrimmer({ idleMs: config.cache.trimAfterIdle, log });
  const events = app.metrics.events;
  const service = createIdentityService(config, {
    log,
    baseDir: deps.baseDir,
    sources: deps.sources,
    events: {
      cache: events.cache,
      lookup(result, seconds) {
        events.lookup(result, seconds);
        trimmer.noteFill();
      },
      sharedRejected: events.sharedRejected,
    },
    sharedEvents: app.metrics.sharedEvents,
    now: deps.now,
  });
  app.addHook('onClose', async () => trimmer.close());
  await app.register(servicePlugin, { service });

  // Every route that needs a token checks it, and the caller's rate limit, in app.requireScope.
  await app.register(usersRoutes);
  await app.register(statusRoutes);
  await app.register(healthRoutes);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
