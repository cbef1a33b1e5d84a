// IdentityResolver: asks the ordered source chain and owns the cache — positive and negative
// TTLs, refresh-ahead, single-flight per name, and stale-if-error when a source is down.
// Whatever is derived from an identity (the spawn plan's JSON) is computed once per cache fill by
// `derive` and kept for the hottest `cache.planEntries` users, so a cached spawn is two map
// lookups and a write. Identities are stored packed (see `pack`): one short JSON array per user,
// with the field names, the per-field origin and the attempt list shared — a string costs a
// fraction of the object graph it encodes, which is what lets 100 000 users fit in one replica.
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { directoryEntryInvalid, IdmountError, userNotFound } from '../errors.js';
import type { DirectoryRecord, Identity, IdentitySource } from './types.js';

export type CacheState = 'hit' | 'miss' | 'stale' | 'refresh';

export interface SourceAttempt {
  source: string;
  result: string;
}

type Entry =
  | { kind: 'found'; identity: string; origin: Origin; attempts: SourceAttempt[]; fetchedAt: number }
  | { kind: 'missing'; attempts: SourceAttempt[]; fetchedAt: number };

export interface Resolution<D> {
  /** Parsed on first access: the cached-spawn path never needs it. */
  readonly identity: Identity;
  readonly derived: D;
  readonly attempts: SourceAttempt[];
  readonly cache: CacheState;
  readonly stale: boolean;
}

export interface ResolverEvents {
  cache(state: CacheState | 'negative'): void;
  lookup(result: 'found' | 'not_found' | 'invalid' | 'unavailable', seconds: number): void;
}

export interface ResolverOptions<D> {
  sources: IdentitySource[];
  cache: Config['cache'];
  merge?: Config['merge'];
  derive: (identity: Identity) => D;
  log: Logger;
  events?: ResolverEvents;
  now?: () => number;
}

const FIELDS = ['uid', 'gid', 'home', 'gecos', 'groups'] as const;

type Origin = Identity['origin'];

/** A lookup's result for the cache, with what was derived from it (the miss answers with both). */
type Fill<D> = { entry: Entry; derived?: D };

/** What the chain found, and what each source it asked answered (shown in explain traces). */
type ChainAnswer = { identity: Identity | null; attempts: SourceAttempt[] };

/**
 * An identity as the cache keeps it: `[name, uid, gid, home, gecos, shell, [group, gid, ...],
 * primaryGroupName, notes]` as JSON (absent fields as null), its origin kept beside it and shared.
 */
function pack(identity: Identity): string {
  const groups: (string | number)[] = [];
  for (const g of identity.groups) groups.push(g.name, g.gid);
  return JSON.stringify([
    identity.name,
    identity.uid,
    identity.gid,
    identity.home ?? null,
    identity.gecos ?? null,
    identity.shell ?? null,
    groups,
    identity.primaryGroupName ?? null,
    identity.notes,
  ]);
}

type Packed = [
  string,
  number,
  number,
  string | null,
  string | null,
  string | null,
  (string | number)[],
  string | null,
  string[],
];

function unpack(json: string, origin: Origin): Identity {
  const [name, uid, gid, home, gecos, shell, flat, primaryGroupName, notes] = JSON.parse(json) as Packed;
  const groups: Identity['groups'] = [];
  for (let i = 0; i < flat.length; i += 2)
    groups.push({ name: flat[i] as string, gid: flat[i + 1] as number });
  const identity: Identity = { name, uid, gid, groups, origin: { ...origin }, notes };
  if (home !== null) identity.home = home;
  if (gecos !== null) identity.gecos = gecos;
  if (shell !== null) identity.shell = shell;
  if (primaryGroupName !== null) identity.primaryGroupName = primaryGroupName;
  return identity;
}

