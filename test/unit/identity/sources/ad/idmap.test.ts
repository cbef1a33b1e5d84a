// The ID mapping must give exactly SSSD's numbers: every expectation here is computed by SSSD's own
// code (pysss_murmur for the hash, libsss_idmap for the ids) through sssd_reference.py.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  IdMapError,
  type IdMapOptions,
  murmurhash3,
  type SliceBook,
  SliceClaimNeeded,
  SssdIdMapper,
} from '../../../../../src/identity/sources/ad/idmap.js';

// Debian's interpreter: python3-sss installs pysss_murmur for it, not for other Pythons on PATH.
const PYTHON = '/usr/bin/python3';
const REFERENCE = fileURLToPath(new URL('./sssd_reference.py', import.meta.url));

function sssdReference(request: { options?: Partial<IdMapOptions>; hash?: string[]; map?: string[] }) {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run \`npm run test:deps\``);
  try {
    return JSON.parse(
      execFileSync(PYTHON, [REFERENCE], { input: JSON.stringify(request), encoding: 'utf8' }),
    ) as {
      hash: number[];
      map: (number | string)[];
    };
  } catch (err) {
    throw new Error(
      `SSSD's reference code could not run (python3-sss and libsss-idmap0 are installed by \`npm run test:deps\`): ${(err as Error).message}`,
    );
  }
}

/** A small deterministic generator so failures reproduce (no Math.random in tests). */
function lcg(seed: number) {
  let state = seed >>> 0;
  return (bound: number) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Math.floor((state / 2 ** 32) * bound);
  };
}

function domainSids(count: number, seed: number): string[] {
  const next = lcg(seed);
  return Array.from({ length: count }, () => `S-1-5-21-${next(2 ** 32)}-${next(2 ** 32)}-${next(2 ** 32)}`);
}

/** Object SIDs over the given domains with RIDs in the primary slice, in secondary slices and far beyond. */
function objectSids(domains: string[], count: number, seed: number, ridBound: number): string[] {
  const next = lcg(seed);
  return Array.from({ length: count }, () => {
    const kind = next(10);
    const rid = kind < 6 ? 500 + next(20_000) : kind < 9 ? next(ridBound) : 4_294_967_295 - next(3);
    return `${domains[next(domains.length)]}-${rid}`;
  });
}

function ours(options: Partial<IdMapOptions>, sids: string[]): (number | string)[] {
  // SSSD's own collision rule (first seen, first served), which libsss_idmap follows.
  const mapper = new SssdIdMapper({ ...options, placement: 'first-seen' });
  return sids.map((sid) => {
    try {
      return mapper.map(sid).id;
    } catch (err) {
      if (err instanceof IdMapError) return err.reason;
      throw err;
    }
  });
}

describe('murmurhash3 (x86, 32-bit) equals SSSD pysss_murmur', () => {
  it('for 1000 domain SIDs, secondary-slice names and strings of every tail length', () => {
    const next = lcg(7);
    const inputs = [
      '',
      'a',
      'ab',
      'abc',
      'abcd',
      ...domainSids(600, 1),
      ...domainSids(200, 2).map((sid) => `${sid}-${200_000 * (1 + next(20))}`),
      ...Array.from({ length: 200 }, () => 'x'.repeat(next(64))),
    ];
    const reference = sssdReference({ hash: inputs });
    expect(inputs.map((s) => murmurhash3(s))).toEqual(reference.hash);
  });
});

