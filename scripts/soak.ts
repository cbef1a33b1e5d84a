// The soak: the real `idmount serve` on a real slapd with generated users, driven at a fixed rate
// on loopback by autocannon with a mix of cached, uncached and unknown users. Prints p50/p99, the
// service's RSS over time and every unexpected answer; exits 1 if there was any.
//
//   npm run soak                                   # 5 minutes at 200 requests/s
//   npm run soak -- --duration 30s --rate 100      # what npm test runs (test/load/soak.test.ts)
//
// The last line is `SOAK_RESULT {json}` for machines.

import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bulkFixture, bulkMountRules, ldapSourceFor, startSlapd } from '../test/harness/slapd.js';
import { scratchDir, serveIdmount, writeYaml } from '../test/helpers/serve.js';

interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
}
interface AutocannonContext {
  kind?: Kind;
}
interface AutocannonResult {
  requests: { total: number; average: number };
  latency: { p50: number; p90: number; p99: number; max: number; average: number };
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
  duration: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult> & { stop(): void };
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

type Kind = 'cached' | 'uncached' | 'unknown';

/** "30s", "5m", "90" (seconds) → seconds. */
function seconds(text: string): number {
  const match = /^(\d+)(s|m)?$/.exec(text);
  if (match === null) throw new Error(`--duration takes e.g. 30s or 5m, not '${text}'`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

export interface SoakResult {
  durationSeconds: number;
  rate: number;
  requests: number;
  byKind: Record<Kind, Record<string, number>>;
  unexpected: number;
  unexpectedSamples: string[];
  errors: number;
  timeouts: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  rssMiB: Array<{ atSeconds: number; rss: number }>;
}

export async function soak(options: {
  durationSeconds: number;
  rate: number;
  users: number;
}): Promise<SoakResult> {
  const { durationSeconds, rate, users } = options;
  const dir = scratchDir('idmount-soak-');
  const slapd = await startSlapd({ schema: 'rfc2307', fixture: bulkFixture({ users, groups: 200 }) });
  const token = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  const config = writeYaml(dir, 'config.yaml', {
    server: { host: '127.0.0.1', port: 8080 },
    logging: { level: 'warn' },
    auth: {
      tokens: [{ name: 'soak', tokenFile: join(dir, 'token'), scopes: ['spawn-plan:read', 'users:read'] }],
      rateLimit: { max: 10_000_000, window: '1m' },
    },
    sources: [ldapSourceFor(slapd)],
    // Short TTLs so the run keeps missing the cache (and refilling it) instead of settling into hits.
    cache: { ttl: '20s', negativeTtl: '5s', staleIfError: '1h' },
    policy: { minUid: 1000, minGid: 1000 },
    ...bulkMountRules,
  });
  const service = await serveIdmount(config);

  // The mix: 60% a hot set of 100 users (cache hits), 25% a sweep over every directory user
  // (misses, and again after the TTL), 15% names nobody has (404, then negative-cache hits).
  const HOT = Math.min(100, users);
  let sweep = 0;
  let unknown = 0;
  let turn = 0;
  const pick = (): { kind: Kind; name: string } => {
    turn += 1;
    const slot = turn % 20;
    if (slot < 12) return { kind: 'cached', name: `user${(turn * 7) % HOT}` };
    if (slot < 17) return { kind: 'uncached', name: `user${HOT + (sweep++ % (users - HOT))}` };
    return { kind: 'unknown', name: `nobody${unknown++ % 5000}` };
  };
  const byKind: SoakResult['byKind'] = { cached: {}, uncached: {}, unknown: {} };
  const unexpectedSamples: string[] = [];
  let unexpected = 0;

  const rssMiB: SoakResult['rssMiB'] = [];
  const started = Date.now();
  const sampleEvery = Math.max(1, Math.round(durationSeconds / 20)) * 1000;
  const sample = () => {
    const rss = service.rssBytes();
    if (rss !== undefined)
      rssMiB.push({ atSeconds: Math.round((Date.now() - started) / 1000), rss: rss / 2 ** 20 });
  };
  sample();
  const sampler = setInterval(sample, sampleEvery);

  let result: AutocannonResult;
  try {
    result = await autocannon({
      url: service.url,
      connections: 20,
      overallRate: rate,
      duration: durationSeconds,
      headers: { authorization: `Bearer ${token}` },
      requests: [
        {
          method: 'GET',
          setupRequest: (request: AutocannonRequest, context: AutocannonContext) => {
            const { kind, name } = pick();
            context.kind = kind;
            request.path = `/users/${name}/spawn-plan`;
            return request;
          },
          onResponse: (status: number, body: string, context: AutocannonContext) => {
            const kind = context.kind as Kind;
            byKind[kind][status] = (byKind[kind][status] ?? 0) + 1;
            const expected = kind === 'unknown' ? 404 : 200;
            if (status !== expected) {
              unexpected += 1;
              if (unexpectedSamples.length < 10)
                unexpectedSamples.push(`${kind} → ${status}: ${body.slice(0, 200)}`);
            }
          },
        },
      ],
    });
  } finally {
    clearInterval(sampler);
    sample();
    await service.stop();
    await slapd.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    durationSeconds,
    rate,
    requests: result.requests.total,
    byKind,
    unexpected,
    unexpectedSamples,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    rssMiB: rssMiB.map((s) => ({ atSeconds: s.atSeconds, rss: Math.round(s.rss * 10) / 10 })),
  };
}

function report(r: SoakResult) {
  const lines = [
    `soak: ${r.requests} requests in ${r.durationSeconds} s at a fixed ${r.rate}/s (20 connections, loopback)`,
    `  latency (ms, corrected for coordinated omission): p50 ${r.latencyMs.p50}  p90 ${r.latencyMs.p90}  p99 ${r.latencyMs.p99}  max ${r.latencyMs.max}`,
    ...(['cached', 'uncached', 'unknown'] as const).map(
      (kind) =>
        `  ${kind.padEnd(8)} ${Object.entries(r.byKind[kind])
          .map(([status, n]) => `${status}: ${n}`)
          .join('  ')}`,
    ),
    `  unexpected answers: ${r.unexpected}   socket errors: ${r.errors}   timeouts: ${r.timeouts}`,
    ...r.unexpectedSamples.map((s) => `    ${s}`),
    `  service RSS (MiB): ${r.rssMiB.map((s) => `${s.atSeconds}s ${s.rss}`).join(' | ')}`,
  ];
  console.log(lines.join('\n'));
  console.log(`SOAK_RESULT ${JSON.stringify(r)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5m' },
      rate: { type: 'string', default: '200' },
      users: { type: 'string', default: '5000' },
    },
  });
  const result = await soak({
    durationSeconds: seconds(values.duration),
    rate: Number(values.rate),
    users: Number(values.users),
  });
  report(result);
  process.exitCode = result.unexpected + result.errors + result.timeouts === 0 ? 0 : 1;
}
