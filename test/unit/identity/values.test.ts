// Directory ids as LDAP and AD hand them over (text): plain ASCII decimal within the POSIX range.
import { describe, expect, it } from 'vitest';
import {
  canonicalName,
  firstRdn,
  foldName,
  foldsOntoAscii,
  parsePosixId,
} from '../../../src/identity/values.js';

describe('parsePosixId', () => {
  it.each([
    ['0', 0],
    ['7', 7],
    ['007', 7],
    ['2001', 2001],
    ['4294967294', 4_294_967_294],
  ])('reads %j as %d', (text, id) => {
    expect(parsePosixId(text)).toBe(id);
  });

  it.each([
    ['', 'empty'],
    ['4294967295', "the kernel's 'no id'"],
    ['9999999999', 'above 2^32-2'],
    ['12345678901', 'eleven digits'],
    ['-1', 'a sign'],
    ['+5', 'a sign'],
    [' 5', 'whitespace'],
    ['5 ', 'whitespace'],
    ['20x8', 'a letter'],
    ['0x10', 'hexadecimal'],
    ['1e3', 'an exponent'],
    ['1.0', 'a fraction'],
    ['\u0661\u0662', 'non-ASCII digits'],
    ['\uff11', 'a full-width digit'],
  ])('refuses %j (%s)', (text) => {
    expect(parsePosixId(text)).toBeUndefined();
  });
});

describe('firstRdn and canonicalName', () => {
  it.each([
    ['uid=alice,ou=people,dc=example,dc=org', [{ type: 'uid', value: 'alice' }]],
    ['uid=a\\,b,ou=people', [{ type: 'uid', value: 'a,b' }]],
    [
      'cn=J\\2C Doe+uid=jdoe,ou=people',
      [
        { type: 'cn', value: 'J, Doe' },
        { type: 'uid', value: 'jdoe' },
      ],
    ],
    ['uid=caf\\C3\\A9,ou=x', [{ type: 'uid', value: 'café' }]],
    ['UID = spaced ,ou=x', [{ type: 'UID', value: 'spaced' }]],
  ])('reads the first RDN of %j', (dn, pairs) => {
    expect(firstRdn(dn)).toEqual(pairs);
  });

  it('names an entry by its only value, or by the value in its RDN, else not at all', () => {
    expect(canonicalName('cn=x,ou=p', 'uid', ['solo'])).toBe('solo');
    expect(canonicalName('uid=twin,ou=p', 'uid', ['twin-alias', 'twin'])).toBe('twin');
    expect(canonicalName('cn=Twin+uid=twin,ou=p', 'UID', ['twin-alias', 'twin'])).toBe('twin');
    expect(canonicalName('cn=nameless,ou=p', 'uid', ['left', 'right'])).toBeUndefined();
  });
});

describe('the one folding rule', () => {
  it('folds ASCII letters only', () => {
    expect(foldName('Alice-O.Brien')).toBe('alice-o.brien');
    expect(foldName('Émile')).toBe('Émile');
  });

  it.each([
    ['\u212Aate', 'the Kelvin sign folds to k'],
    ['\u017Fam', 'long s upper-cases to S'],
    ['\uFB00y', 'the ff ligature normalises to ff'],
    ['\uFF41lice', 'a full-width a normalises to a'],
    ['\u0130brahim', 'dotted capital I lower-cases to i + dot'],
  ])('finds %j folding onto ASCII (%s)', (name) => {
    expect(foldsOntoAscii(name)).toBe(true);
  });

  it('leaves names whose non-ASCII letters stay non-ASCII', () => {
    for (const name of ['émile', 'Zoë', 'jürgen', 'ñandú', 'łukasz', 'alice'])
      expect(foldsOntoAscii(name)).toBe(false);
  });
});
