// Three idmount processes (real servers on loopback) over one real slapd and one real Redis, the
// way the chart runs replicas with cache.shared:
// - a local miss on one replica is answered from the shared tier: one directory search per user;
// - an eviction on one replica is seen by all three on their next request;
// - entries planted in Redis (uid 0, a home with `..`, garbage, a future fetch time) are refused,
//   counted and logged, and the directory answers instead;
// - slapd stopped and a replica restarted: users in the shared tier still get plans (stale), the
//   others 503 with Retry-After;
// - Redis killed (and frozen) under a bounded load: no failed spawn for a cached or
//   directory-answerable user; after Redis returns the replicas use it again by themselves.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../harness/redis.js';
import {
  type DirectoryFixture,
  groupDn,
  ldapSourceFor,
  type Slapd,
  startSlapd,
} from '../../harness/slapd.js';
import { demoConfig, TOKENS } from '../../helpers/app.js';
import { type RunningService, scratchDir, serveIdmount, writeYaml } from '../../helpers/serve.js';

const PREFIX = 'idmount-test:';

const fixture: DirectoryFixture = {
  users: [
    { uid: 'alice', uidNumber: 2001, gidNumber: 2001 },
    { uid: 'bob', uidNumber: 2002, gidNumber: 2002 },
    { uid: 'carol', uidNumber: 2003, gidNumber: 2003 },
    { uid: 'dave', uidNumber: 2004, gidNumber: 2004 },
    ...Array.from({ length: 40 }, (_, i) => ({
      uid: `user${i}`,
      uidNumber: 10_000 + i,
      gidNumber: 10_000 + i,
    })),
  ],
  groups: [
    { cn: 'proposal-mx1234', gidNumber: 30001, users: [] },
    { cn: 'proposal-ih5678', gidNumber: 30002, users: ['alice', 'carol'] },
  ],
};

let slapd: Slapd;
let redis: RedisServer;
const dir = scratchDir('idmount-replicas-');

/** A replica's config: the demo mount rules over slapd, sharing the tier; `cache` merged in. */
function replicaConfig(name: string, cache: Record<string, unknown> = {}) {
  const demo = demoConfig();
  return writeYaml(dir, `${name}.yaml`, {
    ...demo,
    auth: { ...demo.auth, rateLimit: { max: 1_000_000, window: '1m' } },
    sources: [ldapSourceFor(slapd, { backoff: { initial: '100ms', max: '500ms' }, connectTimeout: '1s' })],
    cache: {
      ttl: '1h',
      staleIfError: '1h',
      refreshAhead: 0,
      shared: { url: redis.url, keyPrefix: PREFIX },
      ...cache,
    },
  });
}

const replicas: RunningService[] = [];
const replica = (i: number) => replicas[i] as RunningService;

