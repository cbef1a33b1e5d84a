// LDAP filter escaping against a real slapd, property-based: whatever name reaches the ldap source
// (the username policy refuses most of these before any lookup; this is the layer beneath it), the
// search slapd receives is one equality test on uid carrying exactly that name, and the answer is
// nobody or the entry of that very name, never another user. And poisoned attribute values in
// slapd (a climbing homeDirectory, a cn forging a passwd line, a group name that climbs when a rule
// captures it) never reach a plan served by the app.
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LdapSourceConfigSchema } from '../../../src/identity/sources/ldap/config.js';
import { createLdapSource } from '../../../src/identity/sources/ldap/source.js';
import type { IdentitySource } from '../../../src/identity/types.js';
import { ldapSourceFor, type Slapd, startSlapd } from '../../harness/slapd.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';

// Entries whose names are filter syntax themselves: an unescaped name would match them or all users.
const USERS = ['alice', 'bob', 'star*', 'paren(x)', 'back\\slash'];

const POISONED_LDIF = [
  ['climber', '/home/../etc', 'Climber'],
  ['forger', '/home/forger', 'x:0:0:root:/root:/bin/sh'],
  ['grouped', '/home/grouped', 'Grouped'],
].map(([uid, home, cn], i) =>
  [
    `dn: uid=${uid},ou=people,dc=example,dc=org`,
    'objectClass: inetOrgPerson',
    'objectClass: posixAccount',
    `uid: ${uid}`,
    `cn: ${cn}`,
    `sn: ${uid}`,
    `uidNumber: ${6100 + i}`,
    `gidNumber: ${6100 + i}`,
    `homeDirectory: ${home}`,
    '',
    ...(uid === 'grouped'
      ? [
          'dn: cn=proposal-../../etc,ou=groups,dc=example,dc=org',
          'objectClass: posixGroup',
          'cn: proposal-../../etc',
          'gidNumber: 7001',
          'memberUid: grouped',
          '',
        ]
      : []),
  ].join('\n'),
);

/** slapd logs a filter value with \XX escapes for special and non-ASCII bytes; undo them. */
function unescapeFilterValue(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i += 1) {
    if (value[i] === '\\' && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(value[i] as string, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const USER_SEARCH = /^\(&\(objectClass=posixAccount\)\(uid=(.*)\)\)$/;

describe('a real slapd: filters always escaped, poisoned attributes never in a plan', () => {
  let slapd: Slapd;
  let source: IdentitySource;

  beforeAll(async () => {
    slapd = await startSlapd({
      schema: 'rfc2307',
      extraLdif: USERS.map((uid, i) =>
        [
          `dn: uid=${uid.replace('\\', '\\\\')},ou=people,dc=example,dc=org`,
          'objectClass: inetOrgPerson',
          'objectClass: posixAccount',
          `uid: ${uid}`,
          `cn: ${uid}`,
          `sn: ${uid}`,
          `uidNumber: ${6000 + i}`,
          `gidNumber: ${6000 + i}`,
          `homeDirectory: /home/u${i}`,
          '',
        ].join('\n'),
      )
        .concat(POISONED_LDIF)
        .join('\n'),
    });
    source = createLdapSource(LdapSourceConfigSchema.parse(ldapSourceFor(slapd)), {
      log: pino({ level: 'silent' }),
      baseDir: '.',
    });
  });
  afterAll(async () => {
    await source?.close();
    await slapd?.close();
  });

  const appPlan = async (name: string) => {
    const app = await testApp(
      demoConfig({
        sources: [ldapSourceFor(slapd)] as never,
        data: [
          {
            name: 'proposal',
            fromGroup: '^proposal-(?<proposal>.+)$',
            path: '/data/visitor/{proposal}',
            mountPath: '/home/jovyan/data/{proposal}',
            readOnly: true,
            allowedRoots: ['/data/visitor'],
            volume: { nfs: { server: 'nfs-data.example.org' } },
          },
        ],
      }),
    );
    try {
      return await app.inject({ url: `/users/${name}/spawn-plan`, headers: bearer(TOKENS.hub) });
    } finally {
      await app.close();
    }
  };

  const names = fc.oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }).filter((s) => s.isWellFormed()),
    fc
      .array(
        fc.constantFrom(
          '*',
          '(',
          ')',
          '\\',
          '\u0000',
          '|',
          '&',
          '!',
          '=',
          'uid=',
          'alice',
          '*)(uid=*',
          'a',
          ' ',
        ),
        {
          minLength: 1,
          maxLength: 6,
        },
      )
      .map((parts) => parts.join('')),
    fc.constantFrom(...USERS, 'ALICE', '*', 'star\\2a', 'alice)(|(uid=*', 'x*', '\\'),
  );

  it('sends one uid equality carrying the name as a value, and finds only that entry (250 names)', async () => {
    await fc.assert(
      fc.asyncProperty(names, async (name) => {
        const before = slapd.searchFilters().length;
        const record = await source.lookup(name).catch((err: unknown) => err);
        // Either nobody, or the entry whose uid is this name (slapd compares uid case-insensitively).
        if (record instanceof Error) throw record;
        if (record !== null) {
          expect((record as { name: string }).name.toLowerCase()).toBe(name.toLowerCase());
          expect(USERS.map((u) => u.toLowerCase())).toContain(name.toLowerCase());
        }
        const userSearches = slapd
          .searchFilters()
          .slice(before)
          .filter((f) => f.startsWith('(&(objectClass=posixAccount)'));
        expect(userSearches, `one user search for ${JSON.stringify(name)}`).toHaveLength(1);
        const match = USER_SEARCH.exec(userSearches[0] as string);
        expect(match, `the filter slapd received: ${userSearches[0]}`).not.toBeNull();
        const sent = (match as RegExpExecArray)[1] as string;
        // No bare filter syntax in the value: it stayed one equality assertion.
        // biome-ignore lint/suspicious/noControlCharactersInRegex: a raw NUL in the filter is what must not happen
        expect(sent.replace(/\\[0-9a-fA-F]{2}/g, '')).not.toMatch(/[*()\\\u0000]/);
        // slapd logs the value normalised by uid's matching rule (caseIgnoreMatch: folded case,
        // squeezed spaces); for printable ASCII that is exactly the lower-cased name.
        if (/^[\x21-\x7e]+$/.test(name)) expect(unescapeFilterValue(sent)).toBe(name.toLowerCase());
      }),
      { numRuns: 250 },
    );
  });

  it.each([
    ['a wildcard finds nobody (there is no user named "*")', '*', null],
    ['an injected OR finds nobody', 'alice)(|(uid=*', null],
    ['a wildcard-suffixed name finds only its literal entry', 'star*', 'star*'],
    ['parentheses are part of the name', 'paren(x)', 'paren(x)'],
    ['a backslash is part of the name', 'back\\slash', 'back\\slash'],
    ['"star" without the asterisk finds nobody', 'star', null],
  ])('%s', async (_, name, expected) => {
    const record = await source.lookup(name);
    expect(record?.name ?? null).toBe(expected);
  });
  it.each([
    ['a homeDirectory that climbs out of /home', 'climber', 422],
    ['a group whose captured value climbs', 'grouped', 422],
  ])('through the app, %s: 422, no plan', async (_, name, status) => {
    const res = await appPlan(name);
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ code: 'POLICY_VIOLATION' });
  });

  it('through the app, a cn forging a passwd entry is left out of the passwd line', async () => {
    const res = await appPlan('forger');
    expect(res.statusCode).toBe(200);
    expect(res.json().nss.passwd).toEqual(['forger:x:6101:6101::/home/jovyan/home:/bin/bash']);
  });
});
