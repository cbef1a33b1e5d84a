// SSSD-compatible ID mapping (sssd-ldap(5) / sssd-ad(5) "ID MAPPING", `ldap_id_mapping = true`):
// derives POSIX ids from objectSid exactly as SSSD's libsss_idmap does, so an NFS server whose
// clients run SSSD sees the same numbers idmount hands to the notebook.
//
// The algorithm (reimplemented from SSSD's documented behaviour and libsss_idmap's semantics):
// - The id space [rangeMin, rangeMax) is cut into slices of rangeSize ids;
//   maxSlices = floor((rangeMax - rangeMin) / rangeSize).
// - A domain's primary slice is murmurhash3(domain SID string, seed 0xdeadbeef) % maxSlices (slice 0
//   for ldap_idmap_default_domain_sid; in autorid compatibility mode the search starts at 0).
//   When that slice overlaps one already assigned, the next slice is tried (wrapping), until a
//   free one is found (the collision rule). A SID's id is slice base + RID.
// - RIDs >= rangeSize fall into secondary slices: for first RID f = floor(rid / rangeSize) *
//   rangeSize the slice is chosen the same way from the string "<domain SID>-<f>". The first
//   ldap_idmap_helper_table_size of them are chosen when the domain is added, the others when a
//   SID first needs them; a secondary slice that collides with an assigned one fails to map, as in SSSD.
//
// Where idmount differs on purpose: SSSD's collision rule depends on the order in which domains
// (and secondary ranges) are first seen, so two machines — or two replicas, or one replica before
// and after a restart — can give the same SID different ids. idmount never lets lookup order pick
// a slice. A range takes its own slice (the hash, or slice 0 for the default domain), or the one
// agreed for it (`SliceBook`): pinned in the configuration (idMapping.slices), or agreed once for
// all replicas through the shared cache tier (first writer wins, ./slices.ts). Without a shared
// tier, a range whose own slice is taken by another domain's is refused with an error naming
// idMapping.slices; only a domain's own primary and helper ranges, laid out in a fixed order when
// the domain is added, move past each other as SSSD's do. `placement: 'first-seen'` keeps SSSD's
// rule literally (the reference tests compare it with libsss_idmap).
import { isDomainSid, splitObjectSid } from './sid.js';

export interface IdMapOptions {
  /** ldap_idmap_range_min */
  rangeMin: number;
  /** ldap_idmap_range_max */
  rangeMax: number;
  /** ldap_idmap_range_size */
  rangeSize: number;
  /** ldap_idmap_autorid_compat */
  autoridCompat: boolean;
  /** ldap_idmap_helper_table_size */
  helperTableSize: number;
  /** ldap_idmap_default_domain_sid: this domain gets slice 0. */
  defaultDomainSid?: string | undefined;
  /** ldap_idmap_default_domain (name used for the default domain SID; only matters for collisions). */
  defaultDomainName?: string | undefined;
  /** How a slice is chosen when a range's own one is taken (see the header); default: agreed or refused. */
  placement?: SliceBook | 'first-seen' | undefined;
}

/** The slices agreed for ranges: pinned by configuration, or through the shared cache tier. */
export interface SliceBook {
  /** The slice agreed for a range id (a domain SID, or "<domain SID>-<first RID>"); -1: none is left. */
  agreed(rangeId: string): number | undefined;
  /** The range id a slice is pinned to by configuration, if any. */
  pinnedTo(slice: number): string | undefined;
  /** True when a range nobody agreed on yet must be claimed through the shared tier first. */
  readonly shared: boolean;
}

/** No agreement at all: every range takes its own slice or is refused. */
const NOTHING_AGREED: SliceBook = { agreed: () => undefined, pinnedTo: () => undefined, shared: false };

/**
 * Thrown (on purpose not an IdMapError, so no caller mistakes it for "this SID has no id") when
 * ranges need a slice agreed through the shared tier before the SID can be mapped; nothing was
 * registered. ./slices.ts claims them and asks again.
 */
export class SliceClaimNeeded extends Error {
  constructor(readonly requests: { rangeId: string; origin: number }[]) {
    super(`ID-mapping slices must be agreed first for ${requests.map((r) => r.rangeId).join(', ')}`);
    this.name = 'SliceClaimNeeded';
  }
}

