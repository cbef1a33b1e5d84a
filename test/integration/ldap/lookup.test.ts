// The ldap source against a real slapd, once per schema: identities, groups (primary by gid,
// nested, cycles, paged), malformed and ambiguous entries, name case, filter escaping.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdmountError } from '../../../src/errors.js';
import { createLdapSource } from '../../../src/identity/sources/ldap/source.js';
import type { IdentitySource } from '../../../src/identity/types.js';
import { type LdapSchema, type Slapd, startSlapd } from '../../harness/slapd.js';
import { BIG_GROUP, fixture, ldapConfig, MANY_GROUPS, silentLog } from './fixture.js';

const ctx = { log: silentLog, baseDir: '.' };

async function lookupError(source: IdentitySource, name: string): Promise<IdmountError> {
  const err = await source.lookup(name).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IdmountError);
  return err as IdmountError;
}

const groupNames = (record: { groups?: { name: string }[] } | null) =>
  record?.groups?.map((g) => g.name).sort();

describe.each<LdapSchema>(['rfc2307', 'rfc2307bis'])('ldap source, %s directory', (schema) => {
  let slapd: Slapd;
  let source: IdentitySource;

  beforeAll(async () => {
    slapd = await startSlapd({ schema, fixture });
    source = createLdapSource(ldapConfig(slapd), ctx);
  });
  afterAll(async () => {
    await source?.close();
    await slapd?.close();
  });

  it('returns the POSIX identity with its private group resolved by gidNumber and its member groups', async () => {
    const alice = await source.lookup('alice');
    expect(alice).toMatchObject({
      name: 'alice',
      uid: 2001,
      gid: 2001,
      home: '/home/alice',
      gecos: 'Alice Liddell',
      shell: '/bin/bash',
      primaryGroupName: 'alice',
    });
    expect(groupNames(alice)).toEqual(['alice', 'staff']);
    expect(alice?.notes).toContain("group 'oddgid' skipped: its gidNumber is not one POSIX id");
    expect(alice?.notes).toContain('mail: alice@example.org');
  });

  it('gives a user who is in no group an empty group list, not an error', async () => {
    const bob = await source.lookup('bob');
    expect(bob).toMatchObject({ name: 'bob', uid: 2002, gid: 2002, groups: [] });
    expect(bob?.primaryGroupName).toBeUndefined();
  });

  it('returns null for a user the directory does not know', async () => {
    expect(await source.lookup('nobody')).toBeNull();
  });

  it('finds users and groups under every configured base (users in ou=staff, groups in ou=projects)', async () => {
    const visitor = await source.lookup('visitor');
    expect(visitor).toMatchObject({ uid: 2011, groups: [{ name: 'visitors', gid: 3020 }] });
  });

  it(`reads all ${MANY_GROUPS} groups of a user although slapd caps plain searches at 500 (paged search)`, async () => {
    const many = await source.lookup('many');
    expect(many?.groups).toHaveLength(MANY_GROUPS);
  });

  it('stops a paged group search at groups.maxGroups and says so in the notes', async () => {
    const config = ldapConfig(slapd);
    const capped = createLdapSource(
      { ...config, groups: { ...config.groups, pageSize: 50, maxGroups: 120 } },
      ctx,
    );
    try {
      const many = await capped.lookup('many');
      expect(many?.groups).toHaveLength(120);
      expect(many?.notes).toContain(`group list cut from ${MANY_GROUPS} to 120 (groups.maxGroups)`);
    } finally {
      await capped.close();
    }
  });

  it(`resolves membership of a ${BIG_GROUP}-member group without reading its member list`, async () => {
    const before = slapd.log().length;
    const erin = await source.lookup('erin');
    expect(erin?.groups).toEqual([{ name: 'big', gid: 3100 }]);
    // slapd logs the attributes each search asked for: names and gids only, never members.
    const requested = [
      ...slapd
        .log()
        .slice(before)
        .matchAll(/ SRCH attr=(.*)$/gm),
    ].map((m) => m[1]);
    expect(requested.length).toBeGreaterThanOrEqual(2);
    expect(requested.join(' ')).not.toMatch(/member/i);
  });

  const nested: Array<[string, number, string[]]> =
    schema === 'rfc2307bis'
      ? [
          ['follows parent groups up to the default depth of 2', 2, ['dept', 'org', 'staff', 'team']],
          ['stops at maxNestingDepth 1 and says so in the notes', 1, ['dept', 'staff', 'team']],
          ['reads only direct groups at maxNestingDepth 0', 0, ['staff', 'team']],
        ]
      : [['has no nesting in rfc2307: memberUid lists only direct members', 2, ['staff', 'team']]];
  it.each(nested)('nested groups: %s', async (_sentence, depth, expected) => {
    const config = ldapConfig(slapd);
    const limited = createLdapSource(
      { ...config, groups: { ...config.groups, maxNestingDepth: depth } },
      ctx,
    );
    try {
      const carol = await limited.lookup('carol');
      expect(groupNames(carol)).toEqual(expected);
      if (schema === 'rfc2307bis' && depth === 1) {
        expect(carol?.notes).toContain(
          'group nesting deeper than 1 levels not followed (groups.maxNestingDepth)',
        );
      }
    } finally {
      await limited.close();
    }
  });

  it('terminates on a membership cycle and lists each group of the cycle once', async () => {
    const cyc = await source.lookup('cyc');
    expect(groupNames(cyc)).toEqual(schema === 'rfc2307bis' ? ['cycle-a', 'cycle-b'] : ['cycle-a']);
  });

  it.each([
    ['a missing uidNumber is an error naming the attribute', 'nouid', 'uidNumber', /has no uidNumber/],
    ['a malformed uidNumber is an error naming the attribute', 'badnum', 'uidNumber', /malformed uidNumber/],
  ])('%s', async (_sentence, name, attribute, message) => {
    const err = await lookupError(source, name);
    expect(err.code).toBe('DIRECTORY_ENTRY_INVALID');
    expect(err.extras).toMatchObject({ source: 'campus', attribute, user: name });
    expect(err.message).toMatch(message);
  });

  it('refuses to guess when two entries carry the same login name', async () => {
    const err = await lookupError(source, 'dup');
    expect(err.code).toBe('DIRECTORY_ENTRY_INVALID');
    expect(err.message).toMatch(/2 entries for 'dup'/);
    // The DNs are for the log (the cause), not for the spawn page.
    expect(err.message).not.toMatch(/ou=/);
    expect(String((err.cause as Error).message)).toMatch(/uid=dup,ou=people.*uid=dup,ou=staff/);
  });

  it.each([
    ['with caseSensitiveNames (default), a request differing in case is not that user', true, 'dora', null],
    ['with caseSensitiveNames (default), the exact spelling is found', true, 'Dora', 'Dora'],
    ["with caseSensitiveNames false, the directory's spelling is returned", false, 'dora', 'Dora'],
    ["with caseSensitiveNames false, upper case finds the directory's spelling", false, 'ALICE', 'alice'],
  ])('names: %s', async (_sentence, caseSensitiveNames, requested, expected) => {
    const named = createLdapSource(ldapConfig(slapd, { caseSensitiveNames }), ctx);
    try {
      const record = await named.lookup(requested);
      expect(record?.name ?? null).toBe(expected);
      if (requested === 'ALICE') expect(groupNames(record)).toEqual(['alice', 'staff']);
    } finally {
      await named.close();
    }
  });

  it.each([
    ['a lone star (wildcard)', '*', '\\2a'],
    ['a prefix wildcard', 'al*', 'al\\2a'],
    ['parentheses that would close the filter', 'alice)(uid=*', 'alice\\29\\28uid=\\2a'],
    ['a backslash', 'ali\\ce', 'ali\\5cce'],
    ['a NUL byte', 'alice\u0000', 'alice\\00'],
  ])('filter injection: %s reaches slapd escaped and matches nothing', async (_sentence, name, escaped) => {
    const before = slapd.searchFilters().length;
    expect(await source.lookup(name)).toBeNull();
    const filters = slapd.searchFilters().slice(before);
    const userSearch = filters.find((f) => f.includes('(uid='));
    // slapd logs the filter it decoded: the value stays one escaped assertion inside the AND.
    expect(userSearch?.toLowerCase()).toBe(`(&(objectclass=posixaccount)(uid=${escaped}))`);
  });
});
