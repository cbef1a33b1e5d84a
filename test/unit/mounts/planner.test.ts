// MountPlanner confinement: every substituted value is a safe segment, every path stays under
// its rule's allowedRoots, and conflicts are errors — one sentence per case.
import { describe, expect, it } from 'vitest';
import { IdmountError } from '../../../src/errors.js';
import type { DirectoryGroup, Identity } from '../../../src/identity/types.js';
import { planMounts } from '../../../src/mounts/planner.js';
import { checkIdentity } from '../../../src/policy/policy.js';
import { parseConfig } from '../../../src/settings.js';

const NFS = { nfs: { server: 'nfs.example.org' } };

function plan(options: {
  home?: object;
  data?: object[];
  name?: string;
  homeAttr?: string;
  groups?: DirectoryGroup[];
}) {
  const config = parseConfig(
    {
      auth: { disabled: true },
      sources: [{ name: 's', type: 'file', path: 'x' }],
      policy: { username: { pattern: '^.*$' } },
      home: options.home,
      data: options.data ?? [],
    },
    't',
  );
  const identity: Identity = {
    name: options.name ?? 'alice',
    uid: 20001,
    gid: 20001,
    home: options.homeAttr,
    groups: options.groups ?? [],
    origin: { uid: 's', gid: 's', home: 's', gecos: undefined, groups: 's' },
    notes: [],
  };
  return planMounts(checkIdentity(identity, config.policy), config);
}

const outcome = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof IdmountError) return err.code;
    throw err;
  }
};

const homeAttr = {
  from: 'attribute',
  allowedRoots: ['/export/home'],
  volume: NFS,
  mountPath: '/home/jovyan/home',
};
const homeTemplate = (template: string) => ({ ...homeAttr, from: 'template', template });
const proposals = (extra: object = {}) => ({
  name: 'proposal',
  fromGroup: '^proposal-(?<proposal>.+)$',
  path: '/data/visitor/{proposal}',
  mountPath: '/data/{proposal}',
  allowedRoots: ['/data/visitor'],
  volume: NFS,
  ...extra,
});

describe('home directory', () => {
  it.each([
    ['an attribute under the root is mounted', { home: homeAttr, homeAttr: '/export/home/alice' }, 'ok'],
    [
      'a rewrite maps the directory prefix onto the export',
      { home: { ...homeAttr, rewrite: [{ from: '^/home/', to: '/export/home/' }] }, homeAttr: '/home/alice' },
      'ok',
    ],
    [
      'an attribute outside the root is refused',
      { home: homeAttr, homeAttr: '/etc/alice' },
      'POLICY_VIOLATION',
    ],
    [
      'an attribute equal to the root is refused',
      { home: homeAttr, homeAttr: '/export/home' },
      'POLICY_VIOLATION',
    ],
    [
      'a sibling with the root as prefix is refused',
      { home: homeAttr, homeAttr: '/export/homestead/a' },
      'POLICY_VIOLATION',
    ],
    [
      'an attribute climbing out with .. is refused',
      { home: homeAttr, homeAttr: '/export/home/../../etc' },
      'POLICY_VIOLATION',
    ],
    [
      'a relative attribute is refused',
      { home: homeAttr, homeAttr: 'export/home/alice' },
      'POLICY_VIOLATION',
    ],
    [
      'an attribute with a newline is refused',
      { home: homeAttr, homeAttr: '/export/home/a\nb' },
      'POLICY_VIOLATION',
    ],
    [
      'an attribute with a NUL is refused',
      { home: homeAttr, homeAttr: '/export/home/a\u0000' },
      'POLICY_VIOLATION',
    ],
    [
      'an attribute with braces is refused',
      { home: homeAttr, homeAttr: '/export/home/{x}' },
      'POLICY_VIOLATION',
    ],
    [
      'an attribute with a colon is refused',
      { home: homeAttr, homeAttr: '/export/home/a:b' },
      'POLICY_VIOLATION',
    ],
    ['a missing attribute is refused', { home: homeAttr }, 'POLICY_VIOLATION'],
    ['a template with {username} is mounted', { home: homeTemplate('/export/home/{username}') }, 'ok'],
    [
      'a template with {initial}/{username} is mounted',
      { home: homeTemplate('/export/home/{initial}/{username}') },
      'ok',
    ],
    ['a template with {uid} is mounted', { home: homeTemplate('/export/home/{uid}') }, 'ok'],
    [
      'a username with braces never reaches a template',
      { home: homeTemplate('/export/home/{username}'), name: 'a{b}' },
      'POLICY_VIOLATION',
    ],
    [
      'a username with a colon never reaches a template',
      { home: homeTemplate('/export/home/{username}'), name: 'a:b' },
      'POLICY_VIOLATION',
    ],
  ])('%s', (_, options, expected) => {
    expect(outcome(() => plan(options))).toBe(expected);
  });

  it('uses the rewritten path and the configured mount path', () => {
    const result = plan({
      home: { ...homeAttr, rewrite: [{ from: '^/home/', to: '/export/home/' }] },
      homeAttr: '/home/alice',
    });
    expect(result.volumes).toEqual([
      {
        name: expect.stringMatching(/^idmount-home-[0-9a-f]{8}$/),
        nfs: { server: 'nfs.example.org', path: '/export/home/alice', readOnly: false },
      },
    ]);
    expect(result.volumeMounts).toEqual([
      { name: result.volumes[0]?.name, mountPath: '/home/jovyan/home', readOnly: false },
    ]);
    expect(result.containerHome).toBe('/home/jovyan/home');
  });

  it('builds the {initial} from the first letter, lower case', () => {
    const result = plan({ home: homeTemplate('/export/home/{initial}/{username}'), name: 'Alice' });
    expect(result.volumes[0]?.nfs?.path).toBe('/export/home/a/Alice');
  });
});

