// The cache section: how long identities and "no such user" are kept, when they are refreshed,
// and how long a stale identity may stand in while its source is down.
import { z } from 'zod';
import { Duration } from '../../config/primitives.js';

export const CacheSchema = z
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
  })
  .prefault({});

export type CacheConfig = z.output<typeof CacheSchema>;
