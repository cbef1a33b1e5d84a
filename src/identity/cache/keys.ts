// Which cache keys stand for a user. A requested name is folded (values.foldName) when every
// source folds case, so `Alice` and `alice` are one key; keys whose identity is named otherwise
// (another spelling, the entry's second uid value) are remembered under the identity's folded
// name, so that forgetting a user forgets every key that answers with that user.
import { LRUCache } from 'lru-cache';
import { foldName } from '../values.js';

export function createKeyBook(options: { foldsCase: boolean; maxEntries: number }) {
  const keyOf = options.foldsCase ? foldName : (name: string) => name;
  const aliases = new LRUCache<string, Set<string>>({ max: options.maxEntries });
  return {
    /** The cache key of a requested name. */
    keyOf,
    /** Notes that `key` answered with the identity named `identityName`. */
    remember(key: string, identityName: string) {
      if (key === identityName) return;
      const folded = foldName(identityName);
      let keys = aliases.get(folded);
      if (keys === undefined) {
        keys = new Set();
        aliases.set(folded, keys);
      }
      keys.add(key);
    },
    /** Every key that may hold `name` (as given, folded, and those that answered with it), then forgets them. */
    takeKeys(name: string): string[] {
      const keys = new Set([name, keyOf(name), ...(aliases.get(foldName(name)) ?? [])]);
      aliases.delete(foldName(name));
      return [...keys];
    },
  };
}
