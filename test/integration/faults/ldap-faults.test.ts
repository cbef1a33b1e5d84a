// Directory faults with a real slapd, through the real app, while requests keep coming:
// - slapd stopped under load: every cached user keeps getting a plan (flagged stale past its TTL),
//   uncached users get 503 with Retry-After, nothing else; after slapd restarts idmount recovers
//   by itself within its backoff, without a restart.
// - slow directory: a delaying TCP proxy (run here, node:net) holds slapd's answers past the
//   operation timeout; uncached lookups fail with 503 long before the delay ends, cached users are
//   answered meanwhile.
// - connection reset in the middle of a search (the proxy destroys both sockets): a clean 503
//   with no internals, then recovery.
// (test/integration/ldap covers the sequential outage, one frozen connection and the backoff of
// the source itself; these add concurrency and the proxy-made faults.)
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { bulkFixture, ldapSourceFor, type Slapd, startSlapd } from '../../harness/slapd.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';

type ProxyMode = 'pass' | 'delay' | 'reset';

/** A TCP proxy to slapd that can delay slapd's answers or reset the connection on the next request. */
async function startProxy(target: number, delayMs: number) {
  let mode: ProxyMode = 'pass';
  const links = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    links.add(client).add(upstream);
    client.on('data', (data) => {
      if (mode === 'reset') {
        // A middlebox dropping the connection while the search is in flight: RST both ways.
        client.resetAndDestroy();
        upstream.resetAndDestroy();
        return;
      }
      upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (mode === 'delay') setTimeout(() => client.writable && client.write(data), delayMs).unref();
      else client.write(data);
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => {
        links.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    setMode(next: ProxyMode) {
      mode = next;
    },
    async close() {
      for (const s of links) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const USERS = 60;
const CACHED = Array.from({ length: 20 }, (_, i) => `user${i}`);
const UNCACHED = Array.from({ length: 20 }, (_, i) => `user${20 + i}`);

let slapd: Slapd;
beforeAll(async () => {
  slapd = await startSlapd({ schema: 'rfc2307', fixture: bulkFixture({ users: USERS, groups: 10 }) });
});
afterAll(async () => {
  await slapd?.close();
});

function ldapSource(port: number, overrides: Record<string, unknown> = {}) {
  return ldapSourceFor(slapd, {
    urls: [`ldap://127.0.0.1:${port}`],
    backoff: { initial: '100ms', max: '500ms' },
    ...overrides,
  });
}

/** The bulk fixture's users have homes under /home; the demo rules mount them from /export/home. */
const appFor = (source: Record<string, unknown>, now: () => number) =>
  testApp(
    demoConfig({
      sources: [source] as never,
      cache: { ttl: '1m', negativeTtl: '1s', staleIfError: '1h' },
      auth: { ...demoConfig().auth, rateLimit: { max: 1_000_000, window: '1m' } },
    }),
    { now },
  );

describe('slapd stopped and restarted while requests keep coming', () => {
  let app: App;
  let clock = Date.now();
  beforeAll(async () => {
    app = await appFor(ldapSource(slapd.port), () => clock);
    for (const name of CACHED) {
      expect(
        (await app.inject({ url: `/users/${name}/spawn-plan`, headers: bearer(TOKENS.hub) })).statusCode,
      ).toBe(200);
    }
  });
  afterAll(async () => {
    await app?.close();
    if (!slapd.running) await slapd.start();
  });

  it('cached users always get a plan, uncached ones 200 or 503 with Retry-After, and service resumes without a restart', async () => {
    type Outcome = {
      phase: string;
      name: string;
      status: number;
      stale?: boolean;
      retryAfter?: string;
      body: string;
    };
    const outcomes: Outcome[] = [];
    let phase = 'before';
    let running = true;
    let turn = 0;
    // 16 concurrent callers asking in turn for a cached and an uncached user.
    const worker = async () => {
      while (running) {
        turn += 1;
        // Uncached users are only asked for once slapd is gone, so they are truly uncached then.
        const uncached = phase !== 'before' && turn % 2 === 1;
        const name = uncached ? UNCACHED[turn % UNCACHED.length] : CACHED[turn % CACHED.length];
        const asked = phase; // the phase when the request started
        const res = await app.inject({ url: `/users/${name}/spawn-plan`, headers: bearer(TOKENS.hub) });
        outcomes.push({
          phase: asked,
          name: name as string,
          status: res.statusCode,
          stale: res.statusCode === 200 ? res.json().stale : undefined,
          retryAfter: res.headers['retry-after'] as string | undefined,
          body: res.body,
        });
        // Let the event loop breathe: inject never touches a socket, so without this the loop spins.
        await new Promise((r) => setImmediate(r));
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

    await settle(300);
    await slapd.stop('SIGKILL');
    clock += 2 * 60_000; // every cached entry is past its TTL: idmount must ask the dead directory
    phase = 'down';
    await settle(1500);
    phase = 'restarting';
    await slapd.start();
    // Recovery within the backoff (max 500 ms) plus a reconnect: poll an uncached user.
    await expect
      .poll(
        async () =>
          (await app.inject({ url: `/users/user59/spawn-plan`, headers: bearer(TOKENS.hub) })).statusCode,
        { timeout: 5000, interval: 100 },
      )
      .toBe(200);
    clock += 2 * 60_000;
    phase = 'after';
    await settle(500);
    running = false;
    await Promise.all(workers);

    const during = outcomes.filter((o) => o.phase === 'down');
    const after = outcomes.filter((o) => o.phase === 'after');
    expect(during.length).toBeGreaterThan(50);
    expect(after.length).toBeGreaterThan(10);
    // Only two answers exist, in every phase: a plan, or 503 SOURCE_UNAVAILABLE with Retry-After.
    for (const o of outcomes) {
      expect([200, 503], `${o.phase} ${o.name}: ${o.body.slice(0, 200)}`).toContain(o.status);
      if (o.status === 503) {
        expect(JSON.parse(o.body)).toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
        expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1);
      }
    }
    // While slapd is down, cached users are always served, flagged stale; uncached ones never are.
    const cachedDown = during.filter((o) => CACHED.includes(o.name));
    expect(cachedDown.length).toBeGreaterThan(0);
    expect(cachedDown.filter((o) => !(o.status === 200 && o.stale === true))).toEqual([]);
    const uncachedDown = during.filter((o) => UNCACHED.includes(o.name));
    expect(uncachedDown.length).toBeGreaterThan(0);
    expect(uncachedDown.filter((o) => o.status !== 503)).toEqual([]);
    // Once back, everyone gets a fresh plan again.
    expect(after.filter((o) => !(o.status === 200 && o.stale === false))).toEqual([]);
  });
});

describe('a slow directory and a connection reset, through a proxy', () => {
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let app: App;
  const clock = Date.now();
  // The proxy holds slapd's answers for 8 s; idmount gives a search 300 ms and a (re)connect 1 s.
  const DELAY_MS = 8000;

  beforeAll(async () => {
    proxy = await startProxy(slapd.port, DELAY_MS);
    app = await appFor(
      ldapSource(proxy.port, { operationTimeout: '300ms', connectTimeout: '1s', poolSize: 2 }),
      () => clock,
    );
    for (const name of CACHED.slice(0, 5)) {
      expect(
        (await app.inject({ url: `/users/${name}/spawn-plan`, headers: bearer(TOKENS.hub) })).statusCode,
      ).toBe(200);
    }
  });
  afterAll(async () => {
    await app?.close();
    await proxy?.close();
  });

  const plan = (name: string) =>
    app.inject({ url: `/users/${name}/spawn-plan`, headers: bearer(TOKENS.hub) });

  it('answers uncached users 503 long before the directory does, while cached users are served meanwhile', async () => {
    proxy.setMode('delay');
    const order: string[] = [];
    const started = Date.now();
    const slow = Promise.all(
      UNCACHED.slice(0, 4).map(async (name) => {
        const res = await plan(name);
        order.push(`slow:${res.statusCode}`);
        return { res, ms: Date.now() - started };
      }),
    );
    const fast = Promise.all(
      CACHED.slice(0, 5).map(async (name) => {
        const res = await plan(name);
        order.push(`cached:${res.statusCode}`);
        return res;
      }),
    );
    const [slowResults, fastResults] = await Promise.all([slow, fast]);
    expect(fastResults.every((r) => r.statusCode === 200 && r.json().stale === false)).toBe(true);
    // The cached answers did not wait behind the stuck searches.
    expect(order.slice(0, 5)).toEqual(Array(5).fill('cached:200'));
    for (const { res, ms } of slowResults) {
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
      // Failing fast means before the directory's answer would have arrived, not after it.
      expect(ms).toBeLessThan(DELAY_MS);
    }
    proxy.setMode('pass');
  });

  it('recovers once the directory answers in time again', async () => {
    await expect
      .poll(async () => (await plan(UNCACHED[5] as string)).statusCode, { timeout: 8000, interval: 200 })
      .toBe(200);
  });

  it('answers a search cut by a connection reset with a clean 503, then recovers', async () => {
    proxy.setMode('reset');
    const res = await plan(UNCACHED[6] as string);
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json();
    expect(body).toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    expect(JSON.stringify(body)).not.toMatch(/ECONNRESET|127\.0\.0\.1|socket|at .*\.(ts|js)/);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Cached users do not notice.
    expect((await plan(CACHED[0] as string)).statusCode).toBe(200);

    proxy.setMode('pass');
    await expect
      .poll(async () => (await plan(UNCACHED[6] as string)).statusCode, { timeout: 8000, interval: 200 })
      .toBe(200);
  });
});
