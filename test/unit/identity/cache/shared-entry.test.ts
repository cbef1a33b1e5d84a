// The shared tier's codec: what one replica stores, another reads back unchanged; anything else a
// Redis might hold (another version, garbage, ids out of range, huge values) is refused with a
// reason, before any plan is derived from it.
import { describe, expect, it } from 'vitest';
import { pack } from '../../../../src/identity/cache/packing.js';
import { decodeEntry, encodeEntry } from '../../../../src/identity/cache/shared-entry.js';
import type { StoredEntry } from '../../../../src/identity/cache/store.js';

const found: StoredEntry = {
  kind: 'found',
  identity: pack({
    name: 'alice',
    uid: 20001,
    gid: 20001,
    home: '/home/alice',
    gecos: 'Alice "A" Liddell',
    groups: [
      { name: 'staff', gid: 3000 },
      { name: 'grüppe', gid: 4_294_967_294 },
    ],
    primaryGroupName: 'alice',
    origin: {} as never,
    notes: ['mail: alice@example.org'],
  }),
  origin: { uid: 'campus', gid: 'campus', home: 'campus', gecos: undefined, groups: 'campus' },
  attempts: [{ source: 'campus', result: 'found' }],
  fetchedAt: 1_700_000_000_000,
};
const missing: StoredEntry = {
  kind: 'missing',
  attempts: [{ source: 'campus', result: 'not found' }],
  fetchedAt: 1,
};

describe('shared entry codec', () => {
  it.each([
    { sentence: 'an identity', entry: found },
    { sentence: '"no such user"', entry: missing },
  ])('reads back $sentence exactly as it was stored', ({ entry }) => {
    expect(decodeEntry(encodeEntry(entry))).toEqual({ ok: true, entry });
  });

  const wire = () => JSON.parse(encodeEntry(found)) as Record<string, unknown> & { identity: unknown[] };
  const cases: { sentence: string; text: () => string; reason: RegExp }[] = [
    { sentence: 'not JSON', text: () => 'uid=0', reason: /not JSON/ },
    { sentence: 'another wire version', text: () => JSON.stringify({ ...wire(), v: 2 }), reason: /^v:/ },
    {
      sentence: 'a negative uid',
      text: () => JSON.stringify({ ...wire(), identity: ['alice', -1, ...wire().identity.slice(2)] }),
      reason: /identity\.1/,
    },
    {
      sentence: 'a uid beyond 32 bits',
      text: () => JSON.stringify({ ...wire(), identity: ['alice', 2 ** 32, ...wire().identity.slice(2)] }),
      reason: /identity\.1/,
    },
    {
      sentence: 'groups that do not alternate name and gid',
      text: () => {
        const w = wire();
        w.identity[6] = ['staff', 'staff'];
        return JSON.stringify(w);
      },
      reason: /alternate/,
    },
    {
      sentence: 'an unknown field (a writer this version does not know)',
      text: () => JSON.stringify({ ...wire(), uid: 0 }),
      reason: /entry|Unrecognized/,
    },
    {
      sentence: 'a fetch time that is not a time',
      text: () => JSON.stringify({ ...wire(), fetchedAt: 'now' }),
      reason: /fetchedAt/,
    },
    { sentence: 'a value over 1 MiB', text: () => `"${'x'.repeat(1_048_577)}"`, reason: /bytes/ },
  ];
  it.each(cases)('refuses $sentence', ({ text, reason }) => {
    const decoded = decodeEntry(text());
    expect(decoded.ok).toBe(false);
    expect((decoded as { reason: string }).reason).toMatch(reason);
  });
});
