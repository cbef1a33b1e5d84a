// Where the cache keeps its entries: the store interface the cache rules (./resolver.ts) use, and
// the in-process store behind it. An entry is packed (./packing.ts) and carries its fetch time;
// freshness is the rules' business, not the store's. A shared store (one for all replicas) fits
// behind the same interface: it holds the same entries, read back through the same checks.
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

/** The in-process store: least recently used entries go first beyond `maxEntries`. */
export function createMemoryStore(options: { maxEntries: number }): IdentityStore {
  // Bounded by count through maxSize (each entry counts 1) rather than `max`: with `max`, lru-cache
  // allocates its index arrays for all entries up front (about 35 ms of every cold start at 200 000);
  // this way they grow with the cache.
  const entries = new LRUCache<string, StoredEntry>({
    maxSize: options.maxEntries,
    sizeCalculation: () => 1,
  });
  return {
    get: (key) => entries.get(key),
    set: (key, entry) => {
      entries.set(key, entry);
    },
    delete: (key) => entries.delete(key),
    size: () => entries.size,
  };
}
