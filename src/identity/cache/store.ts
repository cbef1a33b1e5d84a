// Where the cache keeps its entries: the store interface the cache rules (./resolver.ts) use, and
// the in-process store behind it. An entry is packed (./packing.ts) and carries its fetch time;
// freshness is the rules' business, not the store's. The shared tier (./shared-tier.ts) holds the
// same entries for all replicas behind `SharedStore`; it is asynchronous and may fail, so it is a
// second interface rather than another IdentityStore.
import { LRUCache } from 'lru-cache';
import type { SourceAttempt } from '../chain.js';
import type { Origin } from './packing.js';

export type StoredEntry =
  | {
      kind: 'found';
      /** The identity, packed. */
      identity: string;
      origin: Origin;
      attempts: readonly SourceAttempt[];
      fetchedAt: number;
    }
  | { kind: 'missing'; attempts: readonly SourceAttempt[]; fetchedAt: number };

export interface IdentityStore {
  get(key: string): StoredEntry | undefined;
  set(key: string, entry: StoredEntry): void;
  /** True when something was stored. */
  delete(key: string): boolean;
  size(): number;
}

/**
 * The store every replica shares, behind each replica's own. It never throws and never waits
 * longer than its command timeout: an entry it cannot read is simply not there.
 */
export interface SharedStore {
  /** The entry another replica (or this one, before a restart) stored, schema-checked. */
  get(key: string): Promise<StoredEntry | undefined>;
  /** Stores an entry for the others, in the background. */
  set(key: string, entry: StoredEntry): void;
  /** Removes the entry and tells every replica to drop theirs; `reached` is false when it could not. */
  delete(key: string): Promise<{ removed: boolean; reached: boolean }>;
}

/**
 * The in-process store: least recently used entries go first beyond their bound. Identities and
 * "no such user" answers are kept apart, each with its own bound, so a flood of unknown names can
 * never push a known identity out (and with it the stale copy an outage would need).
 */
export function createMemoryStore(options: {
  maxEntries: number;
  maxNegativeEntries: number;
}): IdentityStore {
  // Bounded by count through maxSize (each entry counts 1) rather than `max`: with `max`, lru-cache
  // allocates its index arrays for all entries up front (about 35 ms of every cold start at 200 000);
  // this way they grow with the cache.
  const bounded = <V extends object>(max: number) =>
    new LRUCache<string, V>({ maxSize: max, sizeCalculation: () => 1 });
  const found = bounded<StoredEntry & { kind: 'found' }>(options.maxEntries);
  const missing = bounded<StoredEntry & { kind: 'missing' }>(options.maxNegativeEntries);
  return {
    get: (key) => found.get(key) ?? missing.get(key),
    set: (key, entry) => {
      // A name is in one of the two at most: the newer answer replaces the older one.
      if (entry.kind === 'found') {
        missing.delete(key);
        found.set(key, entry);
      } else {
        found.delete(key);
        missing.set(key, entry);
      }
    },
    delete: (key) => {
      const had = found.delete(key);
      return missing.delete(key) || had;
    },
    size: () => found.size,
  };
}