/** SSSD's defaults (sssd-ldap(5)). */
export const SSSD_IDMAP_DEFAULTS: IdMapOptions = {
  rangeMin: 200_000,
  rangeMax: 2_000_200_000,
  rangeSize: 200_000,
  autoridCompat: false,
  helperTableSize: 10,
};

const UINT32_MAX = 0xffff_ffff;
const MURMUR_SEED = 0xdeadbeef;

/** MurmurHash3 x86 32-bit over the bytes of `key` (SSSD hashes the ASCII SID string). */
export function murmurhash3(key: string | Uint8Array, seed = MURMUR_SEED): number {
  const data = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
  const nblocks = data.length >>> 2;
  let h1 = seed >>> 0;
  for (let i = 0; i < nblocks; i++) {
    const o = i * 4;
    let k1 =
      (data[o] as number) |
      ((data[o + 1] as number) << 8) |
      ((data[o + 2] as number) << 16) |
      ((data[o + 3] as number) << 24);
    k1 = Math.imul(k1, c1);
    k1 = rotl(k1, 15);
    k1 = Math.imul(k1, c2);
    h1 ^= k1;
    h1 = rotl(h1, 13);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
  }
  const tail = nblocks * 4;
  // The tail: the last 1-3 bytes, mixed like a short block.
  const rest = data.length & 3;
  if (rest > 0) {
    let k1 = data[tail] as number;
    if (rest >= 2) k1 ^= (data[tail + 1] as number) << 8;
    if (rest === 3) k1 ^= (data[tail + 2] as number) << 16;
    k1 = Math.imul(k1, c1);
    k1 = rotl(k1, 15);
    k1 = Math.imul(k1, c2);
    h1 ^= k1;
  }
  h1 ^= data.length;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  return h1 >>> 0;
}

/** Why a SID has no id; `builtin` SIDs (S-1-5-32-...) are never mapped by SSSD either. */
export class IdMapError extends Error {
  constructor(
    /** libsss_idmap's name for the same failure (IDMAP_<reason>), or INVALID_CONFIG. */
    readonly reason:
      | 'BUILTIN_SID'
      | 'SID_INVALID'
      | 'OUT_OF_SLICES'
      | 'COLLISION'
      | 'NO_RANGE'
      | 'INVALID_CONFIG',
    message: string,
  ) {
    super(message);
    this.name = 'IdMapError';
  }
}

interface Range {
  min: number;
  max: number;
  firstRid: number;
  rangeId?: string | undefined;
}

interface MappedDomain {
  name: string;
  sid: string;
  range: Range;
  /** Pre-computed secondary slices, shared by every entry of one domain. */
  helpers: Range[];
  autoAddRanges: boolean;
  /** Primary slice number, for explain output. */
  slice: number;
}

/** The result of mapping one SID, with the numbers an admin needs to compare with SSSD. */
export interface IdMapping {
  sid: string;
  domainSid: string;
  rid: number;
  id: number;
  /** Slice number the id falls in (primary or secondary). */
  slice: number;
  secondary: boolean;
}

/**
 * One SSSD-equivalent ID map. Stateful like SSSD's: domains are registered as their SIDs are first
 * seen (SSSD then persists their slices), which only matters when two domains' slices collide.
 */
export class SssdIdMapper {
  private readonly opts: IdMapOptions;
  readonly maxSlices: number;
  private readonly placement: SliceBook | 'first-seen';
  /** Newest first, like SSSD's list, so lookups visit entries in the same order. */
  private domains: MappedDomain[] = [];

