// The shared cache tier in `npm run bench` (alone: BENCH_ONLY=shared npm run bench):
//   a. a local miss answered from the shared tier, side by side with a directory miss and a local
//      hit (req/s, p50/p99, and the ratios), on one replica each;
//   b. directory searches per user when three replicas start cold and each user spawns once on
//      each, and again after all three are replaced (a rollout), with and without the tier.
// Bounded: BENCH_SHARED_ROUNDS rounds (default 3) of BENCH_ROUND_SECONDS, and 300 users in (b).
import { startRedis } from '../test/harness/redis.js';
import type { Slapd } from '../test/harness/slapd.js';

export interface BenchTools {
  server(script: string, env: Record<string, string>): Promise<string>;
  stop(url: string): Promise<void>;
  load(
    url: string,
    paths: (i: number) => string,
    options?: { seconds?: number; amount?: number; connections?: number },
  ): Promise<{ rps: number; p50: number; p99: number; errors: number; non2xx: number }>;
  config(name: string, cache: object): string;
  fetchPlan(url: string, name: string): Promise<number>;
  log(line: string): void;
  fmt(n: number, digits?: number): string;
}

const ROUNDS = Number(process.env.BENCH_SHARED_ROUNDS ?? 3);
/** Users the miss comparison cycles over; each replica keeps only LOCAL_ENTRIES of them. */
const USERS = 2_000;
const LOCAL_ENTRIES = 100;
const ROLLOUT_USERS = 300;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

