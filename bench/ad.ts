// The Active Directory rows of `npm run bench` (alone: BENCH_ONLY=ad): nested groups from the
// user's tokenGroups against the in-chain rule, side by side on the test harness's Samba AD DC,
// for users in 50 and 500 nested groups. Lookups go straight through the `ad` source (no cache,
// no HTTP), one at a time, so a lookup's time is the directory work of one way: lookups per
// second, p50 / p99 ms per lookup, and where the CPU goes (idmount's process, Samba's).
import { spawnSync } from 'node:child_process';
import pino from 'pino';
import { AdSourceConfigSchema } from '../src/identity/sources/ad/config.js';
import { createAdSource } from '../src/identity/sources/ad/source.js';
import type { IdentitySource } from '../src/identity/types.js';
import { adConnection, type SambaDc, type SambaFixture, startSambaDc } from '../test/harness/samba.js';
import { cpuSeconds, fmt, median } from './measure.js';

/** Groups a user is in, transitively. */
const SIZES = [50, 500];
/** Nesting levels: a fifth of the groups are direct memberships, each the member of one on the next level. */
const LEVELS = 5;
const USERS_PER_SIZE = 5;
const ROUNDS = Number(process.env.BENCH_AD_ROUNDS ?? 5);
/** Each side of a round stops at whichever comes first. */
const ROUND_MS = Number(process.env.BENCH_AD_ROUND_SECONDS ?? 2) * 1000;
const ROUND_LOOKUPS = Number(process.env.BENCH_AD_ROUND_LOOKUPS ?? 200);
const PRIMARY_GID = 39_999;

const userName = (size: number, k: number) => `u${size}-${k}`;

/** Users u<size>-<k>, each in `size` groups: size / LEVELS direct ones, nested LEVELS deep. */
export function nestedFixture(): SambaFixture {
  const fixture: SambaFixture = { users: [], groups: [{ name: 'bench-staff', gidNumber: PRIMARY_GID }] };
  for (const [s, size] of SIZES.entries()) {
    const users = Array.from({ length: USERS_PER_SIZE }, (_, k) => userName(size, k + 1));
    for (const [k, name] of users.entries()) {
      fixture.users.push({ name, uidNumber: 60_000 + s * 100 + k, gidNumber: PRIMARY_GID });
    }
    const width = size / LEVELS;
    for (let i = 0; i < size; i++) {
      fixture.groups.push({
        name: `n${size}-g${i}`,
        gidNumber: 40_000 + s * 1_000 + i,
        // Level 0 lists the users; every other group lists the group below it.
        members: i < width ? users : [`n${size}-g${i - width}`],
      });
    }
  }
  return fixture;
}

type Way = 'tokenGroups' | 'inChain';

const sambaVersion = () =>
  spawnSync('samba', ['--version'], { encoding: 'utf8' })
    .stdout?.trim()
    .replace(/^Version /, 'Samba ') || 'Samba';

function source(dc: SambaDc, nestedWith: Way): IdentitySource {
  const config = AdSourceConfigSchema.parse({
    name: `bench-ad-${nestedWith.toLowerCase()}`,
    type: 'ad',
    ...adConnection(dc),
    groups: { nestedWith },
  });
  return createAdSource(config, { log: pino({ level: 'silent' }), baseDir: '.' });
}

const gidsOf = async (s: IdentitySource, name: string) =>
  ((await s.lookup(name))?.groups ?? []).map((g) => g.gid).sort((x, y) => x - y);

/** Both ways must give the same groups, all `size` of them and the primary group, before anything is timed. */
async function checkSameAnswer(sides: Record<Way, IdentitySource>, size: number): Promise<void> {
  const name = userName(size, 1);
  const [tokens, inChain] = await Promise.all([gidsOf(sides.tokenGroups, name), gidsOf(sides.inChain, name)]);
  if (tokens.length !== size + 1 || JSON.stringify(tokens) !== JSON.stringify(inChain)) {
    throw new Error(
      `AD bench: ${name} has ${tokens.length} groups from tokenGroups and ${inChain.length} in-chain (want ${size + 1} both ways)`,
    );
  }
}

/** One side of a round: lookups one at a time over the size's users, bounded in time and count. */
async function round(s: IdentitySource, users: string[], tally: Tally, dcPid: number): Promise<number> {
  const [samba0, own0] = [cpuSeconds(dcPid), process.cpuUsage()];
  const started = performance.now();
  let count = 0;
  while (count < ROUND_LOOKUPS && performance.now() - started < ROUND_MS) {
    const t = performance.now();
    await s.lookup(users[count % users.length] as string);
    tally.ms.push(performance.now() - t);
    count += 1;
  }
  const elapsed = performance.now() - started;
  const own = process.cpuUsage(own0);
  tally.sambaCpu += cpuSeconds(dcPid) - samba0;
  tally.ownCpu += (own.user + own.system) / 1e6;
  return (count * 1000) / elapsed;
}

