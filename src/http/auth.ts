// Authentication and scopes. Static bearer tokens are kept only as SHA-256 digests and compared
// in constant time; further verifiers (OIDC admin tokens) plug in beside them.
import { hash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
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

export function createStaticTokenVerifier(tokens: Config['auth']['tokens']): TokenVerifier {
  const known = tokens.map((t) => ({
    name: t.name,
    digest: Buffer.from(t.sha256, 'hex'),
    scopes: new Set(t.scopes),
  }));
  return async (token) => {
    // One-shot hash: this runs on every request, and a Hash object per call costs more than the hash.
    const digest = hash('sha256', token, 'buffer');
    let match: (typeof known)[number] | undefined;
    // Compare against every token, always: the time taken says nothing about which one matched.
    for (const candidate of known) {
      if (timingSafeEqual(candidate.digest, digest) && match === undefined) match = candidate;
    }
    return match === undefined ? null : { name: match.name, kind: 'token', scopes: match.scopes };
  };
}

export function createAuthenticator(auth: Config['auth'], extraVerifiers: TokenVerifier[] = []) {
  const verifiers = [createStaticTokenVerifier(auth.tokens), ...extraVerifiers];
  return async function authenticate(header: string | undefined): Promise<Principal> {
    if (auth.disabled) return { name: 'anonymous', kind: 'anonymous', scopes: ALL_SCOPES };
    const match = /^Bearer +([\x21-\x7e]{1,8192})$/i.exec(header ?? '');
    if (match === null) throw new IdmountError('UNAUTHENTICATED', 'A bearer token is required.');
    const token = match[1] as string;
    for (const verify of verifiers) {
      const principal = await verify(token);
      if (principal !== null) return principal;
    }
    throw new IdmountError('UNAUTHENTICATED', 'The bearer token is not valid.');
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: ReturnType<typeof createAuthenticator>;
    requireScope(scope: Scope): (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
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
    app.decorate('requireScope', (scope: Scope) => async (request: FastifyRequest) => {
      const principal = await authenticate(request.headers.authorization);
      request.principal = principal;
      if (!principal.scopes.has(scope)) {
        throw new IdmountError('FORBIDDEN', `This token does not grant the '${scope}' scope.`, {
          extras: { requiredScope: scope },
        });
      }
    });
  },
  { name: 'idmount-auth' },
);
