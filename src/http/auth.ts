// Authentication and scopes. Static bearer tokens are kept only as SHA-256 digests and compared
// in constant time; further verifiers (OIDC admin tokens) plug in beside them.
//
// The hub's static token is checked synchronously: the spawn path runs this hook on every
// request, and a promise chain per request costs more than the hash. Only a token that is not a
// static one goes on to the asynchronous verifiers.
import { hash } from 'node:crypto';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import type { Config, Scope } from '../config/schema.js';
import { IdmountError } from '../errors.js';

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

function createStaticTokenVerifier(tokens: Config['auth']['tokens']): (token: string) => Principal | null {
  // One principal per token, built once: a request only points at it.
  const known = tokens.map((t) => ({
    digest: t.sha256.toLowerCase(),
    principal: Object.freeze({ name: t.name, kind: 'token', scopes: new Set(t.scopes) }) as Principal,
    /** The token itself, once a request has proved it by its digest (see below). */
    seen: undefined as string | undefined,
  }));
  return (token) => {
    // The configuration holds only digests. Once a request has presented a token whose digest
    // matches, the token is remembered, so the hub's next thousand spawns compare strings in
    // constant time instead of hashing each (a SHA-256 per request was the largest single cost
    // of a cached spawn). Only proven tokens are remembered: at most one per configured token.
    let match: Principal | null = null;
    for (const candidate of known) {
      if (candidate.seen !== undefined && sameString(candidate.seen, token) && match === null) {
        match = candidate.principal;
      }
    }
    if (match !== null) return match;
    const digest = hash('sha256', token, 'hex');
    // Compare against every token, always, every character: the time taken says nothing about
    // which token matched or how much of a digest did.
    let proven: (typeof known)[number] | undefined;
    for (const candidate of known) {
      if (sameString(candidate.digest, digest) && proven === undefined) proven = candidate;
    }
    if (proven === undefined) return null;
    proven.seen = token;
    return proven.principal;
  };
}

/** Constant-time string equality (the loop never stops early; lengths are not secret). */
function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/**
 * Returns the caller's principal — synchronously for a static token or when authentication is
 * disabled, as a promise when an asynchronous verifier (OIDC) has to look — or throws 401.
 */
export function createAuthenticator(auth: Config['auth'], extraVerifiers: TokenVerifier[] = []) {
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
  async (app, opts: { auth: Config['auth']; verifiers?: TokenVerifier[] }) => {
    const authenticate = createAuthenticator(opts.auth, opts.verifiers);
    app.decorate('authenticate', authenticate);
    app.decorateRequest('principal', null);
    app.decorate('requireScope', (scope: Scope) => {
      const admit = (request: FastifyRequest, principal: Principal) => {
        request.principal = principal;
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