export async function sharedTierBench(slapd: Slapd, tools: BenchTools) {
  const { server, load, config, fmt, log } = tools;
  const rows: string[][] = [];
  const rollouts: string[][] = [];
  const notes: string[] = [];
  const redis = await startRedis();
  try {
    // a. Three replicas, one per kind of answer. The miss sides keep only 100 users in memory
    //    (and as many plans), cycling over 2000: every request misses locally.
    const tight = { ttl: '1h', refreshAhead: 0, maxEntries: LOCAL_ENTRIES, planEntries: LOCAL_ENTRIES };
    const viaShared = await server('idmount.ts', {
      BENCH_CONFIG: config('shared-miss', { ...tight, shared: { url: redis.url, keyPrefix: 'bench-a:' } }),
    });
    const viaDirectory = await server('idmount.ts', { BENCH_CONFIG: config('directory-miss', tight) });
    const local = await server('idmount.ts', {
      BENCH_CONFIG: config('local-hit', { ttl: '1h', refreshAhead: 0 }),
    });
    const cycle = (offset: number) => (i: number) => `/users/user${offset + (i % USERS)}/spawn-plan`;
    log('shared tier a: filling the tier, warming every side');
    await load(viaShared, cycle(0), { amount: USERS, connections: 8 });
    await load(viaShared, cycle(0));
    await load(viaDirectory, cycle(USERS));
    await load(local, (i) => `/users/user${i % LOCAL_ENTRIES}/spawn-plan`, { amount: 2 * LOCAL_ENTRIES });
    await load(local, (i) => `/users/user${i % LOCAL_ENTRIES}/spawn-plan`);
    const sides = {
      shared: { url: viaShared, paths: cycle(0), runs: [] as Awaited<ReturnType<typeof load>>[] },
      directory: { url: viaDirectory, paths: cycle(USERS), runs: [] as Awaited<ReturnType<typeof load>>[] },
      hit: {
        url: local,
        paths: (i: number) => `/users/user${i % LOCAL_ENTRIES}/spawn-plan`,
        runs: [] as Awaited<ReturnType<typeof load>>[],
      },
    };
    const order = Object.values(sides);
    for (let round = 0; round < ROUNDS; round++) {
      log(`shared tier a: round ${round + 1}/${ROUNDS}`);
      // Rotate which side goes first: the machine drifts over a minute.
      for (let k = 0; k < order.length; k++) {
        const side = order[(round + k) % order.length] as (typeof order)[number];
        side.runs.push(await load(side.url, side.paths));
      }
    }
    const rps = (runs: { rps: number }[]) => runs.reduce((s, r) => s + r.rps, 0) / runs.length;
    const ratio = (a: { rps: number }[], b: { rps: number }[]) =>
      median(a.map((r, i) => r.rps / (b[i] as { rps: number }).rps));
    const row = (
      measure: string,
      runs: { rps: number; p50: number; p99: number }[],
      context: string,
      versus: string,
    ) => [
      measure,
      fmt(rps(runs)),
      `${fmt(median(runs.map((r) => r.p50)), 1)} / ${fmt(median(runs.map((r) => r.p99)), 1)}`,
      context,
      versus,
    ];
    rows.push(
      row(
        `Local miss answered from the shared tier (${USERS} users, ${LOCAL_ENTRIES} kept locally)`,
        sides.shared.runs,
        'Redis GET + schema + policy + plan',
        `${fmt(ratio(sides.shared.runs, sides.directory.runs), 2)}× the directory miss`,
      ),
      row(
        'Local miss answered by the directory (same shape, no tier)',
        sides.directory.runs,
        'LDAP user + group search',
        '1.00×',
      ),
      row(
        'Local hit (100 users, all in memory)',
        sides.hit.runs,
        'no I/O',
        `${fmt(ratio(sides.hit.runs, sides.shared.runs), 2)}× the shared-tier miss`,
      ),
    );
    const bad = Object.values(sides)
      .flatMap((s) => s.runs)
      .reduce((n, r) => n + r.errors + r.non2xx, 0);
    if (bad > 0) notes.push(`shared tier comparison: ${bad} errors or non-2xx answers`);
    await Promise.all([viaShared, viaDirectory, local].map((url) => tools.stop(url)));

    // b. Three replicas start cold; each user spawns once on each; then all three are replaced.
    const searches = async (first: number) => {
      await new Promise((r) => setTimeout(r, 500)); // let slapd flush its stats log
      const wanted = new Set(Array.from({ length: ROLLOUT_USERS }, (_, i) => `(uid=user${first + i})`));
      return slapd.searchFilters().filter((f) => [...wanted].some((w) => f.includes(w))).length;
    };
    const rollout = async (label: string, first: number, cache: object) => {
      const start = () =>
        Promise.all(
          [0, 1, 2].map((i) => server('idmount.ts', { BENCH_CONFIG: config(`${label}-${i}`, cache) })),
        );
      const spawnEverywhere = async (replicas: string[]) => {
        const failures: string[] = [];
        // Eight users at a time; each user on replica 0, then 1, then 2.
        for (let u = 0; u < ROLLOUT_USERS; u += 8) {
          await Promise.all(
            Array.from({ length: Math.min(8, ROLLOUT_USERS - u) }, async (_, k) => {
              for (const url of replicas) {
                const status = await tools.fetchPlan(url, `user${first + u + k}`);
                if (status !== 200) failures.push(`${status}`);
              }
            }),
          );
        }
        if (failures.length > 0) notes.push(`${label}: ${failures.length} failed spawns`);
      };
      const before = await searches(first);
      const cold = await start();
      await spawnEverywhere(cold);
      const afterStart = await searches(first);
      await Promise.all(cold.map((url) => tools.stop(url)));
      const rolled = await start();
      await spawnEverywhere(rolled);
      const afterRollout = await searches(first);
      await Promise.all(rolled.map((url) => tools.stop(url)));
      return { start: (afterStart - before) / ROLLOUT_USERS, total: (afterRollout - before) / ROLLOUT_USERS };
    };
    log('shared tier b: three replicas, started cold and then rolled, with the shared tier');
    const withTier = await rollout('rollout-shared', 3_000, {
      ttl: '1h',
      refreshAhead: 0,
      shared: { url: redis.url, keyPrefix: 'bench-b:' },
    });
    log('shared tier b: the same without it');
    const alone = await rollout('rollout-alone', 3_000 + ROLLOUT_USERS, { ttl: '1h', refreshAhead: 0 });
    rollouts.push(
      [
        `3 replicas start cold; each of ${ROLLOUT_USERS} users spawns once on each`,
        fmt(withTier.start, 2),
        fmt(alone.start, 2),
      ],
      [
        'the same, then all three replaced (a rollout) and each user spawns on each again: in all',
        fmt(withTier.total, 2),
        fmt(alone.total, 2),
      ],
    );
  } finally {
    await redis.close();
  }
  const table = [
    '| spawn-plan answered by | req/s | p50 / p99 (ms) | what the answer costs | ratio |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    '| directory user searches per user (target: 1) | with the shared tier | each replica alone |',
    '| --- | --- | --- |',
    ...rollouts.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
  return { table, notes };
}
