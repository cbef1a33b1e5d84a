// The /users routes through the real app (app.inject) over the demo directory: every route,
// every error code, with the problem+json shape clients rely on.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { bearer, demoConfig, TOKENS, testApp, writeDirectory } from '../../helpers/app.js';

const expectProblem = (
  res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown },
  status: number,
  code: string,
) => {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json() as Record<string, unknown>;
  expect(body).toMatchObject({
    status,
    code,
    type: expect.any(String),
    title: expect.any(String),
    detail: expect.any(String),
  });
  expect(JSON.stringify(body)).not.toMatch(/ at .*\.(ts|js):\d+/); // never a stack trace
  return body;
};

/** A GET whose path is sent exactly as given (fetch and inject normalise '..' away). */
function rawGet(port: string, path: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: bearer(token) }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('spawn plan for a demo user', () => {
  let app: App;
  beforeAll(async () => {
    app = await testApp(demoConfig());
  });
  afterAll(() => app.close());

  it('gives alice her identity, groups, home and proposal mounts', async () => {
    const res = await app.inject({ url: '/users/alice/spawn-plan', headers: bearer(TOKENS.hub) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const plan = res.json();
    expect(plan).toMatchObject({
      username: 'alice',
      uid: 20001,
      gid: 20001,
      supplementalGids: [100, 30001, 30002],
      fsGid: null,
      containerSecurityContext: {
        runAsUser: 20001,
        runAsGroup: 20001,
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      },
      environment: {
        NB_USER: 'alice',
        NB_UID: '20001',
        NB_GID: '20001',
        USER: 'alice',
        LOGNAME: 'alice',
        HOME: '/home/jovyan/home',
      },
      source: 'demo',
      stale: false,
    });
    const paths = plan.volumes.map((v: { nfs: { path: string } }) => v.nfs.path);
    expect(paths).toEqual(['/export/home/alice', '/data/visitor/mx1234', '/data/visitor/ih5678']);
    expect(
      plan.volumeMounts.map((m: { mountPath: string; readOnly: boolean }) => [m.mountPath, m.readOnly]),
    ).toEqual([
      ['/home/jovyan/home', false],
      ['/home/jovyan/data/mx1234', true],
      ['/home/jovyan/data/ih5678', true],
    ]);
    for (const v of plan.volumes) expect(v.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(plan.nss.passwd).toEqual(['alice:x:20001:20001:Alice Liddell:/home/jovyan/home:/bin/bash']);
    expect(plan.nss.group).toEqual([
      'alice:x:20001:',
      'users:x:100:alice',
      'proposal-mx1234:x:30001:alice',
      'proposal-ih5678:x:30002:alice',
    ]);
  });

  it('gives the same plan, byte for byte, from the cache', async () => {
    const first = await app.inject({ url: '/users/bob/spawn-plan', headers: bearer(TOKENS.hub) });
    const second = await app.inject({ url: '/users/bob/spawn-plan', headers: bearer(TOKENS.hub) });
    expect(first.headers['x-idmount-cache']).toBe('miss');
    expect(second.headers['x-idmount-cache']).toBe('hit');
    expect(second.body).toBe(first.body);
  });

  it('drops wheel (gid 10) for dave and says why in the explain trace', async () => {
    const res = await app.inject({ url: '/users/dave/spawn-plan?explain=true', headers: bearer(TOKENS.ops) });
    expect(res.statusCode).toBe(200);
    const plan = res.json();
    expect(plan.supplementalGids).toEqual([100, 31011]);
    expect(plan.explain.droppedGroups).toEqual([{ name: 'wheel', gid: 10, reason: 'below minGid 1000' }]);
    expect(plan.explain.sources).toEqual([{ source: 'demo', result: 'found' }]);
    expect(plan.explain.rules).toContainEqual(
      expect.objectContaining({
        rule: 'beamline',
        group: 'beamline-id11',
        outcome: 'mounted',
        path: '/data/beamlines/id11',
      }),
    );
    expect(plan.explain.rules).toContainEqual(
      expect.objectContaining({ rule: 'proposal', outcome: 'skipped' }),
    );
    expect(['hit', 'miss']).toContain(plan.explain.cache);
  });

  it('shows the identity before policy on GET /users/{name}', async () => {
    const res = await app.inject({ url: '/users/dave', headers: bearer(TOKENS.reader) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      name: 'dave',
      uid: 20004,
      gid: 20004,
      home: '/home/dave',
      source: 'demo',
      stale: false,
      groups: expect.arrayContaining([{ name: 'wheel', gid: 10 }]),
    });
  });

  it('forgets a cached user on DELETE /users/{name}/cache', async () => {
    await app.inject({ url: '/users/carol/spawn-plan', headers: bearer(TOKENS.hub) });
    const del = await app.inject({
      method: 'DELETE',
      url: '/users/carol/cache',
      headers: bearer(TOKENS.ops),
    });
    expect(del.statusCode).toBe(200);
    expect(del.json()).toEqual({ name: 'carol', evicted: true, shared: false });
    const again = await app.inject({
      method: 'DELETE',
      url: '/users/carol/cache',
      headers: bearer(TOKENS.ops),
    });
    expect(again.json()).toEqual({ name: 'carol', evicted: false, shared: false });
    const next = await app.inject({ url: '/users/carol/spawn-plan', headers: bearer(TOKENS.hub) });
    expect(next.headers['x-idmount-cache']).toBe('miss');
  });

  it('answers 404 USER_NOT_FOUND for an unknown user, and remembers it', async () => {
    const res = await app.inject({ url: '/users/zed/spawn-plan', headers: bearer(TOKENS.hub) });
    expectProblem(res, 404, 'USER_NOT_FOUND');
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/idmount_lookups_total\{result="not_found"\} 1/);
    await app.inject({ url: '/users/zed/spawn-plan', headers: bearer(TOKENS.hub) });
    const after = await app.inject({ url: '/metrics' });
    expect(after.body).toMatch(/idmount_lookups_total\{result="not_found"\} 1/);
    expect(after.body).toMatch(/idmount_cache_requests_total\{state="negative"\} 2/);
  });

  it.each([
    ['an asterisk (LDAP wildcard)', '*'],
    ['an opening parenthesis', '('],
    ['a closing parenthesis', ')'],
    ['a backslash', '\\'],
    ['a parent-directory climb', '../../etc'],
    ['an encoded climb', '%2e%2e%2f'],
    ['a slash', 'a/b'],
    ['a 10 KB name', 'a'.repeat(10_240)],
    ['a NUL byte', 'a\u0000b'],
    ['a newline', 'a\nb'],
    ['a tab', 'a\tb'],
    ['a space', 'a b'],
    ['a Cyrillic look-alike', 'аlice'],
    ['a fullwidth look-alike', 'ａlice'],
    ['a right-to-left override', 'al\u202Eice'],
    ['an empty name', ''],
  ])('refuses %s with 400 INVALID_USERNAME', async (_, name) => {
    const res = await app.inject({
      url: `/users/${encodeURIComponent(name)}/spawn-plan`,
      headers: bearer(TOKENS.hub),
    });
    const body = expectProblem(res, 400, 'INVALID_USERNAME');
    expect(body.detail).toMatch(/^The username is not acceptable/);
  });

  it('refuses dot-dot names sent raw over a socket (URL parsers would resolve them away)', async () => {
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(address);
    for (const path of ['/users/../spawn-plan', '/users/%2e%2e/spawn-plan', '/users/%2E%2E%2F/spawn-plan']) {
      const { status, body } = await rawGet(port, path, TOKENS.hub);
      expect(status, path).toBe(400);
      expect(JSON.parse(body)).toMatchObject({ code: 'INVALID_USERNAME' });
    }
  });

  it('refuses an unknown explain value with 400 INVALID_REQUEST', async () => {
    const res = await app.inject({
      url: '/users/alice/spawn-plan?explain=maybe',
      headers: bearer(TOKENS.hub),
    });
    expectProblem(res, 400, 'INVALID_REQUEST');
  });
});

describe('authentication and scopes', () => {
  let app: App;
  beforeAll(async () => {
    app = await testApp(demoConfig());
  });
  afterAll(() => app.close());

  it.each([
    ['no token', undefined, '/users/alice/spawn-plan', 'GET', 401, 'UNAUTHENTICATED'],
    ['a wrong token', 'Bearer not-a-token', '/users/alice/spawn-plan', 'GET', 401, 'UNAUTHENTICATED'],
    ['a Basic header', 'Basic YWxpY2U6cHc=', '/users/alice/spawn-plan', 'GET', 401, 'UNAUTHENTICATED'],
    ['an empty bearer', 'Bearer ', '/users/alice/spawn-plan', 'GET', 401, 'UNAUTHENTICATED'],
    ['the hub token on the identity route', `Bearer ${TOKENS.hub}`, '/users/alice', 'GET', 403, 'FORBIDDEN'],
    [
      'the hub token on cache eviction',
      `Bearer ${TOKENS.hub}`,
      '/users/alice/cache',
      'DELETE',
      403,
      'FORBIDDEN',
    ],
    [
      'a read-only admin token on cache eviction',
      `Bearer ${TOKENS.reader}`,
      '/users/alice/cache',
      'DELETE',
      403,
      'FORBIDDEN',
    ],
    [
      'a read-only admin token on the spawn plan',
      `Bearer ${TOKENS.reader}`,
      '/users/alice/spawn-plan',
      'GET',
      403,
      'FORBIDDEN',
    ],
  ] as const)('%s → %i %s', async (_, authorization, url, method, status, code) => {
    const res = await app.inject({ method, url, headers: authorization ? { authorization } : {} });
    expectProblem(res, status, code);
    if (status === 401) expect(res.headers['www-authenticate']).toBe('Bearer realm="idmount"');
  });

  it('checks the token before the username: a hostile name without a token is 401, not 400', async () => {
    const res = await app.inject({ url: '/users/%2A/spawn-plan' });
    expectProblem(res, 401, 'UNAUTHENTICATED');
  });

  it('lets Kubernetes and people reach the probes, metrics and docs without a token', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs/']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(200);
    }
  });

  /** The demo app with a budget of 3 requests a minute per caller. */
  const threePerMinute = () =>
    testApp(demoConfig({ auth: { ...demoConfig().auth, rateLimit: { max: 3, window: '1m' } } }));

  it('limits each caller: 429 RATE_LIMITED past the configured rate', async () => {
    const limited = await threePerMinute();
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      codes.push(
        (await limited.inject({ url: '/users/alice/spawn-plan', headers: bearer(TOKENS.hub) })).statusCode,
      );
    }
    // Another token has its own budget.
    const other = await limited.inject({ url: '/users/alice/spawn-plan', headers: bearer(TOKENS.ops) });
    const last = await limited.inject({ url: '/users/alice/spawn-plan', headers: bearer(TOKENS.hub) });
    await limited.close();
    expect(codes).toEqual([200, 200, 200, 429]);
    expect(other.statusCode).toBe(200);
    expectProblem(last, 429, 'RATE_LIMITED');
    // The window is a minute: the caller is told to come back within it, not sooner than a second.
    expect(Number(last.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(last.headers['retry-after'])).toBeLessThanOrEqual(60);
  });

  it('counts every request of a known caller, also those refused for their name or scope', async () => {
    const limited = await threePerMinute();
    // Unknown tokens from the same address first: refused with 401, they spend no budget (not an
    // address's, not the hub's), so each stays a 401 past the limit and the hub keeps all of its own.
    const strangers: number[] = [];
    for (let i = 0; i < 4; i++) {
      strangers.push(
        (await limited.inject({ url: '/users/alice/spawn-plan', headers: bearer('not-a-token') })).statusCode,
      );
    }
    const codes: number[] = [];
    for (const url of ['/users/..%2Fetc/spawn-plan', '/users/alice', '/users/alice/spawn-plan']) {
      codes.push((await limited.inject({ url, headers: bearer(TOKENS.hub) })).statusCode);
    }
    const past = await limited.inject({ url: '/users/..%2Fetc/spawn-plan', headers: bearer(TOKENS.hub) });
    await limited.close();
    expect(strangers).toEqual([401, 401, 401, 401]);
    expect(codes).toEqual([400, 403, 200]);
    expectProblem(past, 429, 'RATE_LIMITED');
  });
});

