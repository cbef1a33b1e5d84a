// Hostile input, property-based (fast-check): arbitrary usernames against the real app, and
// generated directory files whose home attributes, group names and gecos carry '..', '/', NUL,
// newlines, ':' and braces. Whatever comes in, the answer is 200/400/404/422 as problem+json (never
// a 5xx), and a 200 plan holds only confined paths and well-formed passwd/group lines.
import { posix } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import type { SpawnPlan } from '../../../src/plan/schema.js';
import type { ConfigInput } from '../../../src/settings.js';
import { bearer, demoConfig, TOKENS, testApp, writeDirectory } from '../../helpers/app.js';

/** Characters that turn a value into a climb, a second path, a second passwd line or a format field. */
const POISON = ['..', '/', '\u0000', '\n', '\r', ':', '{', '}', '{0}', '../', '/..', '\t', ' ', ',', '\\'];

/** Strings made mostly of poison and a few ordinary characters, so collisions with rules happen. */
const poisoned = fc
  .array(
    fc.oneof(fc.constantFrom(...POISON), fc.constantFrom('a', 'b', 'x1', 'mx1234', 'home', 'etc', '.')),
    {
      minLength: 1,
      maxLength: 8,
    },
  )
  .map((parts) => parts.join(''));

/** Any string at all: full Unicode, control characters, lone dots. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => s.isWellFormed()),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  poisoned,
  fc.constantFrom('alice', 'ALICE', 'bob', '*', 'alice*', '*)(uid=*', 'alice)(|(uid=*', '\\2a', '..', '.'),
);

const SAFE_SEGMENT = /^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The invariants every 200 plan keeps, whatever the directory said. */
function expectConfinedPlan(plan: SpawnPlan, roots: Record<string, string[]>) {
  for (const volume of plan.volumes) {
    const path = volume.nfs?.path ?? volume.hostPath?.path;
    if (path === undefined) continue;
    expect(path, 'a volume path is normalised').toBe(posix.normalize(path));
    expect(
      path
        .split('/')
        .slice(1)
        .every((s) => SAFE_SEGMENT.test(s) && s !== '..'),
    ).toBe(true);
    const rule = Object.keys(roots).find((r) => volume.name.startsWith(`idmount-${r}-`)) as string;
    expect(rule, `volume ${volume.name} comes from a known rule`).toBeDefined();
    expect(
      (roots[rule] as string[]).some((root) => path.startsWith(`${root}/`)),
      `${path} lies under ${rule}'s allowedRoots`,
    ).toBe(true);
  }
  for (const mount of plan.volumeMounts) {
    expect(mount.mountPath).toBe(posix.normalize(mount.mountPath));
    expect(
      mount.mountPath
        .split('/')
        .slice(1)
        .every((s) => SAFE_SEGMENT.test(s)),
    ).toBe(true);
  }
  for (const value of Object.values(plan.environment)) expect(value).not.toMatch(CONTROL);
  const passwd = plan.nss?.passwd ?? [];
  expect(passwd).toHaveLength(1);
  for (const line of passwd) {
    expect(line).not.toMatch(CONTROL);
    expect(line.split(':'), `passwd line ${JSON.stringify(line)} has 7 fields`).toHaveLength(7);
    expect(line).not.toMatch(/[{}]/);
  }
  for (const line of plan.nss?.group ?? []) {
    expect(line).not.toMatch(CONTROL);
    expect(line.split(':'), `group line ${JSON.stringify(line)} has 4 fields`).toHaveLength(4);
    expect(line).not.toMatch(/[{}]/);
  }
}

describe('any username', () => {
  let app: App;
  beforeAll(async () => {
    app = await testApp(
      demoConfig({ auth: { ...demoConfig().auth, rateLimit: { max: 1_000_000, window: '1m' } } }),
    );
  });
  afterAll(() => app.close());

  it('gets 200, 400 or 404, a 4xx always as problem+json, never a 5xx (3 routes, 300 names each)', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyString,
        fc.constantFrom('', '/spawn-plan', '/spawn-plan?explain=true'),
        async (name, route) => {
          const res = await app.inject({
            url: `/users/${encodeURIComponent(name)}${route}`,
            headers: bearer(TOKENS.ops),
          });
          expect([200, 400, 404]).toContain(res.statusCode);
          if (res.statusCode === 200) {
            // Only the directory's own users get an answer, under their own name.
            expect(['alice', 'bob', 'carol', 'dave', 'erin']).toContain(name);
            const body = res.json();
            expect(body.username ?? body.name).toBe(name);
          } else {
            expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
            expect(res.json()).toMatchObject({ status: res.statusCode, code: expect.any(String) });
          }
        },
      ),
      { numRuns: 900 },
    );
  });
});

