// The cache rules in front of the chain: positive and negative TTLs, refresh-ahead, single-flight
// per name (100 concurrent misses for one user are one directory round trip), and stale-if-error
// while a source is down. What is derived from an identity (the spawn plan's body) is computed once
// per cache fill by `derive` and kept for the `planEntries` most recently used users, so a cached
// spawn is two map lookups and a write. With a shared tier (other replicas' entries), a local miss
// reads it before the directory, and an entry from it is used only after `derive` accepted it.
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { IdmountError, userNotFound } from '../../errors.js';
import type { Chain, LookupResult, SourceAttempt } from '../chain.js';
import type { Identity } from '../types.js';
import type { CacheConfig } from './config.js';
import { createKeyBook } from './keys.js';
import { internAttempts, internOrigin, type Origin, pack, unpack } from './packing.js';
import type { IdentityStore, SharedStore, StoredEntry } from './store.js';

/** `shared`: a local miss answered by the shared tier (another replica asked the directory). */
export type CacheState = 'hit' | 'miss' | 'stale' | 'refresh' | 'shared';

export interface Resolution<D> {
  /** Unpacked on first access: the cached-spawn path never needs it. */
  readonly identity: Identity;
  readonly derived: D;
  readonly attempts: readonly SourceAttempt[];
  readonly cache: CacheState;
  readonly stale: boolean;
}

export interface ResolverEvents {
  cache(state: CacheState | 'negative'): void;
  lookup(result: LookupResult, seconds: number): void;
  /** An entry from the shared tier was dropped: stamped in the future, or its plan was refused. */
  sharedRejected?(reason: 'clock' | 'plan'): void;
}

export interface ResolverOptions<D> {
  chain: Chain;
  store: IdentityStore;
  cache: CacheConfig;
  derive: (identity: Identity) => D;
  log: Logger;
  events?: ResolverEvents | undefined;
  now?: (() => number) | undefined;
  /** The tier all replicas share, read on a local miss before the directory. */
  shared?: SharedStore | undefined;
  /** Whether a derivation may be served from a shared entry (and shared): a refused plan is not. */
  usable?: ((derived: D) => boolean) | undefined;
}

type Found = StoredEntry & { kind: 'found' };

/** A lookup's entry, with what was derived from it (a miss answers with both), and who gave it. */
type Fill<D> = { entry: StoredEntry; derived?: D; from: 'directory' | 'shared'; identityName?: string };

/** A fill under way; `forgotten` once the user was evicted meanwhile, so its answer is not kept. */
type Flight<D> = { promise: Promise<Fill<D>>; forgotten: boolean };

/** How far ahead of this replica's clock another replica's may be; an entry beyond it is refused. */
const CLOCK_SKEW_MS = 5_000;