export function createResolver<D>(options: ResolverOptions<D>) {
  const { sources, cache: limits, derive, log } = options;
  const now = options.now ?? Date.now;
  const events = options.events;
  // Bounded by count through maxSize (each entry counts 1) rather than `max`: with `max`, lru-cache
  // allocates its index arrays for all 200 000 entries up front (about 35 ms of every cold start
  // here); this way they grow with the cache.
  const entries = new LRUCache<string, Entry>({ maxSize: limits.maxEntries, sizeCalculation: () => 1 });
  const derivations = new LRUCache<string, { fetchedAt: number; value: D }>({ max: limits.planEntries });
  const inFlight = new Map<string, Promise<Fill<D>>>();
  const merge = options.merge;
  // Most users' attempt lists ("found in X") and per-field origins ("every field from X") are
  // identical: 100 000 users share a few frozen copies (at most 1000 distinct ones are kept).
  const shared = <T extends object>(store: Map<string, T>, key: string, value: T): T => {
    let kept = store.get(key);
    if (kept === undefined) {
      kept = Object.freeze(value);
      if (store.size < 1000) store.set(key, kept);
    }
    return kept;
  };
  const attemptLists = new Map<string, SourceAttempt[]>();
  const intern = (attempts: SourceAttempt[]) => shared(attemptLists, JSON.stringify(attempts), attempts);
  const origins = new Map<string, Origin>();
  const internOrigin = (origin: Origin) =>
    shared(
      origins,
      `${origin.uid}\0${origin.gid}\0${origin.home}\0${origin.gecos}\0${origin.groups}`,
      origin,
    );

  /** The derivation of a cached identity: kept, or rebuilt from it (`identity` when just fetched). */
  function derivedFor(name: string, entry: Entry & { kind: 'found' }, identity?: Identity): D {
    if (identity === undefined) {
      const memo = derivations.get(name);
      if (memo !== undefined && memo.fetchedAt === entry.fetchedAt) return memo.value;
    }
    const value = derive(identity ?? unpack(entry.identity, entry.origin));
    derivations.set(name, { fetchedAt: entry.fetchedAt, value });
    return value;
  }

  // The attempt lists the chain can end with when it is not merged, built once: "not found" in
  // every source before the one that knows the user, or in all of them.
  const notFound = (s: IdentitySource): SourceAttempt => ({ source: s.name, result: 'not found' });
  const foundAt = sources.map((source, i) =>
    Object.freeze([...sources.slice(0, i).map(notFound), { source: source.name, result: 'found' }]),
  );
  const foundNowhere = Object.freeze(sources.map(notFound));
  // ...and the per-field origins of an identity one source gave: uid and gid always, home, gecos
  // and groups when the source has them. Eight variants per source, each made once and shared.
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
      origin = internOrigin({
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

  async function askChain(name: string): Promise<Fill<D>> {
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    try {
      const chain = merge === undefined ? await firstKnown(name) : await merged(name);
      if (chain.identity === null) {
        events?.lookup('not_found', elapsed());
        return { entry: { kind: 'missing', attempts: chain.attempts, fetchedAt: now() } };
      }
      const { identity } = chain;
      events?.lookup('found', elapsed());
      const entry = {
        kind: 'found' as const,
        identity: pack(identity),
        origin: identity.origin,
        attempts: chain.attempts,
        fetchedAt: now(),
      };
      return { entry, derived: derivedFor(name, entry, identity) };
    } catch (err) {
      const code = err instanceof IdmountError ? err.code : undefined;
      events?.lookup(code === 'SOURCE_UNAVAILABLE' ? 'unavailable' : 'invalid', elapsed());
      throw err;
    }
  }

  // The first source that knows the user answers. A source that cannot be asked stops the chain:
  // a later source might hold a different identity for the same name, and guessing is worse than 503.
  async function firstKnown(name: string): Promise<ChainAnswer> {
    for (let i = 0; i < sources.length; i++) {
      const source = sources[i] as IdentitySource;
      let record: DirectoryRecord | null;
      try {
        record = await source.lookup(name);
      } catch (err) {
        throw wrapUnexpected(err, source.name);
      }
      if (record !== null) {
        return {
          identity: complete(record, originFrom(i, record), source.name),
          attempts: foundAt[i] as SourceAttempt[],
        };
      }
    }
    return { identity: null, attempts: foundNowhere as SourceAttempt[] };
  }

  // Per-field merge: each field named in `merge` comes from that source; the others from the first
  // source (in order) that knows the user.
  async function merged(name: string): Promise<ChainAnswer> {
    const attempts: SourceAttempt[] = [];
    const outcome = (identity: Identity | null): ChainAnswer => ({ identity, attempts: intern(attempts) });
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
    if (failed !== undefined) throw wrapUnexpected((failed as PromiseRejectedResult).reason, 'chain');
    const first = sources.find((s) => records.has(s.name));
    if (first === undefined) return outcome(null);
    const origin: Record<string, string> = {};
    const combined: DirectoryRecord = { name: (records.get(first.name) as DirectoryRecord).name, notes: [] };
    for (const field of FIELDS) {
      const from = merge?.[field] ?? first.name;
      const record = records.get(from);
      if (record?.[field] === undefined) continue;
      origin[field] = from;
      (combined as unknown as Record<string, unknown>)[field] = record[field];
      if (field === 'gid') combined.primaryGroupName = record.primaryGroupName;
    }
    const uidFrom = merge?.uid ?? first.name;
    if (!records.has(uidFrom)) return outcome(null);
    combined.name = (records.get(uidFrom) as DirectoryRecord).name;
    combined.notes = [...records.values()].flatMap((r) => r.notes ?? []);
    // A field is named in `origin` exactly when `combined` has it.
    const fieldOrigins = internOrigin({
      uid: origin.uid,
      gid: origin.gid,
      home: origin.home,
      gecos: origin.gecos,
      groups: origin.groups,
    });
    return outcome(complete(combined, fieldOrigins, uidFrom));
  }

  /** The identity from a record and its (shared) per-field origin; uid and gid are required. */
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

  function fetchOnce(name: string): Promise<Fill<D>> {
    let pending = inFlight.get(name);
    if (pending === undefined) {
      pending = askChain(name).then(
        (fill) => {
          inFlight.delete(name);
          entries.set(name, fill.entry);
          return fill;
        },
        (err: unknown) => {
          inFlight.delete(name);
          throw err;
        },
      );
      inFlight.set(name, pending);
    }
    return pending;
  }

  const age = (entry: Entry) => now() - entry.fetchedAt;

  function answer(entry: Entry, name: string, cache: CacheState, stale = false, derived?: D): Resolution<D> {
    if (entry.kind === 'missing') {
      events?.cache('negative');
      throw userNotFound(name);
    }
    events?.cache(cache);
    return new CachedResolution(
      entry.identity,
      entry.origin,
      derived ?? derivedFor(name, entry),
      entry.attempts,
      cache,
      stale,
    );
  }

  /**
   * The answer from the cache alone, synchronously: a fresh identity (starting a refresh-ahead when
   * it is due), or USER_NOT_FOUND for a fresh negative entry; undefined when the directory must be
   * asked. The spawn path tries this first so a cache hit costs no promise.
   */
  function cached(name: string): Resolution<D> | undefined {
    const entry = entries.get(name);
    if (entry === undefined) return undefined;
    const fresh = entry.kind === 'found' ? limits.ttl : limits.negativeTtl;
    if (age(entry) >= fresh) return undefined;
    if (
      entry.kind === 'found' &&
      limits.refreshAhead > 0 &&
      age(entry) >= fresh * limits.refreshAhead &&
      !inFlight.has(name)
    ) {
      fetchOnce(name).catch((err) =>
        log.warn({ err, user: name }, 'refresh-ahead failed; serving cached identity'),
      );
      return answer(entry, name, 'refresh');
    }
    return answer(entry, name, 'hit');
  }

  /** Asks the directory (single-flight), falling back to a stale identity while a source is down. */
  async function lookup(name: string): Promise<Resolution<D>> {
    try {
      const fill = await fetchOnce(name);
      return answer(fill.entry, name, 'miss', false, fill.derived);
    } catch (err) {
      const retained = entries.get(name);
      if (
        err instanceof IdmountError &&
        err.code === 'SOURCE_UNAVAILABLE' &&
        retained?.kind === 'found' &&
        age(retained) < limits.ttl + limits.staleIfError
      ) {
        log.warn({ user: name, source: err.extras.source }, 'source unavailable; serving a stale identity');
        return answer(retained, name, 'stale', true);
      }
      if (retained !== undefined && age(retained) >= limits.ttl + limits.staleIfError) entries.delete(name);
      throw err;
    }
  }

  /** The cached answer when there is one, else the directory's. */
  async function resolve(name: string): Promise<Resolution<D>> {
    return cached(name) ?? lookup(name);
  }

  return {
    resolve,
    cached,
    lookup,
    /** Forgets a user (DELETE /users/{name}/cache); true when something was cached. */
    evict: (name: string) => {
      derivations.delete(name);
      return entries.delete(name);
    },
    size: () => entries.size,
    sources,
    async close() {
      await Promise.allSettled(sources.map((s) => s.close()));
    },
  };
}

export type Resolver<D> = ReturnType<typeof createResolver<D>>;

/** A class rather than an object literal with a getter: this is built on every cached spawn. */
class CachedResolution<D> implements Resolution<D> {
  #json: string;
  #origin: Origin;
  #identity: Identity | undefined;
  constructor(
    json: string,
    origin: Origin,
    readonly derived: D,
    readonly attempts: SourceAttempt[],
    readonly cache: CacheState,
    readonly stale: boolean,
  ) {
    this.#json = json;
    this.#origin = origin;
  }
  get identity(): Identity {
    this.#identity ??= unpack(this.#json, this.#origin);
    return this.#identity;
  }
}

/** Anything a source throws that is not ours is an outage of that source, never a 500 with details. */
function wrapUnexpected(err: unknown, source: string): IdmountError {
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