describe('directory data carrying path and passwd poison', () => {
  const ROOTS = { home: ['/export/home'], project: ['/data/projects'], proposal: ['/data/visitor'] };
  const config = (directory: string): ConfigInput =>
    demoConfig({
      sources: [{ name: 'generated', type: 'file', path: directory }],
      data: [
        {
          name: 'project',
          // A deliberately permissive capture: anything after 'project-' reaches the path template.
          fromGroup: '^project-(?<project>.+)$',
          path: '/data/projects/{project}',
          mountPath: '/home/jovyan/projects/{project}',
          readOnly: true,
          allowedRoots: ROOTS.project,
          volume: { nfs: { server: 'nfs-data.example.org' } },
        },
        {
          name: 'proposal',
          fromGroup: '^proposal-(?<proposal>.*)$',
          path: '/data/visitor/{proposal}/raw',
          mountPath: '/home/jovyan/data/{proposal}',
          readOnly: true,
          allowedRoots: ROOTS.proposal,
          volume: { nfs: { server: 'nfs-data.example.org' } },
        },
      ],
    });

  const userData = fc.record({
    home: fc.oneof(
      poisoned.map((p) => `/home/${p}`),
      poisoned,
      fc.constantFrom('/home/ok', '/home/../../etc', '/home/a/../../root', '/home/{uid}', '/home/a\u0000b'),
    ),
    gecos: fc.oneof(
      poisoned,
      fc.constantFrom('Alice Liddell', 'x:0:0:root:/root:/bin/sh', 'a\nroot:x:0:0::/:/bin/sh'),
    ),
    groups: fc.array(
      fc.oneof(
        poisoned.map((p) => `project-${p}`),
        poisoned.map((p) => `proposal-${p}`),
        poisoned,
        fc.constantFrom('project-ok', 'proposal-mx1234', 'root:x:0:', 'wheel\nroot'),
      ),
      { maxLength: 4 },
    ),
  });

  it('never reaches a plan: each user gets a confined plan or 422, never 5xx (60 directories of 8 users)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(userData, { minLength: 8, maxLength: 8 }), async (users) => {
        const groups = new Map<string, string[]>();
        users.forEach((u, i) => {
          for (const g of u.groups) groups.set(g, [...(groups.get(g) ?? []), `user${i}`]);
        });
        const directory = writeDirectory({
          users: users.map((u, i) => ({
            name: `user${i}`,
            uid: 5000 + i,
            gid: 5000 + i,
            home: u.home,
            gecos: u.gecos,
          })),
          groups: [...groups].map(([name, members], i) => ({ name, gid: 7000 + i, members })),
        });
        const app = await testApp(config(directory));
        try {
          for (let i = 0; i < users.length; i += 1) {
            const res = await app.inject({
              url: `/users/user${i}/spawn-plan?explain=true`,
              headers: bearer(TOKENS.ops),
            });
            expect([200, 422], res.body).toContain(res.statusCode);
            if (res.statusCode === 422) {
              expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
              expect(res.json()).toMatchObject({
                code: expect.stringMatching(/^(POLICY_VIOLATION|DIRECTORY_ENTRY_INVALID)$/),
              });
              continue;
            }
            expectConfinedPlan(res.json(), ROOTS);
          }
        } finally {
          await app.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it.each([
    ['a home attribute that climbs out of /home', { home: '/home/../etc' }],
    ['a home attribute with a NUL byte', { home: '/home/a\u0000b' }],
    ['a home attribute with a newline', { home: '/home/a\nb' }],
    ['a home attribute with braces', { home: '/home/{uid}' }],
    ['a home attribute with a colon', { home: '/home/a:b' }],
    ['a captured group value that climbs', { groups: ['project-..'] }],
    ['a captured group value with a slash', { groups: ['project-a/../../etc'] }],
    ['a captured group value with braces', { groups: ['project-{username}'] }],
    ['a captured group value with a colon', { groups: ['project-a:b'] }],
    ['a captured group value that is only a dot', { groups: ['project-.'] }],
  ])('%s: the plan is refused whole with 422 POLICY_VIOLATION', async (_, data) => {
    const directory = writeDirectory({
      users: [{ name: 'victim', uid: 5000, gid: 5000, home: '/home/victim', gecos: 'Victim', ...data }],
      groups: ((data as { groups?: string[] }).groups ?? []).map((name, i) => ({
        name,
        gid: 7000 + i,
        members: ['victim'],
      })),
    });
    const app = await testApp(config(directory));
    const res = await app.inject({ url: '/users/victim/spawn-plan', headers: bearer(TOKENS.hub) });
    await app.close();
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'POLICY_VIOLATION' });
  });

  it('a group name with a newline matches no rule (regex . stops at it) and stays out of /etc/group', async () => {
    const directory = writeDirectory({
      users: [{ name: 'victim', uid: 5000, gid: 5000, home: '/home/victim' }],
      groups: [{ name: 'project-a\nroot:x:0:', gid: 7000, members: ['victim'] }],
    });
    const app = await testApp(config(directory));
    const res = await app.inject({ url: '/users/victim/spawn-plan', headers: bearer(TOKENS.hub) });
    await app.close();
    expect(res.statusCode).toBe(200);
    const plan = res.json();
    expect(plan.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toEqual(['/home/jovyan/home']);
    expect(plan.supplementalGids).toContain(7000); // the gid is still granted
    expect(plan.nss.group.join('\n')).not.toMatch(/project-a|root/);
  });

  it.each([
    ['a colon (a forged passwd entry)', 'x:0:0:root:/root:/bin/sh'],
    ['a newline (a second passwd line)', 'Victim\nroot:x:0:0::/root:/bin/sh'],
    ['a NUL byte', 'Vic\u0000tim'],
    ['braces (a str.format field)', 'Victim {0}'],
  ])('a gecos with %s stays out of the passwd line; the user still spawns', async (_, gecos) => {
    const directory = writeDirectory({
      users: [{ name: 'victim', uid: 5000, gid: 5000, home: '/home/victim', gecos }],
    });
    const app = await testApp(config(directory));
    const res = await app.inject({
      url: '/users/victim/spawn-plan?explain=true',
      headers: bearer(TOKENS.ops),
    });
    await app.close();
    expect(res.statusCode).toBe(200);
    const plan = res.json();
    expect(plan.nss.passwd).toEqual(['victim:x:5000:5000::/home/jovyan/home:/bin/bash']);
    expect(plan.explain.notes).toContainEqual(expect.stringMatching(/gecos left out/));
  });
});
