// The configuration contract: one YAML document, validated here once, then frozen and passed
// down typed. Every key is documented with `.describe()`; the README reference is generated
// from these descriptions (scripts/write-config-reference.ts) and a test keeps it in sync.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { SourceConfigSchema } from '../identity/sources/registry.js';
import { MountsConfigShape } from '../mounts/schema.js';
import { Duration, RegexString, readSecret } from './primitives.js';

export const Scope = z.enum(['users:read', 'spawn-plan:read', 'cache:write']);
export type Scope = z.infer<typeof Scope>;

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits (sha256)');

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
      if (value !== undefined && !/^[0-9a-f]{64}$/.test(value)) {
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

export const sha256Hex = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

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

const AuthSchema = z
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

const CacheSchema = z
  .strictObject({
    ttl: Duration.default(300_000).describe(
      'How long a resolved identity is served without asking the directory.',
    ),
    negativeTtl: Duration.default(30_000).describe('How long "no such user" is remembered.'),
    staleIfError: Duration.default(86_400_000).describe(
      'How long past its TTL an identity may still be served (flagged stale) while its source is down.',
    ),
    refreshAhead: z
      .number()
      .min(0)
      .max(1)
      .default(0.8)
      .describe('Fraction of the TTL after which a hit triggers a background refresh (0 disables).'),
    maxEntries: z
      .number()
      .int()
      .positive()
      .default(200_000)
      .describe('Most identities kept in memory per replica.'),
    planEntries: z
      .number()
      .int()
      .positive()
      .default(5_000)
      .describe(
        'Spawn plans kept serialised for the most recently used users (a spawn burst); others are rebuilt from the cached identity on their next spawn.',
      ),
    trimAfterIdle: Duration.default(10_000).describe(
      'After a burst of at least 1000 directory lookups, once none has happened for this long, one full garbage collection returns the memory the burst used to the OS (a pause of about 0.2 s with 100 000 cached users). 0 turns it off.',
    ),
  })
  .prefault({});

const PolicySchema = z
  .strictObject({
    username: z
      .strictObject({
        pattern: RegexString.default('^[A-Za-z0-9_][A-Za-z0-9_.@-]*$').describe(
          'Regular expression a username must match before any lookup.',
        ),
        maxLength: z.number().int().min(1).max(256).default(64).describe('Longest accepted username.'),
      })
      .prefault({}),
    minUid: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('Lowest uid accepted; 0 is refused whatever this says.'),
    maxUid: z
      .number()
      .int()
      .min(1)
      .max(4_294_967_294)
      .default(4_294_967_294)
      .describe('Highest uid accepted.'),
    minGid: z.number().int().min(1).default(1000).describe('Lowest primary or supplemental gid accepted.'),
    maxGid: z
      .number()
      .int()
      .min(1)
      .max(4_294_967_294)
      .default(4_294_967_294)
      .describe('Highest gid accepted.'),
    alwaysAllowGids: z
      .array(z.number().int().min(1))
      .default([100])
      .describe('Supplemental gids kept when the directory lists them, even below minGid.'),
    extraGids: z
      .array(z.number().int().min(1))
      .default([100])
      .describe("Supplemental gids every plan gets (100 'users': docker-stacks' conda needs it)."),
  })
  .prefault({});

const ServerSchema = z
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

const MergeSchema = z
  .strictObject({
    uid: z.string().optional(),
    gid: z.string().optional(),
    home: z.string().optional(),
    gecos: z.string().optional(),
    groups: z.string().optional(),
  })
  .describe(
    'Per-field source names, e.g. numbers from LDAP and groups from Keycloak. Unset: first source wins.',
  );

export const ConfigSchema = z
  .strictObject({
    server: ServerSchema,
    logging: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
      })
      .prefault({}),
    auth: AuthSchema,
    sources: z.array(SourceConfigSchema).min(1).describe('Directory sources, tried in order.'),
    merge: MergeSchema.optional(),
    cache: CacheSchema,
    policy: PolicySchema,
    ...MountsConfigShape,
    spawner: z
      .strictObject({
        nss: z
          .enum(['initContainer', 'none'])
          .default('initContainer')
          .describe('Ship passwd/group lines in the plan so the spawner can fix "I have no name!".'),
        shell: z
          .string()
          .regex(/^\/[A-Za-z0-9._/-]+$/)
          .default('/bin/bash')
          .describe(
            "Login shell in the container's passwd line (the directory's shell may not exist in the image).",
          ),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.sources.forEach((source, i) => {
      if (names.has(source.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['sources', i, 'name'],
          message: `duplicate source name '${source.name}'`,
        });
      }
      names.add(source.name);
    });
    for (const [field, source] of Object.entries(config.merge ?? {})) {
      if (source !== undefined && !names.has(source)) {
        ctx.addIssue({ code: 'custom', path: ['merge', field], message: `no source is named '${source}'` });
      }
    }
    if (config.auth.disabled && !isLoopback(config.server.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'disabled'],
        message: 'authentication can only be disabled when server.host is a loopback address',
      });
    }
    if (!config.auth.disabled && config.auth.tokens.length === 0 && config.auth.oidc === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'tokens'],
        message: 'no token and no oidc configured: nobody could call the API',
      });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
