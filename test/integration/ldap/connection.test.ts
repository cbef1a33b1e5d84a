// The ldap source's connections against a real slapd: failover, LDAPS / StartTLS and certificate
// verification, bind failures, single-flight bind, re-bind after slapd drops connections, slapd
// killed and restarted, backoff while down, a stalled connection not failing the others, and
// searches started together leaving a connection in one write.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLdapSource } from '../../../src/identity/sources/ldap/source.js';
import type { IdentitySource } from '../../../src/identity/types.js';
import { freePort, type Slapd, startSlapd } from '../../harness/slapd.js';
import { failure } from '../../helpers/errors.js';
import { fixture, ldapConfig, silentLog } from './fixture.js';

const ctx = { log: silentLog, baseDir: '.' };
let slapd: Slapd;
const opened: IdentitySource[] = [];
const open = (overrides: Record<string, unknown> = {}) => {
  const source = createLdapSource(ldapConfig(slapd, overrides), ctx);
  opened.push(source);
  return source;
};

// slapd logs a simple bind twice (request: method=128, result: mech=SIMPLE); count requests.
const bindsSoFar = () =>
  slapd
    .log()
    .split('\n')
    .filter((l) => l.includes(`BIND dn="${slapd.bindDN}" method=128`)).length;

beforeAll(async () => {
  slapd = await startSlapd({ schema: 'rfc2307', fixture });
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  if (!slapd.running) await slapd.start();
});
afterAll(async () => {
  await slapd?.close();
});