export function createResolver<D>(options: ResolverOptions<D>) {
  const { chain, store, cache: limits, derive, log, events, shared } = options;
  const usable = options.usable ?? (() => true);
  const now = options.now ?? Date.now;
  const derivations = new LRUCache<string, { fetchedAt: number; value: D }>({ max: limits.planEntries });
  const inFlight = new Map<string, Flight<D>>();
  const keys = createKeyBook({ foldsCase: chain.foldsCase, maxEntries: limits.maxEntries });
  const { keyOf } = keys;

  /** The derivation of a cached identity: kept, or rebuilt from it (`identity` when just fetched). */
  function derivedFor(name: string, entry: Found, identity?: Identity): D {
    if (identity === undefined) {
      const memo = derivations.get(name);
      if (memo !== undefined && memo.fetchedAt === entry.fetchedAt) return memo.value;
    }
    const value = derive(identity ?? unpack(entry.identity, entry.origin));
    derivations.set(name, { fetchedAt: entry.fetchedAt, value });
    return value;
  }

  const refuse = (name: string, reason: 'clock' | 'plan', detail: unknown): undefined => {
    events?.sharedRejected?.(reason);
    log.warn({ user: name, reason, detail }, 'shared cache entry refused; asking the directory');
    return undefined;
  };

  /**
   * The shared tier's entry when it may answer instead of the directory (younger than `freshFor`),
   * after the same checks as a directory answer. One too old to answer with but within the stale
   * horizon is kept locally: a directory outage may need it (last-known-good across restarts).
   */
  async function fromShared(
    shared: SharedStore,
    name: string,
    freshFor: number,
  ): Promise<Fill<D> | undefined> {
    const entry = await shared.get(name);
    if (entry === undefined) return undefined;
    if (entry.fetchedAt > now() + CLOCK_SKEW_MS) return refuse(name, 'clock', entry.fetchedAt);
    const fresh = age(entry) < (entry.kind === 'found' ? freshFor : limits.negativeTtl);
    if (entry.kind === 'missing') return fresh ? { entry, from: 'shared' } : undefined;
    if (!fresh && age(entry) >= limits.ttl + limits.staleIfError) return undefined;
    let derived: D;
    try {
      derived = derive(unpack(entry.identity, entry.origin));
    } catch (err) {
      return refuse(name, 'plan', (err as Error).message);
    }
    if (!usable(derived)) return refuse(name, 'plan', (derived as { error?: unknown }).error ?? derived);
    if (fresh) {
      derivations.set(name, { fetchedAt: entry.fetchedAt, value: derived });
      return { entry, derived, from: 'shared' };
    }
    const local = store.get(name);
    if (local === undefined || local.fetchedAt < entry.fetchedAt) {
      store.set(name, entry);
      derivations.set(name, { fetchedAt: entry.fetchedAt, value: derived });
    }
    return undefined;
  }

  async function fill(name: string, freshFor: number): Promise<Fill<D>> {
    const remote = shared === undefined ? undefined : await fromShared(shared, name, freshFor);
    if (remote !== undefined) return remote;
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    let answer: Awaited<ReturnType<Chain['ask']>>;
    try {
      answer = await chain.ask(name);
    } catch (err) {
      const code = err instanceof IdmountError ? err.code : undefined;
      events?.lookup(code === 'SOURCE_UNAVAILABLE' ? 'unavailable' : 'invalid', elapsed());
      throw err;
    }
    const attempts = internAttempts(answer.attempts);
    const { identity } = answer;
    if (identity === null) {
      events?.lookup('not_found', elapsed());
      return { entry: { kind: 'missing', attempts, fetchedAt: now() }, from: 'directory' };
    }
    events?.lookup('found', elapsed());
    const entry: Found = {
      kind: 'found',
      identity: pack(identity),
      origin: internOrigin(identity.origin),
      attempts,
      fetchedAt: now(),
    };
    return {
      entry,
      derived: derivedFor(name, entry, identity),
      from: 'directory',
      identityName: identity.name,
    };
  }

  /** Keeps a fill locally and, when the directory gave it, for the other replicas. */
  function keep(name: string, filled: Fill<D>) {
    store.set(name, filled.entry);
    if (filled.identityName !== undefined) keys.remember(name, filled.identityName);
    if (shared === undefined || filled.from === 'shared') return;
    if (filled.entry.kind === 'missing' || usable(filled.derived as D)) shared.set(name, filled.entry);
  }

  /** One fill per name at a time; `freshFor` is how young a shared entry must be to answer it. */
  function fetchOnce(name: string, freshFor = limits.ttl): Promise<Fill<D>> {
    const pending = inFlight.get(name);
    if (pending !== undefined) return pending.promise;
    const flight: Flight<D> = { forgotten: false, promise: undefined as unknown as Promise<Fill<D>> };
    const done = () => {
      if (inFlight.get(name) === flight) inFlight.delete(name);
    };
    flight.promise = fill(name, freshFor).then(
      (filled) => {
        done();
        if (!flight.forgotten) keep(name, filled);
        return filled;
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
    inFlight.set(name, flight);
    return flight.promise;
  }

  /** Drops a user from this replica, including a fill under way (its answer predates the eviction). */
  function forgetKey(key: string): boolean {
    const flight = inFlight.get(key);
    if (flight !== undefined) {
      flight.forgotten = true;
      inFlight.delete(key);
    }
    derivations.delete(key);
    return store.delete(key);
  }

  /** Forgets a user under every key that answers with it (its other spellings and names too). */
  function forget(name: string): boolean {
    let forgotten = false;
    for (const key of keys.takeKeys(name)) if (forgetKey(key)) forgotten = true;
    return forgotten;
  }

  const age = (entry: StoredEntry) => now() - entry.fetchedAt;

  function answer(entry: StoredEntry, name: string, cache: CacheState, stale = false, derived?: D) {
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
    const entry = store.get(name);
    if (entry === undefined) return undefined;
    const fresh = entry.kind === 'found' ? limits.ttl : limits.negativeTtl;
    if (age(entry) >= fresh) return undefined;
    if (
      entry.kind === 'found' &&
      limits.refreshAhead > 0 &&
      age(entry) >= fresh * limits.refreshAhead &&
      !inFlight.has(name)
    ) {
      // A refresh takes another replica's entry only when it is young enough not to need one itself.
      fetchOnce(name, fresh * limits.refreshAhead).catch((err) =>
        log.warn({ err, user: name }, 'refresh-ahead failed; serving cached identity'),
      );
      return answer(entry, name, 'refresh');
    }
    return answer(entry, name, 'hit');
  }

  /** Asks the directory (single-flight), falling back to a stale identity while a source is down. */
  async function lookup(name: string): Promise<Resolution<D>> {
    try {
      const filled = await fetchOnce(name);
      return answer(filled.entry, name, filled.from === 'shared' ? 'shared' : 'miss', false, filled.derived);
    } catch (err) {
      const retained = store.get(name);
      const servable = retained !== undefined && age(retained) < limits.ttl + limits.staleIfError;
      if (
        err instanceof IdmountError &&
        err.code === 'SOURCE_UNAVAILABLE' &&
        retained?.kind === 'found' &&
        servable
      ) {
        log.warn({ user: name, source: err.extras.source }, 'source unavailable; serving a stale identity');
        return answer(retained, name, 'stale', true);
      }
      if (retained !== undefined && !servable) store.delete(name);
      throw err;
    }
  }

  return {
    /** The cached answer when there is one, else the directory's. */
    resolve: async (name: string): Promise<Resolution<D>> => {
      const key = keyOf(name);
      return cached(key) ?? lookup(key);
    },
    cached: (name: string) => cached(keyOf(name)),
    lookup: (name: string) => lookup(keyOf(name)),
    /**
     * Forgets a user everywhere (DELETE /users/{name}/cache): here, in the shared tier, and (through
     * it) on every replica. `evicted`: something was cached; `shared`: the tier was reached.
     */
    async evict(name: string): Promise<{ evicted: boolean; shared: boolean }> {
      const local = forget(name);
      if (shared === undefined) return { evicted: local, shared: false };
      const remote = await shared.delete(keyOf(name));
      return { evicted: local || remote.removed, shared: remote.reached };
    },
    /** Forgets a user on this replica only (another replica's eviction, told through the tier). */
    forget,
    size: () => store.size(),
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
    readonly attempts: readonly SourceAttempt[],
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
