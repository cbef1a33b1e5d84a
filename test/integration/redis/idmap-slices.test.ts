// AD ID-mapping slices agreed through a real Redis: two replicas (each its own ID map and shared
// tier client) that meet two colliding domains in opposite orders give every SID the same id, a
// restarted replica gets the same slices back, and a range nobody agreed on while Redis is away is
// a retryable 503, never a guess, while agreed ranges keep mapping.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdmountError } from '../../../src/errors.js';
import { CacheSchema } from '../../../src/identity/cache/config.js';
import { createSharedTier, type SharedTier } from '../../../src/identity/cache/shared-tier.js';
import { SssdIdMapper } from '../../../src/identity/sources/ad/idmap.js';
import { createSliceBook, sliceScope } from '../../../src/identity/sources/ad/slices.js';
import { type RedisServer, startRedis } from '../../harness/redis.js';

// 8 slices of 1000 ids, one helper slice per domain: these two domain SIDs hash to slice 6.
const LAYOUT = {
  rangeMin: 10_000,
  rangeMax: 18_000,
  rangeSize: 1_000,
  autoridCompat: false,
  helperTableSize: 1,
};
const [A, B] = ['S-1-5-21-1000-2000-2', 'S-1-5-21-1000-2000-3'];

let redis: RedisServer;
const tiers: SharedTier[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(tiers.map((t) => t.close()));
  await redis?.close();
});

/** One replica's ID map for the source `campus`, agreeing slices through its own Redis client. */
async function replica() {
  const cache = CacheSchema.parse({ shared: { url: redis.url, keyPrefix: 'slices-test:' } });
  const tier = createSharedTier(cache.shared as NonNullable<typeof cache.shared>, {
    log: pino({ level: 'silent' }),
    cache,
    fingerprint: 'test',
    localEntries: () => 0,
  });
  tiers.push(tier);
  tier.start();
  const deadline = Date.now() + 5_000;
  while (tier.status().state !== 'up' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const slices = createSliceBook({
    pins: new Map(),
    agreement: tier,
    scope: sliceScope('campus', LAYOUT),
    maxSlices: 8,
  });
  const mapper = new SssdIdMapper({ ...LAYOUT, placement: slices.book });
  return { map: (sid: string) => slices.withAgreedSlices('campus', async () => mapper.map(sid).id), tier };
}

const SIDS = [`${A}-500`, `${A}-1500`, `${B}-500`, `${B}-1500`];

describe('ID-mapping slices agreed through the shared tier', () => {
  it('two replicas meeting colliding domains in opposite orders give every SID the same id', async () => {
    const [one, two] = [await replica(), await replica()];
    const fromOne: Record<string, number> = {};
    for (const sid of SIDS) fromOne[sid] = await one.map(sid);
    const fromTwo: Record<string, number> = {};
    for (const sid of [...SIDS].reverse()) fromTwo[sid] = await two.map(sid);
    expect(fromTwo).toEqual(fromOne);
    // A got its hashed slice (first writer); B the next free one; no id is given twice.
    expect(fromOne[`${A}-500`]).toBe(16_500);
    expect(new Set(Object.values(fromOne)).size).toBe(SIDS.length);
  });

  it('a restarted replica gets the same slices back, even when it meets B first', async () => {
    const before = await replica();
    const expected = await Promise.all(SIDS.map((sid) => before.map(sid)));
    const restarted = await replica();
    const again: number[] = [];
    for (const sid of [...SIDS].reverse()) again.unshift(await restarted.map(sid));
    expect(again).toEqual(expected);
  });

  it('while Redis is away, a range nobody agreed on is a retryable 503; agreed ones keep mapping', async () => {
    const r = await replica();
    const known = await r.map(`${A}-500`);
    await redis.stop('SIGKILL');
    try {
      expect(await r.map(`${A}-500`)).toBe(known);
      const err = await r.map('S-1-5-21-1000-2000-9-500').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IdmountError);
      expect(err).toMatchObject({ code: 'SOURCE_UNAVAILABLE', retryAfter: 5 });
      expect((err as Error).message).toMatch(/not agreed between the replicas yet/);
    } finally {
      await redis.start();
    }
  });
});