  constructor(options: Partial<IdMapOptions> = {}) {
    this.opts = { ...SSSD_IDMAP_DEFAULTS, ...options };
    this.placement = options.placement ?? NOTHING_AGREED;
    const { rangeMin, rangeMax, rangeSize } = this.opts;
    if (
      !(rangeSize > 0 && rangeMax > rangeMin && rangeMax - rangeMin >= rangeSize) ||
      rangeMax > UINT32_MAX
    ) {
      throw new IdMapError(
        'INVALID_CONFIG',
        `invalid ID-mapping range: min ${rangeMin}, max ${rangeMax}, size ${rangeSize} (SSSD refuses these too)`,
      );
    }
    this.maxSlices = Math.floor((rangeMax - rangeMin) / rangeSize);
    if (this.opts.defaultDomainSid !== undefined) {
      if (!isDomainSid(this.opts.defaultDomainSid)) {
        throw new IdMapError('SID_INVALID', `not a domain SID: ${this.opts.defaultDomainSid}`);
      }
      this.addDomain(
        this.opts.defaultDomainName ?? this.opts.defaultDomainSid,
        this.opts.defaultDomainSid,
        0,
      );
    }
  }

  /** Maps an object SID (user or group) to its POSIX id. Throws IdMapError when SSSD could not map it either. */
  map(sid: string): IdMapping {
    if (sid.startsWith('S-1-5-32-'))
      throw new IdMapError('BUILTIN_SID', `${sid} is a built-in SID; SSSD does not map it`);
    const parts = splitObjectSid(sid);
    if (parts === undefined) throw new IdMapError('SID_INVALID', `${sid} is not a domain SID plus a RID`);
    const { domainSid, rid } = parts;
    let found = this.lookup(domainSid, rid);
    if (found === undefined) {
      if (!this.domains.some((d) => d.sid === domainSid)) {
        // First sight of this domain: SSSD names it by its SID and hashes it into a slice.
        this.addDomain(domainSid, domainSid, undefined);
        found = this.lookup(domainSid, rid);
      }
      found ??= this.addSecondaryFor(domainSid, rid);
    }
    return { sid, domainSid, rid, ...found };
  }

  private primaryOf(domainSid: string): MappedDomain | undefined {
    return this.domains.findLast((d) => d.sid === domainSid);
  }

  private lookup(domainSid: string, rid: number): Omit<IdMapping, 'sid' | 'domainSid' | 'rid'> | undefined {
    for (const domain of this.domains) {
      if (domain.sid !== domainSid) continue;
      const id = idInRange(domain.range, rid);
      if (id !== undefined)
        return { id, slice: this.sliceOf(domain.range), secondary: domain.range.firstRid !== 0 };
    }
    return undefined;
  }

  private sliceOf(range: Range): number {
    return (range.min - this.opts.rangeMin) / this.opts.rangeSize;
  }

  /** sss_idmap_calculate_range: the hashed (or given) slice, moved past slices already in use. */
  private calculateRange(
    name: string,
    explicitSlice: number | undefined,
  ): { slice: number; min: number; max: number } {
    const { rangeMin, rangeSize } = this.opts;
    let slice: number;
    if (explicitSlice !== undefined) {
      slice = explicitSlice;
    } else {
      const origin = this.opts.autoridCompat ? 0 : murmurhash3(name) % this.maxSlices;
      slice = origin;
      for (;;) {
        const min = rangeSize * slice + rangeMin;
        const max = min + rangeSize - 1;
        if (!this.domains.some((d) => overlaps(d.range, min, max))) break;
        slice = slice + 1 >= this.maxSlices ? 0 : slice + 1;
        if (slice === origin) {
          throw new IdMapError('OUT_OF_SLICES', `no free ID-mapping slice is left for ${name}`);
        }
      }
    }
    const min = rangeSize * slice + rangeMin;
    return { slice, min, max: min + rangeSize - 1 };
  }

  /** The slice a range starts from: its hash, or 0 in autorid compatibility mode. */
  originOf(rangeId: string): number {
    return this.opts.autoridCompat ? 0 : murmurhash3(rangeId) % this.maxSlices;
  }

  private bounds(slice: number) {
    const min = this.opts.rangeSize * slice + this.opts.rangeMin;
    return { slice, min, max: min + this.opts.rangeSize - 1 };
  }

