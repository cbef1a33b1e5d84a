// The HTTP layer's config sections: where the server listens, how callers authenticate (static
// tokens kept as SHA-256 digests, OIDC for admins), the per-caller rate limit, and logging.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Duration, readSecret } from '../config/primitives.js';

export const Scope = z.enum(['users:read', 'spawn-plan:read', 'cache:write']);
export type Scope = z.infer<typeof Scope>;

const SHA256_HEX = /^[0-9a-f]{64}$/;
const Sha256Hex = z.string().regex(SHA256_HEX, 'expected 64 lowercase hex digits (sha256)');

export const sha256Hex = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

const TokenSchema = z
  .strictObject({
    name: z.string().min(1).describe('Who holds this token; shown in audit logs.'),
    sha256: Sha256Hex.optional().describe('SHA-256 digest (hex) of the token. Safe to keep in config.'),
    sha256File: z.string().optional().describe('File holding the SHA-256 digest (hex) of the token.'),
    tokenFile: z.string().optional().describe('File holding the token itself (hashed on load, never kept).'),
    tokenEnv: z.string().optional().describe('Environment variable holding the token itself.'),
    scopes: z
      .array(Scope)
      .min(1)
      .describe('What the token may do: users:read, spawn-plan:read, cache:write.'),
  })
  .transform((token, ctx) => {
    const given = [token.sha256, token.sha256File, token.tokenFile, token.tokenEnv].filter(
      (v) => v !== undefined,
    );
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'set exactly one of sha256, sha256File, tokenFile, tokenEnv' });
      return z.NEVER;
    }
    let digest = token.sha256;
    if (token.sha256File !== undefined) {
      const value = readSecret({ file: token.sha256File }, 'sha256', ctx)?.trim().toLowerCase();
      if (value !== undefined && !SHA256_HEX.test(value)) {
        ctx.addIssue({
          code: 'custom',
          path: ['sha256File'],
          message: 'the file does not hold a sha256 hex digest',
        });
        return z.NEVER;
      }
      digest = value;
    } else if (token.tokenFile !== undefined || token.tokenEnv !== undefined) {
      const secret = readSecret({ file: token.tokenFile, env: token.tokenEnv }, 'token', ctx);
      if (secret !== undefined) digest = sha256Hex(secret);
    }
    if (digest === undefined) return z.NEVER;
    return { name: token.name, sha256: digest, scopes: token.scopes };
  });

export const OidcConfigSchema = z.strictObject({
  issuer: z.url().describe('Issuer URL of the realm, e.g. https://sso.example.org/realms/facility.'),
  audience: z.string().min(1).describe('Required `aud` of admin access tokens (the idmount client id).'),
  role: z
    .string()
    .min(1)
    .describe('Realm role (or `client:role` for a client role) an admin token must carry.'),
  jwksUri: z.url().optional().describe('JWKS URL; defaults to the issuer discovery document.'),
  algorithms: z
    .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
    .default(['RS256'])
    .describe('Accepted signing algorithms (pinned; `none` and HMAC are never accepted).'),
  scopes: z
    .array(Scope)
    .default(['users:read', 'spawn-plan:read', 'cache:write'])
    .describe('Scopes granted to a verified admin token.'),
  clockTolerance: Duration.default(30_000).describe('Allowed clock skew when checking exp/nbf.'),
});

export type OidcConfig = z.output<typeof OidcConfigSchema>;

export const AuthSchema = z
  .strictObject({
    disabled: z
      .boolean()
      .default(false)
      .describe('Turn authentication off. Only accepted when server.host is a loopback address (demo mode).'),
    tokens: z
      .array(TokenSchema)
      .default([])
      .describe('Static bearer tokens (Kubernetes Secrets), each with scopes.'),
    oidc: OidcConfigSchema.optional().describe('Admin access with Keycloak (OIDC) access tokens.'),
    rateLimit: z
      .strictObject({
        max: z.number().int().positive().default(600).describe('Requests per caller per window.'),
        window: Duration.default(60_000)
          .refine((ms) => ms >= 1000, 'the rate-limit window must be at least 1s')
          .describe('Rate-limit window (fixed, per caller).'),
      })
      .prefault({})
      .describe(
        'Per-token request rate limit (429 beyond it). A hub spawning 600 notebooks a minute is exceptional.',
      ),
  })
  .prefault({});

export type AuthConfig = z.output<typeof AuthSchema>;

export const ServerSchema = z
  .strictObject({
    host: z.string().default('127.0.0.1').describe('Address to listen on (0.0.0.0 in a pod).'),
    port: z.number().int().min(0).max(65535).default(8080).describe('TCP port.'),
    trustProxy: z
      .boolean()
      .default(false)
      .describe('Trust X-Forwarded-* headers (only behind a trusted proxy).'),
    shutdownGrace: Duration.default(10_000).describe(
      'How long SIGTERM waits for in-flight requests; keep below the pod terminationGracePeriodSeconds.',
    ),
  })
  .prefault({});

export type ServerConfig = z.output<typeof ServerSchema>;

export const LoggingSchema = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  })
  .prefault({});
