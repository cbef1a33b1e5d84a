// Directory ids as LDAP and AD hand them over (text): plain ASCII decimal within the POSIX range.
import { describe, expect, it } from 'vitest';
import { parsePosixId } from '../../../src/identity/values.js';

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