  /**
   * A range's slice without lookup order: agreed, or its own, or (without a shared tier) past the
   * ranges in `block` only — the domain's own, laid out in a fixed order. Anything else refuses.
   */
  private place(book: SliceBook, rangeId: string, block: readonly Range[]) {
    const agreed = book.agreed(rangeId);
    if (agreed === -1)
      throw new IdMapError('OUT_OF_SLICES', `no free ID-mapping slice is left for ${rangeId}`);
    if (agreed !== undefined) return this.bounds(agreed);
    const origin = this.originOf(rangeId);
    if (book.shared) throw new SliceClaimNeeded([{ rangeId, origin }]);
    let slice = origin;
    for (;;) {
      const r = this.bounds(slice);
      if (block.some((b) => overlaps(b, r.min, r.max))) {
        slice = slice + 1 >= this.maxSlices ? 0 : slice + 1;
        if (slice === origin)
          throw new IdMapError('OUT_OF_SLICES', `no free ID-mapping slice is left for ${rangeId}`);
        continue;
      }
      const taken = this.domains.find((d) => overlaps(d.range, r.min, r.max));
      const holder = taken === undefined ? book.pinnedTo(slice) : (taken.range.rangeId ?? taken.sid);
      if (holder !== undefined && holder !== rangeId) {
        throw new IdMapError(
          'COLLISION',
          `ID-mapping slice ${slice} of ${rangeId} is taken by ${holder}; SSSD would move it to the next free slice, which depends on the order the domains are seen in, so idmount refuses: pin a free slice for it on every replica with the AD source's idMapping.slices ("${rangeId}": <slice>) and the same ldap_idmap settings in sssd.conf, or configure cache.shared so the replicas agree one`,
        );
      }
      return r;
    }
  }

  /** sdap_idmap_add_domain + sss_idmap_add_auto_domain_ex. */
  private addDomain(name: string, sid: string, explicitSlice: number | undefined): void {
    if (this.placement !== 'first-seen') {
      this.addAgreedDomain(this.placement, name, sid, explicitSlice);
      return;
    }
    const { slice, min, max } = this.calculateRange(sid, explicitSlice);
    if (max > this.opts.rangeMax) {
      throw new IdMapError('INVALID_CONFIG', `slice ${slice} for ${sid} ends above ldap_idmap_range_max`);
    }
    const domain: MappedDomain = {
      name,
      sid,
      range: { min, max, firstRid: 0 },
      helpers: [],
      autoAddRanges: false,
      slice,
    };
    this.register(domain);
    if (this.opts.helperTableSize === 0) return;
    const helpers: Range[] = [];
    try {
      let firstRid = this.opts.rangeSize;
      for (let i = 0; i < this.opts.helperTableSize; i++) {
        const rangeId = `${sid}-${firstRid}`;
        const r = this.calculateRange(rangeId, undefined);
        helpers.push({ min: r.min, max: r.max, firstRid, rangeId });
        firstRid += this.opts.rangeSize;
      }
    } catch (err) {
      // Running out of slices for secondary ranges is not fatal in SSSD: the domain keeps its primary slice.
      if (err instanceof IdMapError && err.reason === 'OUT_OF_SLICES') return;
      throw err;
    }
    domain.helpers = helpers;
    domain.autoAddRanges = true;
  }

  /** addDomain with slices placed by `place` (agreed, or refused), never by what was seen before. */
  private addAgreedDomain(book: SliceBook, name: string, sid: string, explicitSlice: number | undefined) {
    const helperIds = Array.from(
      { length: this.opts.helperTableSize },
      (_, i) => `${sid}-${(i + 1) * this.opts.rangeSize}`,
    );
    if (book.shared) {
      // Every range the domain starts with is claimed in one go, in SSSD's order.
      const ids = explicitSlice === undefined ? [sid, ...helperIds] : helperIds;
      const needed = ids.filter((id) => book.agreed(id) === undefined);
      if (needed.length > 0)
        throw new SliceClaimNeeded(needed.map((rangeId) => ({ rangeId, origin: this.originOf(rangeId) })));
    }
    const primary = explicitSlice === undefined ? this.place(book, sid, []) : this.bounds(explicitSlice);
    if (primary.max > this.opts.rangeMax) {
      throw new IdMapError(
        'INVALID_CONFIG',
        `slice ${primary.slice} for ${sid} ends above ldap_idmap_range_max`,
      );
    }
    const domain: MappedDomain = {
      name,
      sid,
      range: { min: primary.min, max: primary.max, firstRid: 0 },
      helpers: [],
      autoAddRanges: this.opts.helperTableSize > 0,
      slice: primary.slice,
    };
    this.register(domain);
    const block: Range[] = [domain.range];
    for (const [i, rangeId] of helperIds.entries()) {
      try {
        const r = this.place(book, rangeId, block);
        const helper = { min: r.min, max: r.max, firstRid: (i + 1) * this.opts.rangeSize, rangeId };
        block.push(helper);
        domain.helpers.push(helper);
      } catch (err) {
        if (!(err instanceof IdMapError)) throw err;
        // As in SSSD, no helper slice left means no secondary slices at all; a refused one is
        // skipped, and a RID in its range gets the refusal (with the key to pin) when it is mapped.
        if (err.reason === 'OUT_OF_SLICES') {
          domain.helpers = [];
          domain.autoAddRanges = false;
          return;
        }
      }
    }
  }