interface Tally {
  ms: number[];
  rates: number[];
  sambaCpu: number;
  ownCpu: number;
}
const newTally = (): Tally => ({ ms: [], rates: [], sambaCpu: 0, ownCpu: 0 });

/** ROUNDS rounds, each running both ways in random order after one discarded warm-up each. */
async function compare(sides: Record<Way, IdentitySource>, size: number, dcPid: number) {
  const users = Array.from({ length: USERS_PER_SIZE }, (_, k) => userName(size, k + 1));
  const tallies: Record<Way, Tally> = { tokenGroups: newTally(), inChain: newTally() };
  for (const way of ['tokenGroups', 'inChain'] as const) await round(sides[way], users, newTally(), dcPid);
  for (let r = 0; r < ROUNDS; r++) {
    const order: Way[] = Math.random() < 0.5 ? ['tokenGroups', 'inChain'] : ['inChain', 'tokenGroups'];
    for (const way of order) tallies[way].rates.push(await round(sides[way], users, tallies[way], dcPid));
  }
  const ratios = tallies.tokenGroups.rates.map((rate, i) => rate / (tallies.inChain.rates[i] as number));
  return { tallies, ratios };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
};

/** Lookups per second over all rounds, p50 / p99 ms per lookup, and how many lookups that is. */
const describeSide = (t: Tally) => {
  const rate = (t.ms.length * 1000) / t.ms.reduce((a, b) => a + b, 0);
  return `${fmt(rate, rate < 100 ? 1 : 0)} (p50 ${fmt(percentile(t.ms, 50), 1)} / p99 ${fmt(percentile(t.ms, 99), 1)} ms, ${t.ms.length} lookups)`;
};

const cpuPerLookup = (way: string, t: Tally) =>
  `${way} ${fmt((t.ownCpu * 1000) / t.ms.length, 2)} idmount + ${fmt((t.sambaCpu * 1000) / t.ms.length, 2)} Samba`;

/** The rows and notes of the AD comparison; starts and stops its own Samba DC. */
export async function adNesting(log: (line: string) => void): Promise<{ rows: string[][]; notes: string[] }> {
  const fixture = nestedFixture();
  log(`AD: provisioning a Samba DC with ${fixture.groups.length} groups and ${fixture.users.length} users`);
  const setupStarted = performance.now();
  const dc = await startSambaDc(fixture);
  const setupMs = performance.now() - setupStarted;
  const rows: string[][] = [];
  const notes: string[] = [];
  const opened: IdentitySource[] = [];
  try {
    const open = (way: Way) => {
      const s = source(dc, way);
      opened.push(s);
      return s;
    };
    const sides: Record<Way, IdentitySource> = { tokenGroups: open('tokenGroups'), inChain: open('inChain') };
    for (const size of SIZES) {
      log(`AD: users in ${size} nested groups, tokenGroups vs in-chain`);
      await checkSameAnswer(sides, size);
      const { tallies, ratios } = await compare(sides, size, dc.pid);
      const sorted = [...ratios].sort((x, y) => x - y);
      rows.push([
        `AD nested groups, user in ${size} groups (${LEVELS} levels): tokenGroups vs in-chain (lookups/s, one at a time)`,
        describeSide(tallies.tokenGroups),
        `${describeSide(tallies.inChain)} (in-chain rule)`,
        `${fmt(median(ratios), 2)} (${fmt(sorted[0] as number, 2)}–${fmt(sorted[sorted.length - 1] as number, 2)})`,
        '—',
        'measured',
      ]);
      notes.push(
        `CPU per AD lookup, users in ${size} groups (ms, user + system): ${cpuPerLookup('tokenGroups', tallies.tokenGroups)}; ${cpuPerLookup('in-chain', tallies.inChain)}.`,
      );
    }
  } finally {
    await Promise.all(opened.map((s) => s.close()));
    await dc.stop();
  }
  const { provisionMs, fixtureMs, bootMs } = dc.timings;
  notes.push(
    `AD rows: ${sambaVersion()} AD DC in one process (-M single) on loopback, set up in ${fmt(setupMs / 1000, 1)} s (provision ${fmt(provisionMs / 1000, 1)} s, ${fixture.groups.length} groups and ${fixture.users.length} users in one transaction ${fmt(fixtureMs / 1000, 1)} s, boot to LDAPS ${fmt(bootMs / 1000, 1)} s). ${ROUNDS} rounds per size, each side of a round at most ${fmt(ROUND_MS / 1000, 1)} s or ${ROUND_LOOKUPS} lookups, in random order, after one warm-up round; ${USERS_PER_SIZE} users per size in turn. The ratio is tokenGroups ÷ in-chain lookups/s, the median of the per-round ratios (lowest–highest). A tokenGroups lookup is the user search, a base read of tokenGroups and one objectSid search per 50 groups, sent together; an in-chain lookup is the user search and two group searches (the user's chain, the AD primary group's), whose time on Samba is the DC evaluating the rule (Samba's CPU above) and barely depends on how many groups the user is in; a Windows DC's figures may differ.`,
  );
  return { rows, notes };
}
