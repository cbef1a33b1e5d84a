// The source chain: asks the ordered sources for a user and turns what they answer into one
// Identity, with what each source said (shown in explain traces). The first source that knows the
// user answers; with `merge`, each named field comes from its own source. Nothing is cached here.
import { directoryEntryInvalid, IdmountError } from '../errors.js';
import type { MergeConfig } from './config.js';
import type { DirectoryRecord, Identity, IdentitySource } from './types.js';

export interface SourceAttempt {
  source: string;
  result: string;
}

/** What the chain found, and what each source it asked answered. */
export interface ChainAnswer {
  identity: Identity | null;
  attempts: readonly SourceAttempt[];
}

export type LookupResult = 'found' | 'not_found' | 'invalid' | 'unavailable';

type Origin = Identity['origin'];

const FIELDS = ['uid', 'gid', 'home', 'gecos', 'groups'] as const;

export function createChain(sources: readonly IdentitySource[], merge?: MergeConfig) {
  // The attempt lists an unmerged chain can end with, built once and shared by every identity:
  // "not found" in every source before the one that knows the user, or in all of them.
  const notFound = (s: IdentitySource): SourceAttempt => ({ source: s.name, result: 'not found' });
  const foundAt = sources.map((source, i) =>
    Object.freeze([...sources.slice(0, i).map(notFound), { source: source.name, result: 'found' }]),
  );
  const foundNowhere = Object.freeze(sources.map(notFound));
  // ...and the per-field origins of an identity one source gave (uid and gid always; home, gecos
  // and groups when the source has them): eight variants per source, each made once and shared.
  const sourceOrigins = sources.map(() => new Array<Origin | undefined>(8));
  const originFrom = (i: number, record: DirectoryRecord): Origin => {
    const present =
      (record.home === undefined ? 0 : 1) |
      (record.gecos === undefined ? 0 : 2) |
      (record.groups === undefined ? 0 : 4);
    const variants = sourceOrigins[i] as (Origin | undefined)[];
    let origin = variants[present];
    if (origin === undefined) {
      const from = (sources[i] as IdentitySource).name;
      origin = Object.freeze({
        uid: from,
        gid: from,
        home: present & 1 ? from : undefined,
        gecos: present & 2 ? from : undefined,
        groups: present & 4 ? from : undefined,
      });
      variants[present] = origin;
    }
    return origin;
  };

  // A source that cannot be asked stops the chain: a later source might hold a different identity
  // for the same name, and guessing is worse than 503.
  async function firstKnown(name: string): Promise<ChainAnswer> {
    for (let i = 0; i < sources.length; i++) {
      const source = sources[i] as IdentitySource;
      let record: DirectoryRecord | null;
      try {
        record = await source.lookup(name);
      } catch (err) {
        throw asOutage(err, source.name);
      }
      if (record !== null) {
        return { identity: complete(record, originFrom(i, record), source.name), attempts: foundAt[i] ?? [] };
      }
    }
    return { identity: null, attempts: foundNowhere };
  }

  // Per-field merge: each field named in `merge` comes from that source; the others from the first
  // source (in order) that knows the user. Every source is asked; any failure fails the lookup.
  async function merged(name: string): Promise<ChainAnswer> {
    const attempts: SourceAttempt[] = [];
    const results = await Promise.allSettled(sources.map((s) => s.lookup(name)));
    const records = new Map<string, DirectoryRecord>();
    results.forEach((result, i) => {
      const source = sources[i] as IdentitySource;
      if (result.status === 'rejected') {
        attempts.push({
          source: source.name,
          result: result.reason instanceof IdmountError ? result.reason.code : 'error',
        });
      } else {
        attempts.push({ source: source.name, result: result.value === null ? 'not found' : 'found' });
        if (result.value !== null) records.set(source.name, result.value);
      }
    });
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw asOutage((failed as PromiseRejectedResult).reason, 'chain');
    const first = sources.find((s) => records.has(s.name));
    const uidFrom = merge?.uid ?? first?.name;
    const uidRecord = uidFrom === undefined ? undefined : records.get(uidFrom);
    if (first === undefined || uidFrom === undefined || uidRecord === undefined) {
      return { identity: null, attempts };
    }
    const origin: Partial<Record<(typeof FIELDS)[number], string>> = {};
    const combined: DirectoryRecord = { name: uidRecord.name, notes: [] };
    for (const field of FIELDS) {
      const from = merge?.[field] ?? first.name;
      const record = records.get(from);
      if (record?.[field] === undefined) continue;
      origin[field] = from;
      (combined as unknown as Record<string, unknown>)[field] = record[field];
      if (field === 'gid') combined.primaryGroupName = record.primaryGroupName;
    }
    combined.notes = [...records.values()].flatMap((r) => r.notes ?? []);
    const fieldOrigins: Origin = {
      uid: origin.uid,
      gid: origin.gid,
      home: origin.home,
      gecos: origin.gecos,
      groups: origin.groups,
    };
    return { identity: complete(combined, fieldOrigins, uidFrom), attempts };
  }

  return {
    sources,
    /**
     * True when every source matches names case-insensitively: then `Alice` and `alice` are one
     * user and one cache key. With any case-sensitive source they may be two.
     */
    foldsCase: sources.length > 0 && sources.every((s) => s.foldsCase === true),
    ask: merge === undefined ? firstKnown : merged,
    async close() {
      await Promise.allSettled(sources.map((s) => s.close()));
    },
  };
}

export type Chain = ReturnType<typeof createChain>;

/** The identity from a record and its per-field origin; uid and gid are required. */
function complete(record: DirectoryRecord, origin: Origin, source: string): Identity {
  for (const field of ['uid', 'gid'] as const) {
    if (record[field] === undefined) {
      throw directoryEntryInvalid(source, `No source gave a ${field} for '${record.name}'.`, {
        attribute: field,
        user: record.name,
      });
    }
  }
  return {
    name: record.name,
    uid: record.uid as number,
    gid: record.gid as number,
    home: record.home,
    gecos: record.gecos,
    shell: record.shell,
    groups: record.groups ?? [],
    primaryGroupName: record.primaryGroupName,
    origin,
    notes: record.notes ?? [],
  };
}

/** Anything a source throws that is not ours is an outage of that source, never a 500 with details. */
function asOutage(err: unknown, source: string): IdmountError {
  if (err instanceof IdmountError) return err;
  return new IdmountError(
    'SOURCE_UNAVAILABLE',
    `The directory source '${source}' failed; try again shortly.`,
    {
      extras: { source },
      retryAfter: 5,
      cause: err,
    },
  );
}
