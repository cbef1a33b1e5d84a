// The `ad` source against a real Samba AD DC (provisioned by the harness for this file): RFC2307
// users, ID-mapped users (numbers compared with SSSD's own libsss_idmap), nested groups three
// levels deep from tokenGroups and through the in-chain rule (the same groups both ways, the
// fallback when tokenGroups cannot be read), qualified and differently-cased names, disabled
// accounts, and LDAPS verified with the DC's CA.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdSourceConfigSchema } from '../../../src/identity/sources/ad/config.js';
import { createAdSource } from '../../../src/identity/sources/ad/source.js';
import type { DirectoryRecord, IdentitySource } from '../../../src/identity/types.js';
import { adConnection, type SambaDc, startSambaDc } from '../../harness/samba.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';
import { failure } from '../../helpers/errors.js';

const ctx = { log: pino({ level: 'silent' }), baseDir: '.' };

const fixture = {
  users: [
    {
      name: 'alice',
      uidNumber: 10001,
      gidNumber: 20001,
      unixHome: '/home/alice',
      loginShell: '/bin/bash',
      givenName: 'Alice',
      surname: 'Liddell',
    },
    // No RFC2307 attributes: only ID mapping can number bob.
    { name: 'bob', givenName: 'Bob', surname: 'Builder' },
    { name: 'carol', uidNumber: 10003, gidNumber: 20001, unixHome: '/home/carol', disabled: true },
    {
      name: 'dave',
      uidNumber: 10004,
      gidNumber: 20001,
      unixHome: '/home/dave',
      userPrincipalName: 'd.vader@idmount.test',
    },
    // Like alice, but the bind account is denied reading her tokenGroups (a deny ACE on her entry).
    { name: 'erin', uidNumber: 10005, gidNumber: 20001, unixHome: '/home/erin', hideTokenGroups: true },
    // In a distribution group, which tokenGroups never lists.
    { name: 'frank', uidNumber: 10006, gidNumber: 20001, unixHome: '/home/frank' },
    // In 60 groups: more SIDs than one objectSid OR filter takes.
    { name: 'gina', uidNumber: 10007, gidNumber: 20001, unixHome: '/home/gina' },
  ],
  groups: [
    { name: 'staff', gidNumber: 20001 },
    // Three levels: alice and bob → beamline-id01 → proposal-ab1234 → facility-users (dave: two).
    { name: 'beamline-id01', gidNumber: 30001, members: ['alice', 'bob', 'erin', 'frank'] },
    { name: 'proposal-ab1234', gidNumber: 30002, members: ['beamline-id01', 'dave'] },
    { name: 'facility-users', gidNumber: 30003, members: ['proposal-ab1234'] },
    // A group without gidNumber: not a POSIX group unless ids are mapped.
    { name: 'windows-only', members: ['alice', 'bob', 'erin'] },
    // Reached only through the AD primary group (Domain Users), never a `member` value of a user.
    { name: 'campus-users', gidNumber: 30004, members: ['Domain Users'] },
    { name: 'mailing-list', gidNumber: 30020, distribution: true, members: ['frank'] },
    ...Array.from({ length: 60 }, (_, i) => ({
      name: `batch-${String(i + 1).padStart(2, '0')}`,
      gidNumber: 31001 + i,
      members: ['gina'],
    })),
  ],
};

let dc: SambaDc;
const sources: IdentitySource[] = [];

function adConfig(overrides: Record<string, unknown> = {}) {
  return {
    name: 'campus-ad',
    type: 'ad',
    ...adConnection(dc),
    names: { stripRealms: ['IDMOUNT.TEST'], stripDomains: ['IDMOUNT'] },
    backoff: { initial: '100ms', max: '200ms' },
    ...overrides,
  };
}

function adSource(overrides: Record<string, unknown> = {}): IdentitySource {
  const source = createAdSource(AdSourceConfigSchema.parse(adConfig(overrides)), ctx);
  sources.push(source);
  return source;
}

const groupsOf = (record: DirectoryRecord | null) =>
  Object.fromEntries((record?.groups ?? []).map((g) => [g.name, g.gid]));

const sid = (name: string) => (dc.objects[name] as { sid: string }).sid;

