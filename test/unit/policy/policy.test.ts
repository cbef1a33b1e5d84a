// Policy rules, one sentence per case.
import { describe, expect, it } from 'vitest';
import { IdmountError } from '../../../src/errors.js';
import type { Identity } from '../../../src/identity/types.js';
import { checkIdentity, createUsernameCheck } from '../../../src/policy/policy.js';
import { parseConfig } from '../../../src/settings.js';

const policy = (overrides: object = {}) =>
  parseConfig(
    { auth: { disabled: true }, sources: [{ name: 's', type: 'file', path: 'x' }], policy: overrides },
    't',
  ).policy;

const identity = (overrides: Partial<Identity> = {}): Identity => ({
  name: 'alice',
  uid: 20001,
  gid: 20001,
  groups: [],
  origin: { uid: 's', gid: 's', home: undefined, gecos: undefined, groups: 's' },
  notes: [],
  ...overrides,
});

const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof IdmountError ? err.code : 'other';
  }
};

describe('username check (before any lookup)', () => {
  const check = createUsernameCheck(policy());
  it.each([
    ['a plain name is accepted', 'alice', 'ok'],
    ['an email-like name is accepted by the default pattern', 'a.b@example.org', 'ok'],
    ['upper case is accepted by the default pattern', 'Alice', 'ok'],
    ['an empty name is refused', '', 'INVALID_USERNAME'],
    ['a slash is refused', 'a/b', 'INVALID_USERNAME'],
    ['a backslash is refused', 'a\\b', 'INVALID_USERNAME'],
    ['a parent reference is refused', 'a..b', 'INVALID_USERNAME'],
    ['a Kelvin sign that folds onto k is refused', '\u212Aate', 'INVALID_USERNAME'],
    ['a full-width letter that normalises onto ASCII is refused', '\uFF41lice', 'INVALID_USERNAME'],
    ['NUL is refused', 'a\u0000', 'INVALID_USERNAME'],
    ['a newline is refused', 'a\n', 'INVALID_USERNAME'],
    ['DEL is refused', 'a\u007f', 'INVALID_USERNAME'],
    ['a C1 control character is refused', 'a\u0085', 'INVALID_USERNAME'],
    ['a non-breaking space is refused', 'a\u00a0b', 'INVALID_USERNAME'],
    ['an LDAP wildcard is refused by the pattern', 'a*', 'INVALID_USERNAME'],
    ['a brace is refused by the default pattern', 'a{b}', 'INVALID_USERNAME'],
    ['a name of 65 characters is refused (maxLength 64)', 'a'.repeat(65), 'INVALID_USERNAME'],
    ['a name of 64 characters is accepted', 'a'.repeat(64), 'ok'],
  ])('%s', (_, name, expected) => {
    expect(codeOf(() => check(name))).toBe(expected);
  });

  it('applies the site pattern, but never lets it allow the always-refused characters', () => {
    const permissive = createUsernameCheck(policy({ username: { pattern: '^.*$', maxLength: 10 } }));
    expect(codeOf(() => permissive('a{b}'))).toBe('ok');
    expect(codeOf(() => permissive('../x'))).toBe('INVALID_USERNAME');
    expect(codeOf(() => permissive('a b'))).toBe('INVALID_USERNAME');
    expect(codeOf(() => permissive('a'.repeat(11)))).toBe('INVALID_USERNAME');
  });
});

describe('identity check (after lookup)', () => {
  it.each([
    [
      'uid 0 is refused even when minUid would allow it',
      identity({ uid: 0 }),
      { minUid: 1 },
      'POLICY_VIOLATION',
    ],
    [
      'gid 0 is refused even when minGid would allow it',
      identity({ gid: 0 }),
      { minGid: 1 },
      'POLICY_VIOLATION',
    ],
    ['a uid below minUid is refused', identity({ uid: 999 }), {}, 'POLICY_VIOLATION'],
    ['a uid above maxUid is refused', identity({ uid: 70000 }), { maxUid: 60000 }, 'POLICY_VIOLATION'],
    ['a primary gid below minGid is refused', identity({ gid: 500 }), {}, 'POLICY_VIOLATION'],
    [
      'a primary gid above maxGid is refused',
      identity({ gid: 70000 }),
      { maxGid: 60000 },
      'POLICY_VIOLATION',
    ],
    ['a uid at the floor is accepted', identity({ uid: 1000 }), {}, 'ok'],
  ])('%s', (_, id, overrides, expected) => {
    expect(codeOf(() => checkIdentity(id, policy(overrides)))).toBe(expected);
  });

  it('drops supplemental groups below the floor, keeps listed ones, never keeps gid 0, adds extraGids', () => {
    const checked = checkIdentity(
      identity({
        groups: [
          { name: 'alice', gid: 20001 },
          { name: 'wheel', gid: 10 },
          { name: 'root', gid: 0 },
          { name: 'video', gid: 44 },
          { name: 'proposal', gid: 30001 },
        ],
      }),
      policy({ alwaysAllowGids: [44], extraGids: [100] }),
    );
    expect(checked.supplementalGids).toEqual([44, 100, 30001]);
    expect(checked.droppedGroups).toEqual([
      { name: 'wheel', gid: 10, reason: 'below minGid 1000' },
      { name: 'root', gid: 0, reason: 'gid 0 is never allowed' },
    ]);
    expect(checked.keptGroups.map((g) => g.name)).toEqual(['alice', 'video', 'proposal']);
  });

  it('refuses a config that would make gid 0 always allowed', () => {
    expect(() => policy({ alwaysAllowGids: [0] })).toThrow(/policy\.alwaysAllowGids\[0\]/);
    expect(() => policy({ extraGids: [0] })).toThrow(/policy\.extraGids\[0\]/);
  });
});