const cases: { sentence: string; options: Partial<IdMapOptions>; sids: () => string[] }[] = [
  {
    sentence:
      'defaults (range 200000-2000200000, size 200000): 2000 SIDs over 30 domains, RIDs up to 5 000 000',
    options: {},
    sids: () => objectSids(domainSids(30, 11), 2000, 12, 5_000_000),
  },
  {
    sentence: 'defaults with one domain: every RID beyond the helper table gets a slice on first use',
    options: {},
    sids: () => objectSids(domainSids(1, 21), 600, 22, 40_000_000),
  },
  {
    sentence: 'a tiny id space (8 slices) so primary and secondary slices collide and run out',
    options: { rangeMin: 10_000, rangeMax: 18_000, rangeSize: 1_000, helperTableSize: 3 },
    sids: () => objectSids(domainSids(12, 31), 400, 32, 9_000),
  },
  {
    sentence: 'ldap_idmap_default_domain_sid takes slice 0 and other domains hash around it',
    options: {
      defaultDomainSid: 'S-1-5-21-3623811015-3361044348-30300820',
      rangeMin: 100_000,
      rangeMax: 300_100_000,
    },
    sids: () => [
      'S-1-5-21-3623811015-3361044348-30300820-1013',
      ...objectSids(['S-1-5-21-3623811015-3361044348-30300820', ...domainSids(10, 41)], 500, 42, 1_000_000),
    ],
  },
  {
    sentence: 'ldap_idmap_autorid_compat: slices are handed out from 0 in order of first sight',
    options: { autoridCompat: true, rangeSize: 100_000, helperTableSize: 2 },
    sids: () => objectSids(domainSids(15, 51), 500, 52, 700_000),
  },
  {
    sentence: 'no helper table (ldap_idmap_helper_table_size = 0): RIDs beyond the range size do not map',
    options: { helperTableSize: 0 },
    sids: () => objectSids(domainSids(5, 61), 300, 62, 1_000_000),
  },
  {
    sentence: 'built-in SIDs (S-1-5-32-...) are refused as SSSD refuses them; RID 0 and small RIDs map',
    options: {},
    sids: () => ['S-1-5-32-544', 'S-1-5-32-545', 'S-1-5-21-1-2-3-4', 'S-1-5-21-1-2-3-0'],
  },
];

describe('SssdIdMapper equals libsss_idmap driven like SSSD LDAP provider', () => {
  it.each(cases)('$sentence', ({ options, sids }) => {
    const input = sids();
    const reference = sssdReference({ options, map: input });
    const got = ours(options, input);
    const mismatches = input.flatMap((sid, i) =>
      got[i] === reference.map[i] ? [] : [{ sid, ours: got[i], sssd: reference.map[i] }],
    );
    expect(mismatches).toEqual([]);
    // The case must exercise something: at least one SID mapped (or, for refusals, none).
    expect(got.length).toBe(input.length);
  });

  it('maps a well-known example the way the sssd-ad(5) arithmetic says: slice base + RID', () => {
    const mapper = new SssdIdMapper();
    const mapping = mapper.map('S-1-5-21-1-2-3-500');
    const slice = murmurhash3('S-1-5-21-1-2-3') % 10_000;
    expect(mapping).toMatchObject({ domainSid: 'S-1-5-21-1-2-3', rid: 500, slice, secondary: false });
    expect(mapping.id).toBe(200_000 + slice * 200_000 + 500);
  });

  it('refuses a range SSSD refuses (max - min smaller than the range size)', () => {
    expect(() => new SssdIdMapper({ rangeMin: 1000, rangeMax: 1500, rangeSize: 1000 })).toThrow(IdMapError);
  });
});

