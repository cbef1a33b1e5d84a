// Authentication and scopes. Static bearer tokens are kept only as SHA-256 digests: every
// request's token is hashed and compared as a digest with crypto.timingSafeEqual, against every
// configured token, always. Further verifiers (OIDC admin tokens) plug in beside them.
//
// The static token is checked synchronously; only a token that is not a static one goes on to the
// asynchronous verifiers. A SHA-256 per request costs 0.4 µs in a tight loop but 2–5 µs inside a
// busy server (OpenSSL's code and data are out of the CPU caches by then): about 4 % of a cached
// spawn, the price of keeping no token in plaintext.
//
// The same hook applies the per-caller rate limit (./rate-limit.ts) once the caller is known, so
// every authenticated request counts, also those then refused for their scope or parameters.
import { hash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import { IdmountError } from '../errors.js';
import type { AuthConfig, Scope } from './config.js';
import { createRateLimiter, type RateLimitOptions } from './rate-limit.js';

export interface Principal {
  name: string;
  kind: 'token' | 'oidc' | 'anonymous';
  scopes: ReadonlySet<Scope>;
}

/** A verifier returns a principal, null when the token is not its kind, or throws 401/403. */
export type TokenVerifier = (token: string) => Promise<Principal | null>;

const ALL_SCOPES: ReadonlySet<Scope> = new Set(['users:read', 'spawn-plan:read', 'cache:write']);
const ANONYMOUS: Principal = Object.freeze({ name: 'anonymous', kind: 'anonymous', scopes: ALL_SCOPES });
const BEARER = /^Bearer +([\x21-\x7e]{1,8192})$/i;

function createStaticTokenVerifier(tokens: AuthConfig['tokens']): (token: string) => Principal | null {
  // One principal per token, built once: a request only points at it.
  // Digests are compared in their hex spelling: node's hex digest is a quarter of the cost of a
  // Buffer digest (0.25 against 1.1 µs measured), and equal hex is equal digests.
  const known = tokens.map((t) => ({
    digest: Buffer.from(t.sha256.toLowerCase(), 'latin1'),
    principal: Object.freeze({ name: t.name, kind: 'token', scopes: new Set(t.scopes) }) as Principal,
  }));
  return (token) => {
    const digest = Buffer.from(hash('sha256', token, 'hex'), 'latin1');
    // Every configured digest is compared, whatever matched first: the time taken says nothing
    // about which token matched or how much of a digest did.
    let match: Principal | null = null;
    for (const candidate of known) {
      if (timingSafeEqual(candidate.digest, digest) && match === null) match = candidate.principal;
    }
    return match;
  };
}

/**
 * Returns the caller's principal — synchronously for a static token or when authentication is
 * disabled, as a promise when an asynchronous verifier (OIDC) has to look — or throws 401.
 */
export function createAuthenticator(auth: AuthConfig, extraVerifiers: TokenVerifier[] = []) {
  const staticToken = createStaticTokenVerifier(auth.tokens);
  const invalid = () => new IdmountError('UNAUTHENTICATED', 'The bearer token is not valid.');
  async function verifyElsewhere(token: string): Promise<Principal> {
    for (const verify of extraVerifiers) {
      const principal = await verify(token);
      if (principal !== null) return principal;
    }
    throw invalid();
  }
  return function authenticate(header: string | undefined): Principal | Promise<Principal> {
    if (auth.disabled) return ANONYMOUS;
    const match = BEARER.exec(header ?? '');
    if (match === null) throw new IdmountError('UNAUTHENTICATED', 'A bearer token is required.');
    const token = match[1] as string;
    const principal = staticToken(token);
    if (principal !== null) return principal;
    if (extraVerifiers.length === 0) throw invalid();
    return verifyElsewhere(token);
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: ReturnType<typeof createAuthenticator>;
    requireScope(
      scope: Scope,
    ): (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export const authPlugin = fp(
  async (app, opts: { auth: AuthConfig; rateLimit: RateLimitOptions; verifiers?: TokenVerifier[] }) => {
    const authenticate = createAuthenticator(opts.auth, opts.verifiers);
    const take = createRateLimiter(opts.rateLimit);
    app.decorate('authenticate', authenticate);
    app.decorateRequest('principal', null);
    app.decorate('requireScope', (scope: Scope) => {
      const admit = (request: FastifyRequest, principal: Principal) => {
        request.principal = principal;
        const wait = take(`${principal.kind}:${principal.name}`);
        if (wait !== 0) {
          throw new IdmountError(
            'RATE_LIMITED',
            `This caller sent more than ${opts.rateLimit.max} requests in the window.`,
            { retryAfter: wait },
          );
        }
        if (!principal.scopes.has(scope)) {
          throw new IdmountError('FORBIDDEN', `This token does not grant the '${scope}' scope.`, {
            extras: { requiredScope: scope },
          });
        }
      };
      // A callback-style hook, so the synchronous path allocates no promise.
      return (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
        let principal: Principal | Promise<Principal>;
        try {
          principal = authenticate(request.headers.authorization);
          if (!(principal instanceof Promise)) admit(request, principal);
        } catch (err) {
          done(err as Error);
          return;
        }
        if (!(principal instanceof Promise)) {
          done();
          return;
        }
        principal.then((p) => {
          try {
            admit(request, p);
          } catch (err) {
            done(err as Error);
            return;
          }
          done();
        }, done);
      };
    });
  },
  { name: 'idmount-auth' },
);