  /** sss_idmap_add_domain_ex's collision check, then prepend (SSSD's list order). */
  private register(domain: MappedDomain): void {
    for (const other of this.domains) {
      const rangesOverlap =
        (domain.range.min >= other.range.min && domain.range.min <= other.range.max) ||
        (domain.range.max >= other.range.min && domain.range.max <= other.range.max);
      const namesEqual = domain.name.toLowerCase() === other.name.toLowerCase();
      const sidsEqual = domain.sid.toLowerCase() === other.sid.toLowerCase();
      const ridsOverlap =
        namesEqual &&
        sidsEqual &&
        domain.range.firstRid >= other.range.firstRid &&
        domain.range.firstRid <= other.range.firstRid + (other.range.max - other.range.min);
      if (rangesOverlap || namesEqual !== sidsEqual || ridsOverlap) {
        throw new IdMapError(
          'COLLISION',
          `ID-mapping range ${domain.range.min}-${domain.range.max} for ${domain.sid} collides with ${other.sid} (${other.range.min}-${other.range.max}); SSSD cannot map it either`,
        );
      }
    }
    this.domains.unshift(domain);
  }

  /** add_dom_for_sid: a RID beyond every registered range of its domain gets a secondary slice. */
  private addSecondaryFor(domainSid: string, rid: number): Omit<IdMapping, 'sid' | 'domainSid' | 'rid'> {
    // SSSD uses the last matching entry in list order: the domain's first (primary) entry.
    const owner = this.primaryOf(domainSid) as MappedDomain;
    if (!owner.autoAddRanges) {
      throw new IdMapError(
        'NO_RANGE',
        `RID ${rid} of ${domainSid} is beyond ldap_idmap_range_size and no secondary slices are available`,
      );
    }
    const firstRid = Math.floor(rid / this.opts.rangeSize) * this.opts.rangeSize;
    const rangeId = `${domainSid}-${firstRid}`;
    const helper = owner.helpers.find((h) => h.rangeId === rangeId);
    const placed = (): { min: number; max: number } =>
      this.placement === 'first-seen'
        ? this.calculateRange(rangeId, undefined)
        : this.place(this.placement, rangeId, []);
    const range: Range = helper ?? { ...pick(placed()), firstRid, rangeId };
    const spawned: MappedDomain = {
      name: owner.name,
      sid: owner.sid,
      range,
      helpers: owner.helpers,
      autoAddRanges: owner.autoAddRanges,
      slice: this.sliceOf(range),
    };
    this.register(spawned);
    const id = idInRange(range, rid) as number;
    return { id, slice: spawned.slice, secondary: true };
  }
}

const pick = (r: { min: number; max: number }) => ({ min: r.min, max: r.max });

/** libsss_idmap's check_overlap, kept literally (it is what decides the collision rule). */
function overlaps(range: Range, min: number, max: number): boolean {
  return (
    (range.min <= min && range.max >= max) ||
    (range.min >= min && range.min <= max) ||
    (range.max >= min && range.max <= max)
  );
}

function idInRange(range: Range, rid: number): number | undefined {
  if (rid < range.firstRid || UINT32_MAX - range.min <= rid - range.firstRid) return undefined;
  const id = range.min + (rid - range.firstRid);
  return id <= range.max ? id : undefined;
}
