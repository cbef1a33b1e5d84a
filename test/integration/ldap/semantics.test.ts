// Directory answers as SSSD gives them, and answers a hostile directory cannot bend, against a real
// slapd in both schemas: membership from member values only (a primary gid is not one), an
// attribute outside the identity never invalidates it, one entry is one identity under any of its
// names, a search the directory did not finish is a refusal (never "not found", never a shorter
// list), and bounds hold for the total after nesting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChain } from '../../../src/identity/chain.js';
import { FileSourceConfigSchema } from '../../../src/identity/sources/file/config.js';
import { createFileSource } from '../../../src/identity/sources/file/source.js';
import { createLdapSource } from '../../../src/identity/sources/ldap/source.js';
import type { IdentitySource } from '../../../src/identity/types.js';
import { type DirectoryFixture, type LdapSchema, type Slapd, startSlapd } from '../../harness/slapd.js';
import { writeDirectory } from '../../helpers/app.js';
import { failure } from '../../helpers/errors.js';
import { ldapConfig, silentLog } from './fixture.js';

const ctx = { log: silentLog, baseDir: '.' };

const fixture: DirectoryFixture = {
  users: [{ uid: 'pia', uidNumber: 2101, gidNumber: 2101 }],
  groups: [
    // pia's primary group lists nobody; it sits inside another group.
    { cn: 'pia', gidNumber: 2101 },
    { cn: 'pia-parent', gidNumber: 3101, groups: ['pia'] },
    // A group pia is a member of, nested one level.
    { cn: 'pia-team', gidNumber: 3102, users: ['pia'] },
    { cn: 'pia-team-parent', gidNumber: 3103, groups: ['pia-team'] },
    // twin is one entry with two uid values (twin in its RDN, twin-alias beside it).
    { cn: 'twins', gidNumber: 3110, users: ['twin'] },
    { cn: 'alias-only', gidNumber: 3111, users: ['twin-alias'] },
    // A fan of 30 groups pia-team-parent is a member of, for the nesting bound.
    ...Array.from({ length: 30 }, (_, i) => ({
      cn: `fan${i}`,
      gidNumber: 3200 + i,
      groups: ['pia-team-parent'],
    })),
  ],
};

const person = (suffix: string, rdn: string, uids: string[], number: number, extra: string[] = []) =>
  [
    `dn: ${rdn},ou=people,${suffix}`,
    'objectClass: inetOrgPerson',
    'objectClass: posixAccount',
    ...uids.map((u) => `uid: ${u}`),
    `cn: ${uids[0]}`,
    `sn: ${uids[0]}`,
    `uidNumber: ${number}`,
    `gidNumber: ${number}`,
    `homeDirectory: /home/${uids[0]?.toLowerCase()}`,
    ...extra,
    '',
  ].join('\n');

const odd = (suffix: string) =>
  [
    person(suffix, 'uid=mabel', ['mabel'], 2102, [
      'mail: mabel@example.org',
      'mail: mabel.other@example.org',
    ]),
    person(suffix, 'uid=twin', ['twin', 'twin-alias'], 2103),
    // Decoys for kate: her name in other cases, found before her by the server.
    person(suffix, 'cn=decoy1', ['Kate'], 2901),
    person(suffix, 'cn=decoy2', ['KATE'], 2902),
    person(suffix, 'cn=decoy3', ['kAtE'], 2903),
    person(suffix, 'uid=kate', ['kate'], 2104),
    // Two uid values and neither in the RDN: which is the login name cannot be told.
    person(suffix, 'cn=nameless', ['left', 'right'], 2105),
    // Two entries for one name.
    person(suffix, 'uid=sam', ['sam'], 2106),
    person(suffix, 'cn=other sam', ['sam'], 2107),
  ].join('\n');

/** A second source with a different kate: never the one to answer for the directory's kate. */
const visitorsHoldingKate = () =>
  createFileSource(
    FileSourceConfigSchema.parse({
      name: 'visitors',
      type: 'file',
      path: writeDirectory({ users: [{ name: 'kate', uid: '7777', gid: '7777' }] }),
    }),
    ctx,
  );

const groupsOf = (record: { groups?: { name: string }[] } | null) =>
  record?.groups?.map((g) => g.name).sort();

