import { describe, expect, it } from 'vitest';
import {
  decodeSid,
  encodeSid,
  isDomainSid,
  splitObjectSid,
} from '../../../../../src/identity/sources/ad/sid.js';

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

describe('decodeSid', () => {
  it.each([
    {
      sentence: 'a domain user SID (revision 1, authority 5, five sub-authorities little-endian)',
      bytes: '01 05 000000000005 15000000 01000000 02000000 03000000 f4010000',
      sid: 'S-1-5-21-1-2-3-500',
    },
    { sentence: 'a built-in group SID', bytes: '01 02 000000000005 20000000 20020000', sid: 'S-1-5-32-544' },
    { sentence: 'Everyone (no domain part)', bytes: '01 01 000000000001 00000000', sid: 'S-1-1-0' },
    {
      sentence: 'sub-authorities at the 32-bit maximum',
      bytes: '01 05 000000000005 15000000 ffffffff ffffffff ffffffff ffffffff',
      sid: 'S-1-5-21-4294967295-4294967295-4294967295-4294967295',
    },
    {
      sentence: 'an authority of 2^32 or more is printed in hex',
      bytes: '01 00 000100000000',
      sid: 'S-1-0x000100000000',
    },
  ])('decodes $sentence', ({ bytes, sid }) => {
    expect(decodeSid(hex(bytes))).toBe(sid);
    expect(encodeSid(sid)).toEqual(hex(bytes));
  });

  it.each([
    { sentence: 'too short for a header', bytes: '0105' },
    {
      sentence: 'a length that disagrees with the sub-authority count',
      bytes: '01 02 000000000005 20000000',
    },
    { sentence: 'an unknown revision', bytes: '02 01 000000000005 20000000' },
    { sentence: 'more than 15 sub-authorities', bytes: `01 10 000000000005 ${'00000000'.repeat(16)}` },
  ])('refuses $sentence', ({ bytes }) => {
    expect(() => decodeSid(hex(bytes))).toThrow();
  });
});

describe('splitObjectSid / isDomainSid', () => {
  it.each([
    { sid: 'S-1-5-21-1-2-3-500', split: { domainSid: 'S-1-5-21-1-2-3', rid: 500 } },
    { sid: 'S-1-5-21-1-2-3', split: undefined },
    { sid: 'S-1-5-32-544', split: undefined },
    { sid: 'S-1-5-21-1-2-3-4-5', split: undefined },
    { sid: 'S-1-5-21-4294967296-2-3-500', split: undefined },
  ])('$sid splits to $split', ({ sid, split }) => {
    expect(splitObjectSid(sid)).toEqual(split);
  });

  it('accepts exactly S-1-5-21 plus three 32-bit numbers as a domain SID', () => {
    expect(isDomainSid('S-1-5-21-1-2-3')).toBe(true);
    expect(isDomainSid('S-1-5-21-1-2-3-4')).toBe(false);
    expect(isDomainSid('S-1-5-21-1-2-99999999999')).toBe(false);
  });
});