describe('data rules', () => {
  it.each([
    [
      'a matching group gives a read-only mount',
      [{ name: 'proposal-mx1234', gid: 30001 }],
      [proposals()],
      'ok',
    ],
    [
      'a captured value with a slash is refused',
      [{ name: 'proposal-a/b', gid: 30001 }],
      [proposals()],
      'POLICY_VIOLATION',
    ],
    [
      'a captured value of .. is refused',
      [{ name: 'proposal-..', gid: 30001 }],
      [proposals()],
      'POLICY_VIOLATION',
    ],
    [
      'a captured value with braces is refused',
      [{ name: 'proposal-{x}', gid: 30001 }],
      [proposals()],
      'POLICY_VIOLATION',
    ],
    [
      'a captured value with a newline is refused',
      [{ name: 'proposal-a\nb', gid: 30001 }],
      [proposals({ fromGroup: '^proposal-(?<proposal>[^/]+)$' })],
      'POLICY_VIOLATION',
    ],
    [
      'a captured value with a NUL is refused',
      [{ name: 'proposal-a\u0000', gid: 30001 }],
      [proposals()],
      'POLICY_VIOLATION',
    ],
    [
      'two rules at the same mount path are refused',
      [{ name: 'proposal-mx1', gid: 30001 }],
      [proposals(), { ...proposals(), name: 'again', path: '/data/visitor/x-{proposal}' }],
      'POLICY_VIOLATION',
    ],
    [
      'a mount over /etc is refused',
      [{ name: 'proposal-passwd', gid: 30001 }],
      [proposals({ mountPath: '/etc/{proposal}' })],
      'POLICY_VIOLATION',
    ],
    [
      'a static rule mounts for everyone',
      [],
      [{ ...proposals(), fromGroup: undefined, path: '/data/visitor/common', mountPath: '/common' }],
      'ok',
    ],
    [
      'a static rule outside its roots is refused',
      [],
      [{ ...proposals(), fromGroup: undefined, path: '/srv/common', mountPath: '/common' }],
      'POLICY_VIOLATION',
    ],
  ])('%s', (_, groups, data, expected) => {
    expect(outcome(() => plan({ groups, data }))).toBe(expected);
  });

  it('mounts each matching group once, read-only by default, with deterministic DNS-1123 names', () => {
    const groups = [
      { name: 'proposal-mx1234', gid: 30001 },
      { name: 'proposal-ih5678', gid: 30002 },
      { name: 'unrelated', gid: 30003 },
    ];
    const first = plan({ groups, data: [proposals()] });
    const second = plan({ groups, data: [proposals()] });
    expect(first.volumes).toEqual(second.volumes);
    expect(first.volumeMounts.map((m) => [m.mountPath, m.readOnly])).toEqual([
      ['/data/mx1234', true],
      ['/data/ih5678', true],
    ]);
    for (const v of first.volumes) expect(v.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(new Set(first.volumes.map((v) => v.name)).size).toBe(2);
  });

  it('refuses a plan in which two different directories would get the same volume name', () => {
    // group7584 and group20813 are two of the names whose volume-name hashes coincide (found by search).
    const rule = {
      name: 'group',
      fromGroup: '^group(?<n>[0-9]+)$',
      path: '/data/groups/{n}',
      mountPath: '/home/jovyan/groups/{n}',
      allowedRoots: ['/data/groups'],
      volume: NFS,
    };
    const one = (n: number) => plan({ groups: [{ name: `group${n}`, gid: 40_000 + n }], data: [rule] });
    expect(one(7584).volumes[0]?.name).toBe(one(20813).volumes[0]?.name);
    const both = () =>
      plan({
        groups: [
          { name: 'group7584', gid: 47584 },
          { name: 'group20813', gid: 60813 },
        ],
        data: [rule],
      });
    expect(outcome(both)).toBe('POLICY_VIOLATION');
    expect(both).toThrow(/two different volumes the name 'idmount-group-e696e0c0'/);
  });

  it('mounts a PVC with the path relative to the claim root as subPath', () => {
    const result = plan({
      groups: [{ name: 'proposal-mx1234', gid: 30001 }],
      data: [proposals({ volume: { pvc: { claimName: 'data', mountedRoot: '/data' } } })],
    });
    expect(result.volumes).toEqual([
      { name: 'idmount-proposal', persistentVolumeClaim: { claimName: 'data', readOnly: true } },
    ]);
    expect(result.volumeMounts).toEqual([
      { name: 'idmount-proposal', mountPath: '/data/mx1234', readOnly: true, subPath: 'visitor/mx1234' },
    ]);
  });

  it('mounts an inline CSI volume with the confined path in its path attribute and the rest as configured', () => {
    const csi = {
      csi: {
        driver: 'nfs.csi.k8s.io',
        volumeAttributes: { server: 'nfs-data.example.org', mountOptions: 'nfsvers=4.1,ro' },
      },
    };
    const result = plan({
      groups: [{ name: 'proposal-mx1234', gid: 30001 }],
      data: [proposals({ volume: csi })],
    });
    expect(result.volumes[0]).toMatchObject({
      csi: {
        driver: 'nfs.csi.k8s.io',
        readOnly: true,
        volumeAttributes: {
          server: 'nfs-data.example.org',
          mountOptions: 'nfsvers=4.1,ro',
          share: '/data/visitor/mx1234',
        },
      },
    });
  });

  it.each([
    ['a climbing group value', 'proposal-..'],
    ['a slash in the group value', 'proposal-a/b'],
  ])('confines a CSI volume exactly like any path: %s is refused', (_, group) => {
    const csi = { csi: { driver: 'cephfs.csi.ceph.com', pathAttribute: 'rootPath', volumeAttributes: {} } };
    expect(
      outcome(() => plan({ groups: [{ name: group, gid: 30001 }], data: [proposals({ volume: csi })] })),
    ).toBe('POLICY_VIOLATION');
  });

  it('refuses braces or control characters in fixed CSI attributes when the config is loaded', () => {
    const csi = { csi: { driver: 'nfs.csi.k8s.io', volumeAttributes: { server: '{username}.example.org' } } };
    expect(() => plan({ data: [proposals({ volume: csi })] })).toThrow(/no braces or control characters/);
  });

  it('mounts a hostPath with its type', () => {
    const result = plan({
      data: [
        {
          ...proposals(),
          fromGroup: undefined,
          path: '/data/visitor/scratch',
          mountPath: '/scratch',
          readOnly: false,
          volume: { hostPath: { type: 'Directory' } },
        },
      ],
    });
    expect(result.volumes[0]).toMatchObject({
      hostPath: { path: '/data/visitor/scratch', type: 'Directory' },
    });
    expect(result.volumeMounts[0]).toMatchObject({ mountPath: '/scratch', readOnly: false });
  });

  it('refuses unknown placeholders when the config is loaded, naming the key', () => {
    expect(() => plan({ data: [proposals({ path: '/data/visitor/{proposl}' })] })).toThrow(
      /data\[0\]\.path: unknown placeholder \{proposl\}/,
    );
  });
});

describe('group volumes planned once per group, for every member', () => {
  const config = (data: object[]) =>
    parseConfig(
      {
        auth: { disabled: true },
        sources: [{ name: 's', type: 'file', path: 'x' }],
        policy: { username: { pattern: '^.*$' } },
        data,
      },
      't',
    );
  const member = (name: string, groups: DirectoryGroup[]): Identity => ({
    name,
    uid: name === 'alice' ? 20001 : 20002,
    gid: name === 'alice' ? 20001 : 20002,
    groups,
    origin: { uid: 's', gid: 's', home: undefined, gecos: undefined, groups: 's' },
    notes: [],
  });
  const planFor = (c: ReturnType<typeof config>, identity: Identity) =>
    planMounts(checkIdentity(identity, c.policy), c);

  it('gives a second member of a group the same volume as the first', () => {
    const c = config([proposals()]);
    const group = { name: 'proposal-mx1234', gid: 30001 };
    const alice = planFor(c, member('alice', [group]));
    const bob = planFor(c, member('bob', [group, { name: 'proposal-ih5678', gid: 30002 }]));
    expect(bob.volumes[0]).toEqual(alice.volumes[0]);
    expect(bob.volumes[0]).toEqual({
      name: expect.stringMatching(/^idmount-proposal-[0-9a-f]{8}$/),
      nfs: { server: 'nfs.example.org', path: '/data/visitor/mx1234', readOnly: true },
    });
    expect(bob.volumeMounts.map((m) => m.mountPath)).toEqual(['/data/mx1234', '/data/ih5678']);
    // Shared between plans, so nobody can change one member's plan through another's.
    expect(() => {
      (bob.volumes[0] as { name: string }).name = 'changed';
    }).toThrow(TypeError);
    expect(planFor(c, member('carol', [group])).volumes[0]).toEqual(alice.volumes[0]);
  });

  it("plans a group rule that also uses the user's values per user, never one user's path for another", () => {
    const c = config([proposals({ path: '/data/visitor/{proposal}/{username}' })]);
    const group = { name: 'proposal-mx1234', gid: 30001 };
    const paths = ['alice', 'bob', 'alice'].map(
      (name) => (planFor(c, member(name, [group])).volumes[0] as { nfs: { path: string } }).nfs.path,
    );
    expect(paths).toEqual([
      '/data/visitor/mx1234/alice',
      '/data/visitor/mx1234/bob',
      '/data/visitor/mx1234/alice',
    ]);
  });

  it('refuses an unsafe group for every member that has it, not just the first', () => {
    const c = config([proposals()]);
    const bad = { name: 'proposal-..', gid: 30009 };
    expect(outcome(() => planFor(c, member('alice', [bad])))).toBe('POLICY_VIOLATION');
    expect(outcome(() => planFor(c, member('bob', [bad])))).toBe('POLICY_VIOLATION');
    expect(outcome(() => planFor(c, member('bob', [{ name: 'proposal-ok', gid: 30010 }])))).toBe('ok');
  });

  it('still plans correctly past the number of groups it remembers', () => {
    const c = config([proposals()]);
    const pathOf = (i: number) =>
      (
        planFor(c, member('alice', [{ name: `proposal-p${i}`, gid: 40000 + i }])).volumes[0] as {
          nfs: { path: string };
        }
      ).nfs.path;
    const first = pathOf(0);
    for (let i = 1; i <= 10_050; i++) pathOf(i);
    expect(first).toBe('/data/visitor/p0');
    expect(pathOf(0)).toBe('/data/visitor/p0');
    expect(pathOf(10_050)).toBe('/data/visitor/p10050');
  });
});
