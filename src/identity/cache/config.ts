// The cache section: how long identities and "no such user" are kept, when they are refreshed,
// how long a stale identity may stand in while its source is down, and the optional shared tier
// (Redis or Valkey) that lets replicas agree.
import { z } from 'zod';
import { Duration, readSecret } from '../../config/primitives.js';

/** Where the shared tier's keys may live: a short prefix that cannot break a key apart. */
const KeyPrefix = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'use 1-64 letters, digits or _ . : -')
  .default('idmount:');

const SharedTierSchema = z
  .strictObject({
    url: z
      .string()
      .regex(
        /^rediss?:\/\/[^/@\s]+(\/\d{1,2})?$/,
        'expected redis://host:port[/db] or rediss://host:port[/db] (TLS), without credentials (use username and passwordFile)',
      )
      .describe(
        'The Redis (or Valkey) server every replica shares: redis://host:6379/0, or rediss:// for TLS. One server or a managed primary endpoint; Cluster and Sentinel are not supported.',
      ),
    username: z
      .string()
      .min(1)
      .optional()
      .describe('ACL user name (Redis 6+); without it the password authenticates the default user.'),
    passwordFile: z
      .string()
      .optional()
      .describe('File holding the password (requirepass or the ACL user’s), a mounted Kubernetes Secret.'),
    passwordEnv: z.string().optional().describe('Environment variable holding the password.'),
    tls: z
      .strictObject({
        caFile: z
          .string()
          .optional()
          .describe('PEM file with the CA that signed the server certificate; default: the system CAs.'),
        serverName: z
          .string()
          .optional()
          .describe('Host name expected in the server certificate when it differs from the URL host.'),
      })
      .optional()
      .describe('TLS settings for a rediss:// URL (the certificate and host name are always verified).'),
    keyPrefix: KeyPrefix.describe(
      'Prefix of every key idmount writes, so one Redis can serve several idmount releases (give each its own).',
    ),
    timeouts: z
      .strictObject({
        connect: Duration.default(2_000).describe(
          'Time allowed to connect (TCP, TLS, AUTH). Reconnection is retried in the background with a growing delay (up to 5 s); spawns never wait for it.',
        ),
        command: Duration.default(200).describe(
          'Time allowed for one command. Redis answers in well under a millisecond on a cluster network, so 200 ms means it is in trouble: the command is given up, the tier is skipped for a few seconds, and the spawn is answered from the local cache or the directory. A local miss waits at most this long before the directory is asked.',
        ),
      })
      .prefault({})
      .describe('How long idmount waits for Redis; it never waits longer for Redis than for its own cache.'),
  })
  .transform((shared, ctx) => {
    if (shared.tls !== undefined && !shared.url.startsWith('rediss://')) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls settings need a rediss:// url' });
      return z.NEVER;
    }
    const password = readSecret({ file: shared.passwordFile, env: shared.passwordEnv }, 'password', ctx);
    const { passwordFile: _file, passwordEnv: _env, ...rest } = shared;
    return { ...rest, password };
  });

export type SharedTierConfig = z.output<typeof SharedTierSchema>;

export const CacheSchema = z
  .strictObject({
    ttl: Duration.default(30_000).describe(
      'How long a resolved identity is served without asking the directory; a group change reaches the next spawn on every replica within this time (DELETE /users/{name}/cache makes it immediate). 30 s by default: someone just added to a proposal group restarts their server within a minute and expects the data there, and a short TTL costs little, because the plan is asked once per spawn (not per request of the notebook), bursts are absorbed by single-flight and the shared tier, and outages by staleIfError, which does not depend on the TTL.',
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
    maxNegativeEntries: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe(
        'Most "no such user" answers kept in memory per replica; kept apart from identities, so unknown names never push a known identity out.',
      ),
    planEntries: z
      .number()
      .int()
      .positive()
      .default(5_000)
      .describe(
        'Spawn plans kept serialised for the most recently used users (a spawn burst); others are rebuilt from the cached identity on their next spawn.',
      ),
    trimAfterIdle: Duration.default(10_000).describe(
      'After a burst of at least 1000 directory lookups, once none has happened for this long, one full garbage collection returns the memory the burst used to the OS (a pause of about 0.2 s with 100 000 cached users). Needs node started with --expose-gc, as `npm start`, the image and the chart do; 0 turns it off.',
    ),
    shared: SharedTierSchema.optional().describe(
      'A cache tier on Redis (or Valkey) shared by every replica, behind each replica’s own cache: one entry per user for all replicas (with its fetch time, so the TTL still counts from the directory), eviction reaching every replica, last-known-good identities surviving a restart during a directory outage, and AD ID-mapping slices agreed once for all. Every entry read back is checked again (schema, then policy and the plan’s own checks) before use. Redis is never needed to answer: when it is down or slow, a replica answers from its own cache and the directory. Without it each replica caches alone: a second replica does not see the first one’s entries or evictions, and starts empty.',
    ),
  })
  .prefault({});

export type CacheConfig = z.output<typeof CacheSchema>;