describe('ldap connections', () => {
  it('fails over to the second URL when nothing listens on the first', async () => {
    const source = open({ urls: [`ldap://127.0.0.1:${await freePort()}`, slapd.url] });
    expect(await source.lookup('alice')).toMatchObject({ uid: 2001 });
    expect(source.health().up).toBe(true);
  });

  it('fails over within connectTimeout when the first server accepts connections but never answers', async () => {
    // A server that is up at the TCP level but hung (or a firewall that swallows LDAP).
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const source = open({ urls: [`ldap://127.0.0.1:${port}`, slapd.url], connectTimeout: '300ms' });
      expect(await source.lookup('alice')).toMatchObject({ uid: 2001 });
      expect(await source.lookup('bob')).toMatchObject({ uid: 2002 });
      expect(source.health().up).toBe(true);
    } finally {
      silent.close();
    }
  });

  it.each([
    [
      'LDAPS with the CA that signed the server certificate',
      () => ({ urls: [slapd.ldapsUrl], caFile: slapd.tls.caFile }),
    ],
    [
      'StartTLS with the CA that signed the server certificate',
      () => ({ startTls: true, caFile: slapd.tls.caFile }),
    ],
    [
      'LDAPS and tlsVerify false (a lab directory): any certificate is accepted',
      () => ({ urls: [slapd.ldapsUrl], tlsVerify: false }),
    ],
  ])('connects with %s', async (_sentence, overrides) => {
    const source = open(overrides());
    expect(await source.lookup('alice')).toMatchObject({ uid: 2001 });
  });

  it.each([
    [
      'LDAPS with a CA that did not sign the server certificate',
      () => ({ urls: [slapd.ldapsUrl], caFile: slapd.tls.wrongCaFile }),
    ],
    [
      'StartTLS with a CA that did not sign the server certificate',
      () => ({ startTls: true, caFile: slapd.tls.wrongCaFile }),
    ],
    ['LDAPS with no caFile (system CAs do not know the test CA)', () => ({ urls: [slapd.ldapsUrl] })],
    [
      'LDAPS when the certificate does not name the expected host (tlsServerName)',
      () => ({ urls: [slapd.ldapsUrl], caFile: slapd.tls.caFile, tlsServerName: 'ldap.elsewhere.example' }),
    ],
    [
      'StartTLS when the certificate does not name the expected host (tlsServerName)',
      () => ({ startTls: true, caFile: slapd.tls.caFile, tlsServerName: 'ldap.elsewhere.example' }),
    ],
  ])('refuses %s: the source is unavailable, not silently insecure', async (_sentence, overrides) => {
    const source = open(overrides());
    const err = await failure(source.lookup('alice'));
    expect(err.code).toBe('SOURCE_UNAVAILABLE');
    expect(err.retryAfter).toBeGreaterThanOrEqual(1);
    expect(source.health()).toMatchObject({
      up: false,
      lastError: expect.stringMatching(/certificate|self.signed|altnames/i),
    });
  });

  it('reports a refused bind as unavailable with the reason, never searching anonymously', async () => {
    const wrong = join(slapd.dir, 'wrong-password');
    writeFileSync(wrong, 'not-the-password\n');
    const source = open({ bindPasswordFile: wrong });
    const err = await failure(source.lookup('alice'));
    expect(err.code).toBe('SOURCE_UNAVAILABLE');
    expect(source.health().lastError).toMatch(/invalid credentials/);
    expect(JSON.stringify(source.health())).not.toContain('not-the-password');
  });

  it('answers a search under a base that does not exist with a 503 naming the LDAP result, the base only in the cause', async () => {
    const missing = `ou=nowhere,${slapd.suffix}`;
    const source = open({ users: { bases: [{ base: missing }] } });
    const err = await failure(source.lookup('alice'));
    expect(err.code).toBe('SOURCE_UNAVAILABLE');
    expect(err.message).toMatch(/refused the search: NoSuchObject \(LDAP result 32\)/);
    expect(err.message).not.toContain(missing);
    expect(err.retryAfter).toBe(60);
    expect((err.cause as Error).message).toContain(`under '${missing}'`);
    // The directory answered: it is not down, and the next lookup asks it again.
    expect(source.health().up).toBe(true);
    expect((await failure(source.lookup('alice'))).message).toMatch(/NoSuchObject/);
  });

  it('sends searches started in the same turn of the event loop in one write, so the directory reads them together', async () => {
    // A TCP relay to slapd in its own process counts the reads it gets from idmount's side. It
    // waits in the kernel while this process runs, so searches written one by one would reach it
    // as several reads (the first wakes it while the next are still being built); one write
    // arrives as one read. The relay answers "reads <n>" on each line of stdin.
    const relay = spawn(
      process.execPath,
      [
        '-e',
        `const net = require('node:net');
         let reads = 0;
         const server = net.createServer((client) => {
           const upstream = net.connect(${slapd.port}, '127.0.0.1');
           client.on('data', (d) => { reads += 1; upstream.write(d); });
           upstream.on('data', (d) => client.write(d));
           for (const s of [client, upstream]) s.on('error', () => { client.destroy(); upstream.destroy(); });
           client.on('close', () => upstream.destroy());
         });
         server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
         process.stdin.on('data', () => { console.log('reads ' + reads); reads = 0; });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: relay.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
    const next = async () => ((await lines.next()).value as string).split(' ')[1] as string;
    try {
      const port = Number(await next());
      // One connection, one user base and no groups: each lookup is exactly one search on it.
      const source = open({
        urls: [`ldap://127.0.0.1:${port}`],
        poolSize: 1,
        users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
        groups: { bases: [] },
      });
      expect(await source.lookup('alice')).toMatchObject({ uid: 2001 }); // connected and bound
      relay.stdin?.write('reset\n');
      await next();
      const names = ['alice', 'bob', 'carol', 'cyc', 'many', 'erin'];
      const records = await Promise.all(names.map((name) => source.lookup(name)));
      expect(records.map((r) => r?.name)).toEqual(names);
      relay.stdin?.write('count\n');
      expect(Number(await next())).toBe(1);
    } finally {
      relay.kill();
    }
  });

  it('binds each pooled connection once when 50 lookups arrive together (single-flight bind)', async () => {
    const before = bindsSoFar();
    const source = open({ poolSize: 2 });
    const records = await Promise.all(Array.from({ length: 50 }, () => source.lookup('alice')));
    expect(records.every((r) => r?.uid === 2001)).toBe(true);
    expect(bindsSoFar() - before).toBe(2);
  });

  it('re-binds after slapd drops every connection (anonymous would see nothing: ACLs deny it)', async () => {
    const source = open();
    expect(await source.lookup('alice')).toMatchObject({ uid: 2001 });
    await slapd.stop('SIGTERM');
    await slapd.start();
    expect(await source.lookup('alice')).toMatchObject({ uid: 2001, groups: expect.any(Array) });
    expect(source.health().up).toBe(true);
  });

  it('goes down when slapd is killed, answers fast with Retry-After, and recovers on its own after restart', async () => {
    const source = open();
    expect(await source.lookup('alice')).toMatchObject({ uid: 2001 });
    await slapd.stop('SIGKILL');
    const err = await failure(source.lookup('alice'));
    expect(err).toMatchObject({ code: 'SOURCE_UNAVAILABLE', extras: { source: 'campus' } });
    expect(err.retryAfter).toBeGreaterThanOrEqual(1);
    expect(source.health()).toMatchObject({ up: false, lastError: expect.stringMatching(/ECONNREFUSED/) });
    await slapd.start();
    // The background probe (backoff 100-400 ms in this config) brings health back without traffic.
    await expect.poll(() => source.health().up, { timeout: 5000, interval: 50 }).toBe(true);
    expect(await source.lookup('alice')).toMatchObject({ uid: 2001 });
  });

  it('does not hammer a dead directory: lookups during the backoff window fail without connecting', async () => {
    let connections = 0;
    // A listener that accepts and hangs up at once: an LDAP server in a crash loop.
    const flapping = net.createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => flapping.listen(0, '127.0.0.1', resolve));
    const { port } = flapping.address() as net.AddressInfo;
    try {
      const source = open({ urls: [`ldap://127.0.0.1:${port}`], backoff: { initial: '10s', max: '60s' } });
      const errors = [];
      for (let i = 0; i < 20; i += 1) errors.push(await failure(source.lookup('alice')));
      expect(errors.every((e) => e.code === 'SOURCE_UNAVAILABLE' && (e.retryAfter ?? 0) >= 1)).toBe(true);
      // The first lookup's two searches (two user bases) each try to connect once; the next 19 wait.
      expect(connections).toBeLessThanOrEqual(2);
    } finally {
      flapping.close();
    }
  });

  it('a search stuck on one connection times out alone; requests on the other connection succeed', async () => {
    // A TCP relay to slapd whose first connection can be frozen (a hung server thread, a dead NAT entry).
    const relayed: Array<{ client: net.Socket; upstream: net.Socket; frozen: boolean }> = [];
    const relay = net.createServer((client) => {
      const upstream = net.connect(slapd.port, '127.0.0.1');
      const link = { client, upstream, frozen: false };
      relayed.push(link);
      client.on('data', (d) => {
        if (!link.frozen) upstream.write(d);
      });
      upstream.on('data', (d) => client.write(d));
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const { port } = relay.address() as net.AddressInfo;
    try {
      // One user base and no groups: each lookup is exactly one search, spread over the two connections.
      const source = open({
        urls: [`ldap://127.0.0.1:${port}`],
        poolSize: 2,
        operationTimeout: '700ms',
        users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
        groups: { bases: [] },
      });
      await Promise.all([source.lookup('alice'), source.lookup('bob')]); // both connections bound
      expect(relayed).toHaveLength(2);
      (relayed[0] as { frozen: boolean }).frozen = true;
      const started = Date.now();
      const results = await Promise.all(
        ['alice', 'bob', 'carol', 'cyc'].map(async (name) => ({
          name,
          record: await source.lookup(name),
          ms: Date.now() - started,
        })),
      );
      // Every lookup is answered with the right user: the two whose search hung on the frozen
      // connection time out on their own and are retried on the healthy one; the two on the
      // healthy connection never waited for them.
      expect(results.map((r) => r.record?.name)).toEqual(['alice', 'bob', 'carol', 'cyc']);
      expect(results.filter((r) => r.ms < 700).map((r) => r.name)).toEqual(['bob', 'cyc']);
      expect(results.filter((r) => r.ms >= 700).map((r) => r.name)).toEqual(['alice', 'carol']);
      expect(source.health().up).toBe(true);
    } finally {
      for (const link of relayed) link.client.destroy();
      relay.close();
    }
  });
});