describe.each<LdapSchema>(['rfc2307', 'rfc2307bis'])('directory semantics, %s', (schema) => {
  let slapd: Slapd;
  let source: IdentitySource;
  beforeAll(async () => {
    slapd = await startSlapd({ schema, fixture, extraLdif: odd('dc=example,dc=org') });
    source = createLdapSource(
      ldapConfig(slapd, {
        users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
        groups: { bases: [{ base: `ou=groups,${slapd.suffix}` }], maxNestingDepth: 4 },
      }),
      ctx,
    );
  });
  afterAll(async () => {
    await source?.close();
    await slapd?.close();
  });

  it('grants the primary group but not the groups the primary group sits in (a gid is not a member value)', async () => {
    const pia = await source.lookup('pia');
    expect(pia?.primaryGroupName).toBe('pia');
    const expected =
      schema === 'rfc2307bis'
        ? ['pia', 'pia-team', 'pia-team-parent', ...Array.from({ length: 30 }, (_, i) => `fan${i}`)].sort()
        : ['pia', 'pia-team'];
    expect(groupsOf(pia)).toEqual(expected);
  });

  it('answers normally for a user with two mail values, both shown in the note', async () => {
    const mabel = await source.lookup('mabel');
    expect(mabel).toMatchObject({ name: 'mabel', uid: 2102 });
    expect(mabel?.notes).toContain('mail: mabel@example.org, mabel.other@example.org');
  });

  it('answers for an entry with two uid values with the name in its RDN and the same groups, asked by either', async () => {
    const byName = await source.lookup('twin');
    const byAlias = await source.lookup('twin-alias');
    expect(byName).toMatchObject({ name: 'twin', uid: 2103 });
    expect(byAlias).toEqual(byName);
    expect(groupsOf(byAlias)).toEqual(['twins']);
  });

  it('refuses an entry with several login names none of which is in its DN', async () => {
    const err = await failure(source.lookup('left'));
    expect(err.code).toBe('DIRECTORY_ENTRY_INVALID');
    expect(err.message).not.toMatch(/cn=|ou=|dc=/);
  });

  it('refuses a name two entries hold, naming no DN to the user (the DNs go to the log)', async () => {
    const err = await failure(source.lookup('sam'));
    expect(err.code).toBe('DIRECTORY_ENTRY_INVALID');
    expect(err.message).not.toMatch(/cn=|ou=|dc=/);
    expect(String((err.cause as Error).message)).toMatch(/cn=other sam/);
  });

  it('finds kate behind entries spelling her name in other cases, so no later source answers for her', async () => {
    const other = visitorsHoldingKate();
    const chain = createChain([source, other]);
    const answer = await chain.ask('kate');
    expect(answer.identity).toMatchObject({ name: 'kate', uid: 2104, origin: { uid: 'campus' } });
    await other.close();
  });

  it('holds groups.maxGroups for the total after nesting, and says it cut', async () => {
    const capped = createLdapSource(
      ldapConfig(slapd, {
        users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
        groups: { bases: [{ base: `ou=groups,${slapd.suffix}` }], maxNestingDepth: 4, maxGroups: 5 },
      }),
      ctx,
    );
    const pia = await capped.lookup('pia');
    expect(pia?.groups?.length).toBeLessThanOrEqual(5);
    if (schema === 'rfc2307bis') expect(pia?.notes?.join('\n')).toMatch(/cut from \d+ to 5/);
    await capped.close();
  });
});

describe.each<LdapSchema>(['rfc2307', 'rfc2307bis'])(
  'a search the directory did not finish, %s',
  (schema) => {
    let slapd: Slapd;
    beforeAll(async () => {
      // A server size limit the four kate entries exceed.
      slapd = await startSlapd({ schema, fixture, extraLdif: odd('dc=example,dc=org'), sizeLimit: 2 });
    });
    afterAll(async () => slapd?.close());

    it("is a refusal naming the size limit, never 'not found' and never a later source's answer", async () => {
      const source = createLdapSource(
        ldapConfig(slapd, {
          users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
          groups: { bases: [] },
        }),
        ctx,
      );
      const other = visitorsHoldingKate();
      const err = await failure(createChain([source, other]).ask('kate'));
      expect(err.code).toBe('SOURCE_UNAVAILABLE');
      expect(err.message).toMatch(/did not give a complete answer \(the server's size limit/);
      await source.close();
      await other.close();
    });
  },
);

describe('a search answered with a referral to another server', () => {
  let slapd: Slapd;
  beforeAll(async () => {
    // Part of ou=people lives on another server: a subtree search returns a continuation reference.
    const referral = [
      'dn: ou=elsewhere,ou=people,dc=example,dc=org',
      'objectClass: referral',
      'objectClass: extensibleObject',
      'ou: elsewhere',
      'ref: ldap://127.0.0.1:9/ou=elsewhere,dc=example,dc=org',
      '',
    ].join('\n');
    slapd = await startSlapd({ schema: 'rfc2307', fixture, extraLdif: referral });
  });
  afterAll(async () => slapd?.close());

  it('is a refusal naming the referral: the entries over there might be the user', async () => {
    const source = createLdapSource(
      ldapConfig(slapd, { users: { bases: [{ base: `ou=people,${slapd.suffix}` }] }, groups: { bases: [] } }),
      ctx,
    );
    const err = await failure(source.lookup('nobody-here'));
    expect(err.code).toBe('SOURCE_UNAVAILABLE');
    expect(err.message).toMatch(/a referral to another server/);
    await source.close();
  });
});