describe('slices never depend on lookup order', () => {
  // 8 slices of 1000 ids: these two domain SIDs hash to the same slice (6).
  const tiny = { rangeMin: 10_000, rangeMax: 18_000, rangeSize: 1_000, helperTableSize: 0 };
  const [a, b] = ['S-1-5-21-1000-2000-2', 'S-1-5-21-1000-2000-3'];
  const pinsBook = (pins: Record<string, number>): SliceBook => {
    const slices = new Map(Object.entries(pins).map(([id, s]) => [s, id]));
    return { agreed: (id) => pins[id], pinnedTo: (s) => slices.get(s), shared: false };
  };
  const mapInOrder = (options: Partial<IdMapOptions>, order: string[]) => {
    const mapper = new SssdIdMapper({ ...tiny, ...options });
    const out: Record<string, number | string> = {};
    for (const domain of order) {
      try {
        out[domain] = mapper.map(`${domain}-500`).id;
      } catch (err) {
        if (!(err instanceof IdMapError)) throw err;
        out[domain] = err.message;
      }
    }
    return out;
  };

  it("SSSD's own rule (first seen, first served) gives one SID different ids in different orders", () => {
    const ab = mapInOrder({ placement: 'first-seen' }, [a, b]);
    const ba = mapInOrder({ placement: 'first-seen' }, [b, a]);
    expect(murmurhash3(a) % 8).toBe(murmurhash3(b) % 8);
    expect(ab[a]).not.toBe(ba[a]);
  });

  it('without an agreement the later of two colliding domains is refused, naming idMapping.slices; no SID gets two ids', () => {
    const ab = mapInOrder({}, [a, b]);
    const ba = mapInOrder({}, [b, a]);
    expect(ab[a]).toBe(16_500);
    expect(ba[b]).toBe(16_500);
    for (const refused of [ab[b], ba[a]]) {
      expect(refused).toMatch(
        /taken by S-1-5-21-1000-2000-[23].*idMapping\.slices \("S-1-5-21-1000-2000-[23]": <slice>\)/,
      );
    }
  });

  it('a pinned slice settles the collision the same way in either order', () => {
    const placement = pinsBook({ [b]: 2 });
    expect(mapInOrder({ placement }, [a, b])).toEqual({ [a]: 16_500, [b]: 12_500 });
    expect(mapInOrder({ placement }, [b, a])).toEqual({ [a]: 16_500, [b]: 12_500 });
  });

  it('a slice pinned to one range is never taken by another range hashing to it', () => {
    expect(mapInOrder({ placement: pinsBook({ [b]: 6 }) }, [a, b])[a]).toMatch(
      /taken by S-1-5-21-1000-2000-3/,
    );
  });

  it('autorid compatibility: one domain takes slice 0 and its helpers the next ones; a second needs a pin', () => {
    const autorid = { ...tiny, autoridCompat: true, helperTableSize: 2 };
    const mapper = new SssdIdMapper(autorid);
    expect(mapper.map(`${a}-500`)).toMatchObject({ id: 10_500, slice: 0 });
    expect(mapper.map(`${a}-1500`)).toMatchObject({ id: 11_500, slice: 1, secondary: true });
    expect(() => mapper.map(`${b}-500`)).toThrow(/taken by S-1-5-21-1000-2000-2.*idMapping\.slices/);
    const pinned = new SssdIdMapper({ ...autorid, placement: pinsBook({ [b]: 5 }) });
    expect(pinned.map(`${b}-500`)).toMatchObject({ id: 15_500, slice: 5 });
    expect(pinned.map(`${a}-500`)).toMatchObject({ id: 10_500, slice: 0 });
  });

  it('with a shared tier, an unagreed range is claimed first (nothing is guessed or registered)', () => {
    const mapper = new SssdIdMapper({
      ...tiny,
      helperTableSize: 1,
      placement: { agreed: () => undefined, pinnedTo: () => undefined, shared: true },
    });
    let claim: unknown;
    try {
      mapper.map(`${a}-500`);
    } catch (err) {
      claim = err;
    }
    expect(claim).toBeInstanceOf(SliceClaimNeeded);
    expect((claim as SliceClaimNeeded).requests).toEqual([
      { rangeId: a, origin: 6 },
      { rangeId: `${a}-1000`, origin: murmurhash3(`${a}-1000`) % 8 },
    ]);
  });

  it('a domain alone maps as libsss_idmap does; a secondary range SSSD would move past another is refused', () => {
    const options = {};
    const input = objectSids(domainSids(1, 21), 600, 22, 40_000_000);
    const reference = sssdReference({ options, map: input });
    const mapper = new SssdIdMapper(options);
    const refused: string[] = [];
    input.forEach((sid, i) => {
      try {
        expect(mapper.map(sid).id, sid).toBe(reference.map[i]);
      } catch (err) {
        if (!(err instanceof IdMapError)) throw err;
        if (err.reason !== 'COLLISION') expect(err.reason, sid).toBe(reference.map[i]);
        else refused.push(sid);
      }
    });
    // Secondary ranges are hashed over 10 000 slices: a collision among a few hundred is rare.
    expect(refused.length).toBeLessThan(input.length / 20);
  });
});
