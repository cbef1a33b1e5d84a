// idmount end to end on an LDAP directory, through the real app (app.inject): spawn plans from
// slapd, slapd killed (cached users get stale plans, uncached ones 503 SOURCE_UNAVAILABLE with
// Retry-After, /readyz and idmount_source_up show it), then recovery after slapd restarts,
// without restarting idmount.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { type Slapd, startSlapd } from '../../harness/slapd.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';
import { fixture } from './fixture.js';

describe.each(['rfc2307', 'rfc2307bis'] as const)('spawn plans from an %s slapd', (schema) => {
  let slapd: Slapd;
  let app: App;
  let clock = Date.now();

  beforeAll(async () => {
    slapd = await startSlapd({ schema, fixture });
    const config = demoConfig({
      sources: [
        {
          name: 'campus',
          type: 'ldap',
          schema,
          urls: [slapd.ldapsUrl],
          caFile: slapd.tls.caFile,
          bindDN: slapd.bindDN,
          bindPasswordFile: slapd.bindPasswordFile,
          backoff: { initial: '100ms', max: '400ms' },
          users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
          groups: { bases: [{ base: `ou=groups,${slapd.suffix}` }] },
        },
      ],
      cache: { ttl: '1m', negativeTtl: '1s', staleIfError: '1h' },
    });
    app = await testApp(config, { now: () => clock });
  });
  afterAll(async () => {
    await app?.close();
    await slapd?.close();
  });

  const plan = (name: string) =>
    app.inject({ url: `/users/${name}/spawn-plan`, headers: bearer(TOKENS.hub) });
  const sourceState = async () => {
    const ready = (await app.inject({ url: '/status', headers: bearer(TOKENS.reader) })).json() as {
      sources: Array<Record<string, unknown>>;
    };
    return ready.sources.find((s) => s.name === 'campus');
  };

  it('builds the plan from the directory: ids, supplementary groups, home rewritten from homeDirectory', async () => {
    const res = await plan('alice');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ username: 'alice', uid: 2001, gid: 2001, source: 'campus', stale: false });
    expect(body.supplementalGids).toEqual(expect.arrayContaining([100, 3000]));
    expect(body.volumes.map((v: { nfs: { path: string } }) => v.nfs.path)).toContain('/export/home/alice');
    expect(await sourceState()).toMatchObject({ up: true });
  });

  it('answers a malformed directory entry with 422 naming the attribute, not a guess', async () => {
    const res = await plan('nouid');
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'DIRECTORY_ENTRY_INVALID', attribute: 'uidNumber' });
  });

  it('sends exactly one user search to slapd for 200 concurrent requests for one uncached user', async () => {
    const userSearches = () => slapd.searchFilters().filter((f) => f.includes('(uid=carol)')).length;
    expect(userSearches()).toBe(0);
    const responses = await Promise.all(Array.from({ length: 200 }, () => plan('carol')));
    expect(responses.every((r) => r.statusCode === 200 && r.json().uid === 2003)).toBe(true);
    expect(userSearches()).toBe(1);
  });

  it('with slapd killed: cached users get a stale plan, uncached users 503 with Retry-After', async () => {
    await slapd.stop('SIGKILL');
    clock += 2 * 60_000; // alice's entry is past its TTL: idmount must ask the directory again

    const stale = await plan('alice');
    expect(stale.statusCode).toBe(200);
    expect(stale.json()).toMatchObject({ username: 'alice', uid: 2001, stale: true });

    const uncached = await plan('bob');
    expect(uncached.statusCode).toBe(503);
    expect(uncached.json()).toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    expect(Number(uncached.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    // Readiness stays green (cached users must keep spawning) but shows the source down.
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(await sourceState()).toMatchObject({
      up: false,
      lastError: expect.stringMatching(/ECONNREFUSED/),
    });
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/idmount_source_up\{source="campus",type="ldap"\} 0/);
  });

  it('recovers once slapd is back, without restarting idmount', async () => {
    await slapd.start();
    await expect.poll(async () => (await sourceState())?.up, { timeout: 5000, interval: 50 }).toBe(true);
    const bob = await plan('bob');
    expect(bob.statusCode).toBe(200);
    expect(bob.json()).toMatchObject({ username: 'bob', uid: 2002, stale: false });
    clock += 2 * 60_000;
    expect((await plan('alice')).json()).toMatchObject({ uid: 2001, stale: false });
    expect((await app.inject({ url: '/metrics' })).body).toMatch(
      /idmount_source_up\{source="campus",type="ldap"\} 1/,
    );
  });
});