describe('directory data and policy errors are precise and per user', () => {
  let app: App;
  beforeAll(async () => {
    const directory = writeDirectory({
      users: [
        { name: 'good', uid: 5001, gid: 5001, home: '/home/good' },
        { name: 'lowuid', uid: 999, gid: 5002, home: '/home/lowuid' },
        { name: 'root2', uid: 0, gid: 5003, home: '/home/root2' },
        { name: 'rootgroup', uid: 5004, gid: 0, home: '/home/rootgroup' },
        { name: 'textuid', uid: 'abc', gid: 5005, home: '/home/textuid' },
        { name: 'nogid', uid: 5006, home: '/home/nogid' },
        { name: 'escaper', uid: 5007, gid: 5007, home: '/home/../etc' },
        { name: 'outsider', uid: 5008, gid: 5008, home: '/srv/outsider' },
        { name: 'twice', uid: 5009, gid: 5009, home: '/home/twice' },
        { name: 'twice', uid: 5010, gid: 5010, home: '/home/twice2' },
        { name: 'braces', uid: 5011, gid: 5011, home: '/home/{braces}' },
        { name: 'nohome', uid: 5012, gid: 5012 },
      ],
      groups: [{ name: 'poison', gid: 6000, members: ['good'] }],
    });
    app = await testApp(demoConfig({ sources: [{ name: 'site', type: 'file', path: directory }] }));
  });
  afterAll(() => app.close());

  it.each([
    ['a uid below minUid', 'lowuid', 422, 'POLICY_VIOLATION', /uid 999 .* outside the allowed range/],
    ['uid 0', 'root2', 422, 'POLICY_VIOLATION', /uid 0 \(root\)/],
    ['gid 0', 'rootgroup', 422, 'POLICY_VIOLATION', /gid 0 \(root\)/],
    ['a malformed uid', 'textuid', 422, 'DIRECTORY_ENTRY_INVALID', /malformed uid/],
    ['a missing gid', 'nogid', 422, 'DIRECTORY_ENTRY_INVALID', /has no gid/],
    ['a home attribute escaping its root', 'escaper', 422, 'POLICY_VIOLATION', /not an acceptable path/],
    ['a home outside allowedRoots', 'outsider', 422, 'POLICY_VIOLATION', /not under \/export\/home/],
    ['two entries for one name', 'twice', 422, 'DIRECTORY_ENTRY_INVALID', /2 entries for 'twice'/],
    ['braces in a home path', 'braces', 422, 'POLICY_VIOLATION', /not an acceptable path/],
    ['no home attribute', 'nohome', 422, 'POLICY_VIOLATION', /no home directory/],
  ])('%s → %i %s', async (_, name, status, code, detail) => {
    const res = await app.inject({ url: `/users/${name}/spawn-plan`, headers: bearer(TOKENS.hub) });
    const body = expectProblem(res, status, code);
    expect(body.detail).toMatch(detail);
  });

  it('still serves the other users of the same directory', async () => {
    const res = await app.inject({ url: '/users/good/spawn-plan', headers: bearer(TOKENS.hub) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ uid: 5001, supplementalGids: [100, 6000] });
  });
});

describe('source outage', () => {
  it('answers 503 SOURCE_UNAVAILABLE with Retry-After when the only directory cannot be reached', async () => {
    // A real LDAP client against a loopback port nobody listens on: connection refused.
    const app = await testApp(
      demoConfig({
        sources: [
          {
            name: 'down',
            type: 'ldap',
            urls: ['ldap://127.0.0.1:1'],
            schema: 'rfc2307',
            users: { bases: [{ base: 'ou=People,dc=example,dc=org' }] },
            groups: { bases: [{ base: 'ou=Groups,dc=example,dc=org' }] },
          },
        ] as never,
      }),
    );
    const res = await app.inject({ url: '/users/alice/spawn-plan', headers: bearer(TOKENS.hub) });
    const ready = await app.inject({ url: '/readyz' });
    await app.close();
    const body = expectProblem(res, 503, 'SOURCE_UNAVAILABLE');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(body.detail).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/); // internals stay in the log
    expect(ready.statusCode).toBe(200);
    expect(ready.json().sources).toEqual([expect.objectContaining({ name: 'down', up: false })]);
  });
});