beforeAll(async () => {
  [slapd, redis] = await Promise.all([startSlapd({ schema: 'rfc2307', fixture }), startRedis()]);
  replicas.push(...(await Promise.all([0, 1, 2].map((i) => serveIdmount(replicaConfig(`r${i}`))))));
  // Each replica reaches Redis in the background; a spawn never waits for it.
  await Promise.all(
    replicas.map((r) => until(async () => (await metric(r, 'idmount_shared_tier_up')) === 1)),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await Promise.all([slapd?.close(), redis?.close()]);
});

const headers = (token: string) => ({ authorization: `Bearer ${token}` });

async function plan(service: RunningService, name: string) {
  const res = await fetch(`${service.url}/users/${name}/spawn-plan`, { headers: headers(TOKENS.hub) });
  const text = await res.text();
  return {
    status: res.status,
    cache: res.headers.get('x-idmount-cache'),
    retryAfter: res.headers.get('retry-after'),
    body: JSON.parse(text) as Record<string, unknown> & {
      uid: number;
      stale: boolean;
      volumes: { nfs?: { path: string } }[];
    },
  };
}

const evict = async (service: RunningService, name: string) =>
  (
    await fetch(`${service.url}/users/${name}/cache`, { method: 'DELETE', headers: headers(TOKENS.ops) })
  ).json();

/** One series' value from a replica's /metrics (the first line whose name and labels match). */
async function metric(service: RunningService, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function until(check: () => Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const userSearches = async (name: string) => {
  await new Promise((r) => setTimeout(r, 300)); // slapd's stats log is written as it goes
  return slapd.searchFilters().filter((f) => f.includes(`(uid=${name})`)).length;
};

const dataPaths = (body: { volumes: { nfs?: { path: string } }[] }) =>
  body.volumes.map((v) => v.nfs?.path).filter((p) => p?.startsWith('/data/'));

/** The user's key in Redis, whatever this configuration's fingerprint is. */
async function keyOf(name: string): Promise<string> {
  const keys = await redis.client().keys(`${PREFIX}id:*:${name}`);
  expect(keys).toHaveLength(1);
  return keys[0] as string;
}

describe('three replicas sharing one Redis', () => {
  it('answer a user missing locally from the shared tier: one directory search for three replicas', async () => {
    expect((await plan(replica(0), 'bob')).cache).toBe('miss');
    for (const i of [1, 2]) {
      const answer = await plan(replica(i), 'bob');
      expect(answer).toMatchObject({ status: 200, cache: 'shared' });
      expect(answer.body.uid).toBe(2002);
    }
    expect((await plan(replica(1), 'bob')).cache).toBe('hit');
    expect(await userSearches('bob')).toBe(1);
  });

  it('see an eviction made on one replica on their next request', async () => {
    for (const i of [0, 1, 2]) await plan(replica(i), 'alice');
    // alice joins a new proposal in the directory; every replica still serves its cached plan.
    const ldif = [
      `dn: ${groupDn({ cn: 'proposal-ab1234' }, slapd.suffix)}`,
      'objectClass: posixGroup',
      'cn: proposal-ab1234',
      'gidNumber: 30003',
      'memberUid: alice',
      '',
    ].join('\n');
    await new Promise<void>((resolve, reject) => {
      const child = execFile(
        'ldapadd',
        ['-x', '-H', slapd.url, '-D', slapd.rootDN, '-w', slapd.rootPassword],
        (err) => (err ? reject(err) : resolve()),
      );
      child.stdin?.end(ldif);
    });
    for (const i of [1, 2])
      expect(dataPaths((await plan(replica(i), 'alice')).body)).toEqual(['/data/visitor/ih5678']);

    expect(await evict(replica(0), 'alice')).toEqual({ name: 'alice', evicted: true, shared: true });
    await new Promise((r) => setTimeout(r, 200));
    for (const i of [0, 1, 2]) {
      const answer = await plan(replica(i), 'alice');
      expect(dataPaths(answer.body).sort()).toEqual(['/data/visitor/ab1234', '/data/visitor/ih5678']);
    }
    // One replica asked the directory again; the other two took its answer from the tier.
    expect(await userSearches('alice')).toBe(2);
    expect(await metric(replica(1), 'idmount_shared_tier_evictions_received_total')).toBeGreaterThanOrEqual(
      1,
    );
  });

  const good = async () => JSON.parse((await redis.client().get(await keyOf('carol'))) as string);
  const poisons: { sentence: string; reason: string; value: (entry: { identity: unknown[] }) => string }[] = [
    {
      sentence: 'uid 0 (well-formed: the policy refuses it)',
      reason: 'plan',
      value: (e) => JSON.stringify({ ...e, identity: [e.identity[0], 0, 0, ...e.identity.slice(3)] }),
    },
    {
      sentence: 'a home that climbs out of its root with ..',
      reason: 'plan',
      value: (e) =>
        JSON.stringify({
          ...e,
          identity: [...e.identity.slice(0, 3), '/home/../../etc', ...e.identity.slice(4)],
        }),
    },
    { sentence: 'garbage', reason: 'schema', value: () => '\u0000{"kind":"found", uid: 0' },
    {
      sentence: 'a field this version does not know',
      reason: 'schema',
      value: (e) => JSON.stringify({ ...e, runAsUser: 0 }),
    },
    {
      sentence: 'a fetch time an hour ahead (would never expire)',
      reason: 'clock',
      value: (e) => JSON.stringify({ ...e, fetchedAt: Date.now() + 3_600_000 }),
    },
  ];

  it.each(poisons)(
    'refuse an entry planted in Redis with $sentence, and ask the directory',
    async ({ reason, value }) => {
      await plan(replica(0), 'carol');
      await until(async () => (await redis.client().keys(`${PREFIX}id:*:carol`)).length === 1);
      const key = await keyOf('carol');
      const entry = await good();
      // Evicted everywhere, then the planted entry is what a replica missing carol finds first.
      expect(await evict(replica(0), 'carol')).toMatchObject({ shared: true });
      await redis.client().set(key, value(entry));
      const before =
        (await metric(replica(1), `idmount_shared_entries_refused_total{reason="${reason}"}`)) ?? 0;
      const answer = await plan(replica(1), 'carol');
      expect(answer).toMatchObject({ status: 200, cache: 'miss' });
      expect(answer.body.uid).toBe(2003);
      expect(answer.body.volumes.every((v) => v.nfs === undefined || !v.nfs.path.includes('..'))).toBe(true);
      expect(await metric(replica(1), `idmount_shared_entries_refused_total{reason="${reason}"}`)).toBe(
        before + 1,
      );
      expect(replica(1).output()).toContain('shared cache entry refused');
      // The directory's answer replaced the planted entry.
      await until(async () => (await good()).identity[1] === 2003 && (await good()).fetchedAt <= Date.now());
    },
  );

  it('serve users from the tier after slapd stopped and a replica restarted; others get 503', async () => {
    for (const name of ['dave', 'user0']) await plan(replica(0), name);
    await until(async () => (await redis.client().keys(`${PREFIX}id:*:user0`)).length === 1);
    await slapd.stop();
    try {
      await replica(2).stop();
      // The restarted replica's TTL is short, so what the tier holds is past it: stale, not fresh.
      await new Promise((r) => setTimeout(r, 1_100));
      replicas[2] = await serveIdmount(replicaConfig('r2-restarted', { ttl: '1s' }));
      await until(async () => (await metric(replica(2), 'idmount_shared_tier_up')) === 1);
      for (const name of ['dave', 'user0', 'alice', 'bob']) {
        const answer = await plan(replica(2), name);
        expect(answer, name).toMatchObject({ status: 200, cache: 'stale' });
        expect(answer.body.stale).toBe(true);
      }
      const unknown = await plan(replica(2), 'user39');
      expect(unknown.status).toBe(503);
      expect(Number(unknown.retryAfter)).toBeGreaterThan(0);
      // The replicas that kept running answer from memory, fresh.
      expect(await plan(replica(0), 'dave')).toMatchObject({ status: 200, cache: 'hit' });
    } finally {
      await slapd.start();
    }
    await until(async () => (await plan(replica(2), 'user39')).status === 200);
  }, 90_000);

  it('keep answering every spawn while Redis is killed under load, and use it again once it is back', async () => {
    const cached = Array.from({ length: 10 }, (_, i) => `user${i}`);
    const uncached = Array.from({ length: 20 }, (_, i) => `user${10 + i}`);
    for (const name of cached) for (const i of [0, 1, 2]) await plan(replica(i), name);
    const failures: string[] = [];
    let sent = 0;
    let afterKill = 0;
    let killedAt = Number.POSITIVE_INFINITY;
    const deadline = Date.now() + 10_000;
    // Six workers, each sending one request at a time, until 2 s after the kill: at most 5000
    // requests or 10 s in all.
    const worker = async (w: number) => {
      let k = w;
      while (Date.now() < Math.min(deadline, killedAt + 2_000) && sent < 5_000) {
        sent += 1;
        if (Date.now() > killedAt) afterKill += 1;
        const name =
          k % 3 === 0 ? (uncached[k % uncached.length] as string) : (cached[k % cached.length] as string);
        const answer = await plan(replica(k % 3), name);
        if (answer.status !== 200) failures.push(`${name} on replica ${k % 3}: ${answer.status}`);
        k += 6;
      }
    };
    const killer = (async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      await redis.stop('SIGKILL');
      killedAt = Date.now();
    })();
    await Promise.all([...Array.from({ length: 6 }, (_, w) => worker(w)), killer]);
    expect(failures).toEqual([]);
    expect(afterKill).toBeGreaterThan(100);
    for (const r of replicas) expect(await metric(r, 'idmount_shared_tier_up')).toBe(0);

    // Redis comes back (empty, like a pod without a volume): every replica reconnects by itself.
    await redis.start();
    await Promise.all(
      replicas.map((r) => until(async () => (await metric(r, 'idmount_shared_tier_up')) === 1)),
    );
    expect((await plan(replica(0), 'user35')).cache).toBe('miss');
    await until(async () => (await redis.client().keys(`${PREFIX}id:*:user35`)).length === 1);
    expect((await plan(replica(1), 'user35')).cache).toBe('shared');
    // Evictions reach the others again (the subscription was renewed).
    expect(await evict(replica(0), 'user0')).toMatchObject({ shared: true });
    await new Promise((r) => setTimeout(r, 200));
    expect((await plan(replica(1), 'user0')).cache).toBe('miss');
  }, 90_000);

  it('answer within the usual time while Redis accepts connections but never answers', async () => {
    redis.pause();
    try {
      for (const [i, name] of ['user36', 'user37', 'user38'].entries()) {
        const started = performance.now();
        const answer = await plan(replica(i), name);
        expect(answer.status).toBe(200);
        // One command timeout (200 ms) at most, then the tier is skipped.
        expect(performance.now() - started).toBeLessThan(1_500);
      }
      // Cached users are answered from memory without asking Redis at all.
      const started = performance.now();
      expect((await plan(replica(0), 'user1')).cache).toBe('hit');
      expect(performance.now() - started).toBeLessThan(200);
    } finally {
      redis.resume();
    }
  });
});