/** SSSD's numbers for these SIDs, from libsss_idmap itself (test/unit/identity/sources/ad/sssd_reference.py), default settings. */
function sssdIds(sids: string[]): number[] {
  const script = fileURLToPath(new URL('../../unit/identity/sources/ad/sssd_reference.py', import.meta.url));
  const out = JSON.parse(
    execFileSync('/usr/bin/python3', [script], { input: JSON.stringify({ map: sids }), encoding: 'utf8' }),
  ) as { map: (number | string)[] };
  for (const id of out.map) if (typeof id !== 'number') throw new Error(`SSSD could not map: ${id}`);
  return out.map as number[];
}

beforeAll(async () => {
  dc = await startSambaDc(fixture);
  // The figures the report quotes: how long a throw-away domain takes on this machine.
  console.info(
    `samba AD DC: provision ${dc.timings.provisionMs} ms, fixture ${dc.timings.fixtureMs} ms, boot to LDAPS ${dc.timings.bootMs} ms`,
  );
});

afterAll(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await dc?.stop();
});

describe('ad source with RFC2307 attributes (idMapping off, the default)', () => {
  it('returns uidNumber, gidNumber, unixHomeDirectory, loginShell and displayName of a user', async () => {
    const alice = await adSource().lookup('alice');
    expect(alice).toMatchObject({
      name: 'alice',
      uid: 10001,
      gid: 20001,
      home: '/home/alice',
      shell: '/bin/bash',
      gecos: 'Alice Liddell',
      primaryGroupName: 'staff',
    });
  });

  it('prints the objectSid (read as binary) in S-1-5-21-... form in the explain notes', async () => {
    const alice = await adSource().lookup('alice');
    expect(sid('alice')).toMatch(/^S-1-5-21-\d+-\d+-\d+-\d+$/);
    expect(alice?.notes).toContain(`objectSid: ${sid('alice')}`);
  });

  it('resolves groups nested three levels deep, and those of the AD primary group, POSIX groups only', async () => {
    const alice = await adSource().lookup('alice');
    expect(groupsOf(alice)).toEqual({
      staff: 20001,
      'beamline-id01': 30001,
      'proposal-ab1234': 30002,
      'facility-users': 30003,
      'campus-users': 30004,
    });
  });

  it('with nested: false returns direct memberships and the primary group only', async () => {
    const alice = await adSource({ groups: { nested: false } }).lookup('alice');
    expect(groupsOf(alice)).toEqual({ staff: 20001, 'beamline-id01': 30001 });
  });

  it('refuses a user without uidNumber with an error naming the attribute (no guessed id)', async () => {
    const err = await failure(adSource().lookup('bob'));
    expect(err.code).toBe('DIRECTORY_ENTRY_INVALID');
    expect(err.extras).toMatchObject({ attribute: 'uidNumber', user: 'bob', source: 'campus-ad' });
  });
});

describe('ad source with SSSD ID mapping', () => {
  it('maps a user without RFC2307 attributes to exactly the uid and gid SSSD computes', async () => {
    const [uid, domainUsers] = sssdIds([sid('bob'), `${dc.domainSid}-513`]);
    const bob = await adSource({ idMapping: { mode: 'always' } }).lookup('bob');
    expect(bob).toMatchObject({ name: 'bob', uid, gid: domainUsers, primaryGroupName: 'Domain Users' });
    expect(bob?.notes?.join('\n')).toContain(`uid ${uid} mapped from SID ${sid('bob')}`);
  });

  it('maps every group of the user, nested ones and non-POSIX ones included, to SSSD gids', async () => {
    const names = [
      'Domain Users',
      'beamline-id01',
      'proposal-ab1234',
      'facility-users',
      'windows-only',
      'campus-users',
    ];
    const expected = sssdIds(names.map(sid));
    const bob = await adSource({ idMapping: { mode: 'always' } }).lookup('bob');
    const groups = groupsOf(bob);
    names.forEach((name, i) => {
      expect(groups[name], name).toBe(expected[i]);
    });
  });

  it('always mode ignores uidNumber, as SSSD does with ldap_id_mapping = true', async () => {
    const [uid] = sssdIds([sid('alice')]);
    const alice = await adSource({ idMapping: { mode: 'always' } }).lookup('alice');
    expect(alice?.uid).toBe(uid);
    expect(alice?.uid).not.toBe(10001);
  });

  it('fallback mode keeps uidNumber where present and maps only the users without it', async () => {
    const source = adSource({ idMapping: { mode: 'fallback' } });
    const [bobUid] = sssdIds([sid('bob')]);
    expect((await source.lookup('alice'))?.uid).toBe(10001);
    expect((await source.lookup('bob'))?.uid).toBe(bobUid);
  });

  it('auto_private_groups: the gid is the mapped uid and a group named after the user', async () => {
    const [uid] = sssdIds([sid('bob')]);
    const bob = await adSource({ idMapping: { mode: 'always', autoPrivateGroups: true } }).lookup('bob');
    expect(bob).toMatchObject({ uid, gid: uid, primaryGroupName: 'bob' });
  });

  it('a different ldap_idmap_range_min moves every id, so sssd.conf and idmount must agree', async () => {
    const base = await adSource({ idMapping: { mode: 'always' } }).lookup('bob');
    const moved = await adSource({
      idMapping: { mode: 'always', rangeMin: 100_000, rangeMax: 2_000_100_000 },
    }).lookup('bob');
    expect(moved?.uid).toBe((base?.uid as number) - 100_000);
  });
});

