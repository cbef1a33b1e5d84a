// The cache rules in front of the chain: positive and negative TTLs, refresh-ahead, single-flight
// per name (100 concurrent misses for one user are one directory round trip), and stale-if-error
// while a source is down. What is derived from an identity (the spawn plan's body) is computed once
// per cache fill by `derive` and kept for the `planEntries` most recently used users, so a cached
// spawn is two map lookups and a write.
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { IdmountError, userNotFound } from '../../errors.js';
import type { Chain, LookupResult, SourceAttempt } from '../chain.js';
import type { Identity } from '../types.js';
import { foldName } from '../values.js';
import type { CacheConfig } from './config.js';
import { internAttempts, internOrigin, type Origin, pack, unpack } from './packing.js';
import type { IdentityStore, StoredEntry } from './store.js';

export type CacheState = 'hit' | 'miss' | 'stale' | 'refresh';

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
}

export interface ResolverOptions<D> {
  chain: Chain;
  store: IdentityStore;
  cache: CacheConfig;
  derive: (identity: Identity) => D;
  log: Logger;
  events?: ResolverEvents | undefined;
  now?: (() => number) | undefined;
}

type Found = StoredEntry & { kind: 'found' };

/** A lookup's entry, with what was derived from it (a miss answers with both). */
type Fill<D> = { entry: StoredEntry; derived?: D; identityName?: string };

export function createResolver<D>(options: ResolverOptions<D>) {
  const { chain, store, cache: limits, derive, log, events } = options;
  const now = options.now ?? Date.now;
  const derivations = new LRUCache<string, { fetchedAt: number; value: D }>({ max: limits.planEntries });
  const inFlight = new Map<string, Promise<Fill<D>>>();
  // The cache key of a requested name: folded when every source folds case (values.foldName).
  const keyOf = chain.foldsCase ? foldName : (name: string) => name;
  // Keys whose identity is named otherwise (another case, a second uid value of the entry), by the
  // identity's folded name: evicting a user evicts every key that answers with that user.
  const aliases = new LRUCache<string, Set<string>>({ max: limits.maxEntries });
  const remember = (key: string, identityName: string) => {
    if (key === identityName) return;
    const folded = foldName(identityName);
    let keys = aliases.get(folded);
    if (keys === undefined) {
      keys = new Set();
      aliases.set(folded, keys);
    }
    keys.add(key);
  };

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

  async function fill(name: string): Promise<Fill<D>> {
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
      return { entry: { kind: 'missing', attempts, fetchedAt: now() } };
    }
    events?.lookup('found', elapsed());
    const entry: Found = {
      kind: 'found',
      identity: pack(identity),
      origin: internOrigin(identity.origin),
      attempts,
      fetchedAt: now(),
    };
    return { entry, derived: derivedFor(name, entry, identity), identityName: identity.name };
  }

  function fetchOnce(name: string): Promise<Fill<D>> {
    let pending = inFlight.get(name);
    if (pending === undefined) {
      pending = fill(name).then(
        (filled) => {
          inFlight.delete(name);
          store.set(name, filled.entry);
          if (filled.identityName !== undefined) remember(name, filled.identityName);
          return filled;
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
      const filled = await fetchOnce(name);
      return answer(filled.entry, name, 'miss', false, filled.derived);
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
     * Forgets a user (DELETE /users/{name}/cache) under every key that answers with it: the name as
     * given and folded, other spellings and the entry's other names; true when something was cached.
     */
    evict: (name: string) => {
      const keys = new Set([name, keyOf(name), ...(aliases.get(foldName(name)) ?? [])]);
      aliases.delete(foldName(name));
      let evicted = false;
      for (const key of keys) {
        derivations.delete(key);
        if (store.delete(key)) evicted = true;
      }
      return evicted;
    },
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
