// Admin access with Keycloak (OIDC) access tokens: signature against the realm's JWKS (jose),
// pinned algorithms, issuer, audience, expiry, `typ: Bearer` (Keycloak's access-token marker; ID and
// refresh tokens are refused) and a configured realm role or `client:role`.
import { createRemoteJWKSet, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import { IdmountError } from '../errors.js';
import type { Principal, TokenVerifier } from './auth.js';
import type { OidcConfig } from './config.js';

// Header.payload.signature, each base64url: anything else is a static token, not ours to judge.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
// Discovery and JWKS fetches sit on an admin's request path: fail fast when Keycloak is away.
const FETCH_TIMEOUT_MS = 5000;

const unauthenticated = (reason: string) =>
  new IdmountError('UNAUTHENTICATED', `The bearer token is not valid: ${reason}.`, { extras: { reason } });

interface KeycloakClaims extends JWTPayload {
  typ?: unknown;
  azp?: unknown;
  preferred_username?: unknown;
  realm_access?: { roles?: unknown };
  resource_access?: Record<string, { roles?: unknown } | undefined>;
}

/** `idmount-admin` is a realm role; `idmount:admin` is the role `admin` of the client `idmount`. */
function hasRole(claims: KeycloakClaims, role: string): boolean {
  const colon = role.indexOf(':');
  const roles =
    colon === -1 ? claims.realm_access?.roles : claims.resource_access?.[role.slice(0, colon)]?.roles;
  const wanted = colon === -1 ? role : role.slice(colon + 1);
  return Array.isArray(roles) && roles.includes(wanted);
}

export function createOidcVerifier(config: OidcConfig): TokenVerifier {
  const issuer = config.issuer.replace(/\/$/, '');
  let jwks: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  const keySet = () => {
    jwks ??= (async () => {
      let uri = config.jwksUri;
      if (uri === undefined) {
        const res = await fetch(`${issuer}/.well-known/openid-configuration`, {
          signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        });
        if (!res.ok) throw new Error(`discovery answered ${res.status}`);
        const metadata = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
        if (metadata.issuer !== issuer)
          throw new Error(`discovery names the issuer '${String(metadata.issuer)}'`);
        if (typeof metadata.jwks_uri !== 'string') throw new Error('discovery names no jwks_uri');
        uri = metadata.jwks_uri;
      }
      return createRemoteJWKSet(new URL(uri), { timeoutDuration: FETCH_TIMEOUT_MS });
    })().catch((err: unknown) => {
      jwks = undefined;
      throw new IdmountError('SOURCE_UNAVAILABLE', 'The OIDC issuer cannot be reached to verify the token.', {
        extras: { source: 'oidc' },
        retryAfter: 10,
        cause: err,
      });
    });
    return jwks;
  };

  return async function verifyOidcToken(token: string): Promise<Principal | null> {
    if (!JWT_SHAPE.test(token)) return null;
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return null;
    }
    if (
      typeof header.alg !== 'string' ||
      !config.algorithms.includes(header.alg as (typeof config.algorithms)[number])
    ) {
      throw unauthenticated(`the signing algorithm '${String(header.alg)}' is not accepted`);
    }
    let claims: KeycloakClaims;
    try {
      ({ payload: claims } = await jwtVerify<KeycloakClaims>(token, await keySet(), {
        issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        clockTolerance: Math.ceil(config.clockTolerance / 1000),
        requiredClaims: ['exp', 'iat', 'sub'],
      }));
    } catch (err) {
      if (err instanceof IdmountError) throw err;
      throw unauthenticated(reasonOf(err));
    }
    if (claims.typ !== 'Bearer') {
      throw unauthenticated(`it is not an access token (typ '${String(claims.typ)}')`);
    }
    const name =
      typeof claims.preferred_username === 'string'
        ? claims.preferred_username
        : String(claims.sub ?? 'unknown');
    if (!hasRole(claims, config.role)) {
      throw new IdmountError(
        'FORBIDDEN',
        `The token of '${name}' does not carry the role '${config.role}'.`,
        {
          extras: { requiredRole: config.role },
        },
      );
    }
    return { name: `oidc:${name}`, kind: 'oidc', scopes: new Set(config.scopes) };
  };
}

function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'it has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return 'it was issued by another issuer';
    if (err.claim === 'aud') return 'it is not meant for this audience';
    return `its '${err.claim}' claim is not acceptable`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key of the issuer matches its signature';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'its signing algorithm is not accepted';
  if (err instanceof errors.JWKSTimeout) return 'the issuer keys could not be fetched in time';
  if (err instanceof errors.JOSEError) return `it cannot be verified (${err.code})`;
  return 'it cannot be verified';
}