describe('nested groups: tokenGroups (the default, as SSSD) and the in-chain rule', () => {
  /** What the two ways must agree on: the groups (name and gid), the primary group's name, the skip note. */
  const answer = (record: DirectoryRecord | null) => ({
    groups: [...(record?.groups ?? [])].sort((a, b) => a.name.localeCompare(b.name)),
    primaryGroupName: record?.primaryGroupName,
    skipped: record?.notes?.filter((n) => n.startsWith('groups without a mapped id skipped')),
  });
  const groupNotes = (record: DirectoryRecord | null) =>
    (record?.notes ?? []).filter((n) => n.startsWith('groups:')).join('\n');
  /** The user by default, with nestedWith: tokenGroups and with nestedWith: inChain. */
  const lookupBoth = async (name: string, overrides: Record<string, unknown>) => {
    const with_ = (nestedWith?: string) =>
      adSource({
        ...overrides,
        groups: { ...(overrides.groups as object), ...(nestedWith === undefined ? {} : { nestedWith }) },
      }).lookup(name);
    const [byDefault, tokens, inChain] = await Promise.all([with_(), with_('tokenGroups'), with_('inChain')]);
    return { byDefault, tokens, inChain };
  };

  it.each([
    { user: 'alice', mode: 'off', idMapping: {} },
    { user: 'dave', mode: 'off', idMapping: {} },
    { user: 'gina', mode: 'off', idMapping: {} },
    { user: 'alice', mode: 'always', idMapping: { mode: 'always' } },
    { user: 'bob', mode: 'always', idMapping: { mode: 'always' } },
    { user: 'gina', mode: 'always', idMapping: { mode: 'always' } },
    { user: 'alice', mode: 'fallback', idMapping: { mode: 'fallback' } },
    { user: 'bob', mode: 'fallback', idMapping: { mode: 'fallback' } },
    {
      user: 'bob',
      mode: 'always, autoPrivateGroups',
      idMapping: { mode: 'always', autoPrivateGroups: true },
    },
  ])('give $user the same groups both ways (idMapping $mode)', async ({ user, idMapping }) => {
    const { byDefault, tokens, inChain } = await lookupBoth(user, { idMapping });
    expect(answer(tokens)).toEqual(answer(inChain));
    expect(answer(byDefault)).toEqual(answer(tokens));
    expect(tokens?.groups?.length).toBeGreaterThan(2);
    expect(groupNotes(byDefault)).toMatch(/^groups: nested groups from the user's tokenGroups \(\d+ SIDs\)$/);
    expect(groupNotes(tokens)).toMatch(/^groups: nested groups from the user's tokenGroups/);
    expect(groupNotes(inChain)).toBe(
      'groups: nested groups through the in-chain rule 1.2.840.113556.1.4.1941 (groups.nestedWith: inChain)',
    );
  });

  it('with ids mapped, the BUILTIN group tokenGroups lists is skipped with the same note both ways', async () => {
    const { tokens, inChain } = await lookupBoth('bob', { idMapping: { mode: 'always' } });
    expect(answer(tokens).skipped).toEqual([
      'groups without a mapped id skipped: Users (S-1-5-32-545: built-in)',
    ]);
    expect(answer(inChain).skipped).toEqual(answer(tokens).skipped);
  });

  it('resolve a user in 60 groups (two objectSid batches) to all of them', async () => {
    const gina = await adSource().lookup('gina');
    const batch = Object.keys(groupsOf(gina)).filter((name) => name.startsWith('batch-'));
    expect(batch).toHaveLength(60);
    expect(groupsOf(gina)).toMatchObject({ staff: 20001, 'campus-users': 30004, 'batch-60': 31060 });
  });

  it('fall back to the in-chain rule when the bind account may not read tokenGroups, and say so', async () => {
    const { byDefault, tokens, inChain } = await lookupBoth('erin', {});
    expect(groupsOf(byDefault)).toEqual({
      staff: 20001,
      'beamline-id01': 30001,
      'proposal-ab1234': 30002,
      'facility-users': 30003,
      'campus-users': 30004,
    });
    expect(answer(byDefault)).toEqual(answer(inChain));
    expect(answer(tokens)).toEqual(answer(inChain));
    expect(groupNotes(byDefault)).toBe(
      "groups: the user's entry gives no tokenGroups (the DC or the bind account does not give them); nested groups through the in-chain rule 1.2.840.113556.1.4.1941 instead",
    );
    // alice is in the same groups and her tokenGroups are read: the fallback is erin's alone.
    const alice = await adSource().lookup('alice');
    expect(groupsOf(alice)).toEqual(groupsOf(byDefault));
    expect(groupNotes(alice)).toMatch(/tokenGroups \(\d+ SIDs\)/);
  });

  it('differ only on distribution groups: the in-chain rule lists them, tokenGroups (security groups) does not', async () => {
    const { tokens, inChain } = await lookupBoth('frank', {});
    expect(groupsOf(inChain)).toMatchObject({ 'mailing-list': 30020 });
    expect(groupsOf(tokens)).not.toHaveProperty('mailing-list');
    const { 'mailing-list': _, ...rest } = groupsOf(inChain);
    expect(groupsOf(tokens)).toEqual(rest);
  });

  it('name the tokenGroups SIDs no group under groups.bases has (here the BUILTIN container, left out)', async () => {
    const bases = [{ base: `CN=Users,${dc.baseDN}`, scope: 'one' }];
    const { tokens, inChain } = await lookupBoth('alice', { groups: { bases } });
    expect(tokens?.notes).toContain('1 tokenGroups SIDs match no group under groups.bases: S-1-5-32-545');
    expect(groupsOf(tokens)).toEqual(groupsOf(inChain));
  });

  it('nested: false gives direct memberships only, whatever nestedWith says, and says so', async () => {
    for (const nestedWith of ['tokenGroups', 'inChain']) {
      const alice = await adSource({ groups: { nested: false, nestedWith } }).lookup('alice');
      expect(groupsOf(alice)).toEqual({ staff: 20001, 'beamline-id01': 30001 });
      expect(groupNotes(alice)).toBe('groups: direct memberships only (groups.nested: false)');
    }
  });
});

describe('login names', () => {
  it.each([
    { sentence: 'the plain sAMAccountName', name: 'alice' },
    { sentence: 'a different case (AD compares case-insensitively)', name: 'ALICE' },
    { sentence: 'mixed case', name: 'aLiCe' },
    { sentence: 'user@REALM with the configured realm', name: 'alice@IDMOUNT.TEST' },
    { sentence: 'user@realm in lower case', name: 'alice@idmount.test' },
    { sentence: 'DOMAIN\\user with the configured NetBIOS domain', name: 'IDMOUNT\\alice' },
    { sentence: 'domain\\USER in other cases', name: 'idmount\\ALICE' },
  ])('$sentence resolves to the directory spelling', async ({ name }) => {
    const record = await adSource().lookup(name);
    expect(record).toMatchObject({ name: 'alice', uid: 10001 });
  });

  it.each([
    { sentence: 'user@REALM of another realm', name: 'alice@EXAMPLE.ORG' },
    { sentence: 'DOMAIN\\user of another domain', name: 'OTHER\\alice' },
    { sentence: 'an empty user part', name: 'IDMOUNT\\' },
    { sentence: 'an unknown user', name: 'nobody' },
    { sentence: 'a filter wildcard (escaped, never a match-all)', name: '*' },
    { sentence: 'filter syntax (escaped)', name: 'alice)(sAMAccountName=*' },
  ])('$sentence is not found', async ({ name }) => {
    expect(await adSource().lookup(name)).toBeNull();
  });

  it('does not strip realms or domains that are not configured', async () => {
    const source = adSource({ names: {} });
    expect(await source.lookup('alice@IDMOUNT.TEST')).toBeNull();
    expect(await source.lookup('IDMOUNT\\alice')).toBeNull();
    expect(await source.lookup('alice')).toMatchObject({ uid: 10001 });
  });

  it('matches userPrincipalName when that is the login attribute', async () => {
    const source = adSource({ loginAttribute: 'userPrincipalName' });
    expect(await source.lookup('D.Vader@IDMOUNT.TEST')).toMatchObject({
      name: 'd.vader@idmount.test',
      uid: 10004,
    });
    expect(await source.lookup('dave')).toBeNull();
  });
});

describe('disabled accounts (userAccountControl ACCOUNTDISABLE)', () => {
  it('are refused with POLICY_VIOLATION naming the reason, by default', async () => {
    const err = await failure(adSource().lookup('carol'));
    expect(err.code).toBe('POLICY_VIOLATION');
    expect(err.extras).toMatchObject({ reason: 'account-disabled', user: 'carol', source: 'campus-ad' });
    expect(err.message).toContain('disabled');
  });

  it('resolve like any account with disabledAccounts: allow', async () => {
    expect(await adSource({ disabledAccounts: 'allow' }).lookup('carol')).toMatchObject({ uid: 10003 });
  });
});

describe('LDAPS with the DC certificate', () => {
  it('is verified against the DC CA and its host name (tlsServerName), and the source reports up', async () => {
    const source = adSource();
    expect(await source.lookup('alice')).not.toBeNull();
    expect(source.health().up).toBe(true);
  });

  it.each([
    {
      sentence: 'a CA that did not sign the DC certificate',
      overrides: () => ({ caFile: writeForeignCa() }),
    },
    {
      sentence: 'a host name the certificate does not carry',
      overrides: () => ({ tlsServerName: 'dc9.example.org' }),
    },
    {
      sentence: 'plain ldap:// (AD refuses a simple bind without TLS)',
      overrides: () => ({ urls: [dc.plainUrl] }),
    },
  ])('fails closed with SOURCE_UNAVAILABLE for $sentence', async ({ overrides }) => {
    const source = adSource({ ...overrides(), connectTimeout: '3s' });
    const err = await failure(source.lookup('alice'));
    expect(err.code).toBe('SOURCE_UNAVAILABLE');
    expect(source.health()).toMatchObject({ up: false });
  });
});

describe('through the service (app.inject)', () => {
  it('plans alice from AD: RFC2307 ids, home, a data mount from a group reached through nesting, SID in explain', async () => {
    const app = await testApp(
      demoConfig({ sources: [adConfig({ idMapping: { mode: 'fallback' } })] } as never),
    );
    try {
      const res = await app.inject({
        url: '/users/alice/spawn-plan?explain=true',
        headers: bearer(TOKENS.ops),
      });
      expect(res.statusCode).toBe(200);
      const plan = res.json();
      expect(plan).toMatchObject({ uid: 10001, gid: 20001 });
      expect(plan.supplementalGids).toEqual(expect.arrayContaining([30001, 30002, 30003]));
      expect(JSON.stringify(plan.volumeMounts)).toContain('/home/jovyan/data/ab1234');
      expect(plan.explain.notes).toContain(`objectSid: ${sid('alice')}`);
    } finally {
      await app.close();
    }
  });

  it('answers a disabled account with 422 POLICY_VIOLATION problem+json', async () => {
    const app = await testApp(demoConfig({ sources: [adConfig()] } as never));
    try {
      const res = await app.inject({ url: '/users/carol/spawn-plan', headers: bearer(TOKENS.hub) });
      expect(res.statusCode).toBe(422);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'POLICY_VIOLATION' });
    } finally {
      await app.close();
    }
  });
});

/** Another self-signed CA (openssl), unrelated to the DC. */
function writeForeignCa(): string {
  const key = join(dc.dir, 'foreign-ca.key');
  const cert = join(dc.dir, 'foreign-ca.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=Not the DC CA',
    ],
    { stdio: 'ignore' },
  );
  return cert;
}
