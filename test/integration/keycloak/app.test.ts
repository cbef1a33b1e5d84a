// idmount end to end on a Keycloak realm, through the real app (app.inject): spawn plans with
// proposal mounts from Keycloak subgroups, explain naming what was skipped, a broken user as 422,
// and Keycloak cut off (a loopback relay closed): cached users get stale plans, others 503 with
// Retry-After, then recovery without restarting idmount.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';
import { createFacilityRealm, READER } from './realm.js';
import { type Relay, startRelay } from './relay.js';

describe('spawn plans from a Keycloak realm', () => {
  let relay: Relay;
  let app: App;
  let clock = Date.now();

  beforeAll(async () => {
    const { issuer } = await createFacilityRealm('declared', 'app');
    const origin = new URL(issuer).origin;
    relay = await startRelay(origin);
    const secretFile = join(mkdtempSync(join(tmpdir(), 'idmount-kc-')), 'client-secret');
    writeFileSync(secretFile, READER.clientSecret);
    app = await testApp(
      demoConfig({
        sources: [
          {
            name: 'sso',
            type: 'keycloak',
            issuer: issuer.replace(origin, relay.url),
            clientId: READER.clientId,
            clientSecretFile: secretFile,
            retryAfter: '15s',
          },
        ],
        cache: { ttl: '1m', negativeTtl: '1s', staleIfError: '1h' },
        data: [
          {
            name: 'proposal',
            fromGroup: '^(?<proposal>[a-z]{2}[0-9]{4})$',
            path: '/data/visitor/{proposal}',
            mountPath: '/home/jovyan/data/{proposal}',
            readOnly: true,
            allowedRoots: ['/data/visitor'],
            volume: { nfs: { server: 'nfs-data.example.org' } },
          },
        ],
      }),
      { now: () => clock },
    );
  });
  afterAll(async () => {
    await app?.close();
    await relay?.close();
  });

  // An explain trace needs users:read: the ops token asks for those, the hub's for plain plans.
  const plan = (name: string, query = '') =>
    app.inject({
      url: `/users/${encodeURIComponent(name)}/spawn-plan${query}`,
      headers: bearer(query.includes('explain') ? TOKENS.ops : TOKENS.hub),
    });
  const sourceState = async () => {
    const ready = (await app.inject({ url: '/status', headers: bearer(TOKENS.reader) })).json() as {
      sources: Array<Record<string, unknown>>;
    };
    return ready.sources.find((s) => s.name === 'sso');
  };

  it('builds the plan from Keycloak: ids, home, supplementary gids, one mount per proposal subgroup', async () => {
    const res = await plan('alice', '?explain=true');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ username: 'alice', uid: 10001, gid: 10001, source: 'sso', stale: false });
    expect(body.supplementalGids).toEqual(expect.arrayContaining([20001, 20002, 30000, 100]));
    const paths = body.volumes.map((v: { nfs?: { path: string } }) => v.nfs?.path);
    expect(paths).toEqual(
      expect.arrayContaining(['/export/home/alice', '/data/visitor/mx1234', '/data/visitor/mx5678']),
    );
    expect(body.explain.origin).toMatchObject({ uid: 'sso', gid: 'sso', home: 'sso', groups: 'sso' });
    expect(body.explain.notes).toContain("group '/newsletter' skipped: it has no single gidNumber attribute");
    expect(await sourceState()).toMatchObject({ up: true });
  });

  it.each([
    ['a missing uidNumber', 'nouid', 'uidNumber'],
    ['a malformed uidNumber', 'baduid', 'uidNumber'],
    ['a relative homeDirectory', 'relhome', 'homeDirectory'],
  ])('answers a user with %s with 422 naming the attribute', async (_case, name, attribute) => {
    const res = await plan(name);
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: 'DIRECTORY_ENTRY_INVALID', source: 'sso', attribute });
  });

  it('answers 404 for a service-account user and for a disabled user', async () => {
    expect((await plan(`service-account-${READER.clientId}`)).json()).toMatchObject({
      code: 'USER_NOT_FOUND',
    });
    expect((await plan('disabled')).json()).toMatchObject({ code: 'USER_NOT_FOUND' });
  });

  it('with Keycloak cut off: cached users get a stale plan, uncached users 503 with Retry-After', async () => {
    await relay.cut();
    clock += 2 * 60_000; // past alice's TTL: idmount must ask Keycloak again

    const stale = await plan('alice');
    expect(stale.statusCode).toBe(200);
    expect(stale.json()).toMatchObject({ username: 'alice', uid: 10001, stale: true });

    const uncached = await plan('bob');
    expect(uncached.statusCode).toBe(503);
    expect(uncached.json()).toMatchObject({ code: 'SOURCE_UNAVAILABLE', source: 'sso' });
    expect(uncached.headers['retry-after']).toBe('15');

    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect(await sourceState()).toMatchObject({ up: false });
    expect((await app.inject({ url: '/metrics' })).body).toMatch(
      /idmount_source_up\{source="sso",type="keycloak"\} 0/,
    );
  });

  it('recovers once Keycloak is reachable again, without restarting idmount', async () => {
    await relay.restore();
    const bob = await plan('bob');
    expect(bob.statusCode).toBe(200);
    expect(bob.json()).toMatchObject({ username: 'bob', uid: 10002, stale: false });
    expect(await sourceState()).toMatchObject({ up: true });
  });
});
