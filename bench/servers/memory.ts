// Memory: the RSS of one idmount app after it has cached N distinct identities (default 100 000),
// each with a home mount, two proposal mounts and its plan serialised, with the product's own
// defaults: started with the node flags of `npm start` (bench/run.ts), and the cache's own trim
// after the fill burst (cache.trimAfterIdle). Reports the peak RSS (the kernel's high-water mark).
import { Writable } from 'node:stream';
import pino from 'pino';
import { buildApp } from '../../dist/app.js';
import type { IdentitySource } from '../../dist/identity/types.js';
import { loadConfig, parseConfig } from '../../dist/settings.js';

const count = Number(process.env.BENCH_USERS ?? 100_000);
const proposals = 2_000;

/**
 * A synthetic source (a bench stand-in, not a directory): it computes each user's record, so the
 * RSS measured is the cache's and not a copy of a directory held in memory. Each user has a
 * user-private group, 'users' and two proposal groups — a typical facility account.
 */
const synthetic: IdentitySource = {
  name: 'synthetic',
  type: 'synthetic',
  async lookup(name) {
    const i = Number(name.slice(4));
    const proposal = (p: number) => ({ name: `proposal-mx${String(p).padStart(4, '0')}`, gid: 300_000 + p });
    return {
      name,
      uid: 100_000 + i,
      gid: 100_000 + i,
      home: `/home/${name}`,
      gecos: `User Number ${i}`,
      shell: '/bin/bash',
      groups: [
        { name, gid: 100_000 + i },
        { name: 'users', gid: 100 },
        proposal(i % proposals),
        proposal((i * 7 + 3) % proposals),
      ],
      primaryGroupName: name,
    };
  },
  health: () => ({ up: true, since: new Date().toISOString() }),
  close: async () => {},
};

const demo = loadConfig(undefined).config;
const config = parseConfig(
  {
    auth: { disabled: true },
    sources: [{ name: 'synthetic', type: 'file', path: '/dev/null' }],
    cache: { maxEntries: count + 1000 },
    // The embedded demo's rules: a home mount and a mount per proposal group.
    home: demo.home,
    data: demo.data,
  },
  'bench',
);
// The app's log, kept in memory: the bench waits for the trim's own log line.
const lines: string[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  }),
);
const trimmed = () => lines.map((l) => JSON.parse(l)).find((l) => l.msg?.includes('returned to the OS'));
const app = await buildApp(config, { baseDir: '/', loggerInstance: logger, sources: [synthetic] });
await app.ready();
const before = process.memoryUsage();
for (let i = 0; i < count; i++) await app.identity.resolver.resolve(`user${i}`);
const filled = process.memoryUsage();
// ru_maxrss: the most resident memory the process has had, in KiB.
const peakMB = process.resourceUsage().maxRSS / 1024;
// The replica goes quiet after the burst; its trim runs cache.trimAfterIdle (10 s) later.
const deadline = Date.now() + config.cache.trimAfterIdle + 20_000;
while (trimmed() === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
const trim = trimmed();
if (trim === undefined) throw new Error('the cache did not trim the heap after the fill');
await new Promise((r) => setTimeout(r, 500));
const after = process.memoryUsage();
const plan = (await app.identity.resolver.resolve('user1')).derived;
process.stdout.write(
  `${JSON.stringify({
    users: count,
    cached: app.identity.resolver.size(),
    rssBeforeMB: before.rss / 2 ** 20,
    rssPeakMB: peakMB,
    rssFilledMB: filled.rss / 2 ** 20,
    rssAfterMB: after.rss / 2 ** 20,
    heapAfterMB: after.heapUsed / 2 ** 20,
    heapTotalMB: after.heapTotal / 2 ** 20,
    trimPauseMs: trim.pauseMs,
    externalMB: after.external / 2 ** 20,
    planBytes: plan.ok ? plan.body.length : 0,
  })}\n`,
);
await app.close();
