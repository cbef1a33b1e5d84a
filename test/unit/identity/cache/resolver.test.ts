// The resolver's cache: TTL, negative TTL, single-flight, stale-if-error, refresh-ahead.
// The source here is a scripted test double (named so): the cache logic is what is under test;
// the real directories are exercised by the source integration tests.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { IdmountError, sourceUnavailable } from '../../../../src/errors.js';
import { pack } from '../../../../src/identity/cache/packing.js';
import { createResolver } from '../../../../src/identity/cache/resolver.js';
import {
  createMemoryStore,
  type SharedStore,
  type StoredEntry,
} from '../../../../src/identity/cache/store.js';
import { createChain } from '../../../../src/identity/chain.js';
import type { DirectoryRecord, IdentitySource } from '../../../../src/identity/types.js';

/** A scripted source: answers from a map, counts lookups, can be switched down or slowed. */
function scriptedSource(name = 'scripted') {
  const users = new Map<string, DirectoryRecord>([
    ['alice', { name: 'alice', uid: 20001, gid: 20001, groups: [] }],
  ]);
  const state = { lookups: 0, down: false, delay: 0 };
  const source: IdentitySource = {
    name,
    type: 'scripted',
    async lookup(username) {
      state.lookups += 1;
      if (state.delay > 0) await new Promise((r) => setTimeout(r, state.delay));
      if (state.down) throw sourceUnavailable(name, 7);
      return users.get(username) ?? null;
    },
    health: () => ({ up: !state.down, since: new Date(0).toISOString() }),
    close: async () => {},
  };
  return { source, state, users };
}

/**
 * A fake shared tier (a Map behind the SharedStore interface), standing in for Redis, which the
 * integration tests in test/integration/redis use for real; `reachable` false is a Redis that is down.
 */
function fakeSharedStore() {
  const entries = new Map<string, StoredEntry>();
  const state = { reads: 0, writes: 0, reachable: true };
  const store: SharedStore = {
    async get(key) {
      state.reads += 1;
      return state.reachable ? entries.get(key) : undefined;
    },
    set(key, entry) {
      state.writes += 1;
      if (state.reachable) entries.set(key, entry);
    },
    async delete(key) {
      if (!state.reachable) return { removed: false, reached: false };
      return { removed: entries.delete(key), reached: true };
    },
  };
  return { store, entries, state };
}

/** What another replica would have stored for a user `fetchedAt`. */
const foundEntry = (uid: number, fetchedAt: number, name = 'alice'): StoredEntry => ({
  kind: 'found',
  identity: pack({ name, uid, gid: 20001, groups: [], origin: {} as never, notes: [] }),
  origin: { uid: 'scripted', gid: 'scripted', home: undefined, gecos: undefined, groups: 'scripted' },
  attempts: [{ source: 'scripted', result: 'found' }],
  fetchedAt,
});

function setup(
  cache: Partial<{
    ttl: number;
    negativeTtl: number;
    staleIfError: number;
    refreshAhead: number;
    maxEntries: number;
    maxNegativeEntries: number;
  }> = {},
  shared?: SharedStore,
) {
  const scripted = scriptedSource();
  const clock = { now: 1_000_000 };
  let derivations = 0;
  const refused: string[] = [];
  const limits = {
    ttl: 60_000,
    negativeTtl: 10_000,
    staleIfError: 3_600_000,
    refreshAhead: 0,
    maxEntries: 1000,
    maxNegativeEntries: 1000,
    planEntries: 1000,
    trimAfterIdle: 0,
    ...cache,
  };
  const resolver = createResolver({
    chain: createChain([scripted.source]),
    store: createMemoryStore(limits),
    cache: limits,
    derive: (identity) => {
      derivations += 1;
      return identity.uid;
    },
    log: pino({ level: 'silent' }),
    now: () => clock.now,
    shared,
    // As the plan's policy would: uid 0 (and anything below 1000) gets no plan.
    usable: (uid) => uid >= 1000,
    events: { cache: () => {}, lookup: () => {}, sharedRejected: (reason) => refused.push(reason) },
  });
  return { resolver, clock, ...scripted, derivations: () => derivations, refused };
}

const codeOf = async (promise: Promise<unknown>) =>
  promise.then(
    () => 'ok',
    (err) => (err instanceof IdmountError ? err.code : 'other'),
  );

describe('resolver cache', () => {
  it('keeps "no such user" apart: a flood of unknown names never evicts a known identity', async () => {
    const { resolver, state, clock } = setup({ maxEntries: 2, maxNegativeEntries: 5 });
    await resolver.resolve('alice');
    for (let i = 0; i < 500; i++) await resolver.resolve(`nobody${i}`).catch(() => undefined);
    expect(resolver.size()).toBe(1);
    // The identity is still there, and stands in (stale) when its source goes down.
    clock.now += 120_000;
    state.down = true;
    const stale = await resolver.resolve('alice');
    expect(stale).toMatchObject({ cache: 'stale', stale: true });
  });

  it('holds at most maxEntries users, forgetting the least recently used first', async () => {
    const { resolver, users, state } = setup({ maxEntries: 3 });
    for (const [i, name] of ['bob', 'carol', 'dave'].entries())
      users.set(name, { name, uid: 20002 + i, gid: 20002 + i, groups: [] });
    for (const name of ['alice', 'bob', 'carol', 'alice', 'dave']) await resolver.resolve(name);
    expect(resolver.size()).toBe(3);
    const asked = state.lookups;
    expect((await resolver.resolve('alice')).cache).toBe('hit');
    expect((await resolver.resolve('dave')).cache).toBe('hit');
    expect((await resolver.resolve('bob')).cache).toBe('miss');
    expect(state.lookups).toBe(asked + 1);
  });

  it('serves a known user from the cache until the TTL, then asks the source again', async () => {
    const { resolver, clock, state } = setup();
    expect((await resolver.resolve('alice')).cache).toBe('miss');
    clock.now += 59_999;
    expect((await resolver.resolve('alice')).cache).toBe('hit');
    expect(state.lookups).toBe(1);
    clock.now += 1;
    expect((await resolver.resolve('alice')).cache).toBe('miss');
    expect(state.lookups).toBe(2);
  });

  it('gives back from the cache exactly the identity the source gave', async () => {
    const { resolver, users } = setup();
    const record = {
      name: 'bob',
      uid: 20002,
      gid: 20002,
      gecos: '',
      shell: '/bin/zsh',
      groups: [
        { name: 'bob', gid: 20002 },
        { name: 'grüppe "x"', gid: 4_294_967_294 },
      ],
      primaryGroupName: 'bob',
      notes: ['mail: bob@example.org'],
    };
    users.set('bob', structuredClone(record));
    const miss = await resolver.resolve('bob');
    const hit = await resolver.resolve('bob');
    expect(hit.cache).toBe('hit');
    expect(hit.identity).toStrictEqual(miss.identity);
    // No home in the record: none in the identity either, and no origin for it.
    expect(hit.identity).toStrictEqual({
      ...record,
      origin: { uid: 'scripted', gid: 'scripted', home: undefined, gecos: 'scripted', groups: 'scripted' },
    });
    // Each answer's identity is its own object: a caller changing it changes no other answer.
    hit.identity.origin.uid = 'changed';
    hit.identity.groups.pop();
    expect((await resolver.resolve('bob')).identity).toStrictEqual(miss.identity);
  });

  it('derives the plan once per cache fill, not per request', async () => {
    const { resolver, derivations } = setup();
    for (let i = 0; i < 5; i++) await resolver.resolve('alice');
    expect(derivations()).toBe(1);
  });

  it('remembers an unknown user for the negative TTL only', async () => {
    const { resolver, clock, state } = setup();
    expect(await codeOf(resolver.resolve('zed'))).toBe('USER_NOT_FOUND');
    expect(await codeOf(resolver.resolve('zed'))).toBe('USER_NOT_FOUND');
    expect(state.lookups).toBe(1);
    clock.now += 10_000;
    expect(await codeOf(resolver.resolve('zed'))).toBe('USER_NOT_FOUND');
    expect(state.lookups).toBe(2);
  });

  it('sends 100 concurrent misses for one user to the source once (single-flight)', async () => {
    const { resolver, state } = setup();
    state.delay = 20;
    const results = await Promise.all(Array.from({ length: 100 }, () => resolver.resolve('alice')));
    expect(state.lookups).toBe(1);
    expect(new Set(results.map((r) => r.identity.uid))).toEqual(new Set([20001]));
  });

  it('shares one failure among concurrent misses and does not cache it', async () => {
    const { resolver, state } = setup();
    state.down = true;
    state.delay = 10;
    const codes = await Promise.all(Array.from({ length: 10 }, () => codeOf(resolver.resolve('alice'))));
    expect(codes).toEqual(Array(10).fill('SOURCE_UNAVAILABLE'));
    expect(state.lookups).toBe(1);
    state.down = false;
    expect((await resolver.resolve('alice')).cache).toBe('miss');
  });

  it('serves a stale identity while the source is down, within staleIfError, flagged stale', async () => {
    const { resolver, clock, state } = setup();
    await resolver.resolve('alice');
    state.down = true;
    clock.now += 60_000 + 3_599_999;
    const stale = await resolver.resolve('alice');
    expect(stale).toMatchObject({ cache: 'stale', stale: true });
    expect(stale.identity.uid).toBe(20001);
    clock.now += 1;
    expect(await codeOf(resolver.resolve('alice'))).toBe('SOURCE_UNAVAILABLE');
  });

  it('gives 503 with Retry-After for an uncached user while the source is down', async () => {
    const { resolver, state } = setup();
    state.down = true;
    const err = await resolver.resolve('alice').catch((e: IdmountError) => e);
    expect(err).toBeInstanceOf(IdmountError);
    expect((err as IdmountError).code).toBe('SOURCE_UNAVAILABLE');
    expect((err as IdmountError).retryAfter).toBe(7);
  });

  it('recovers by itself when the source comes back', async () => {
    const { resolver, clock, state } = setup();
    await resolver.resolve('alice');
    state.down = true;
    clock.now += 120_000;
    expect((await resolver.resolve('alice')).cache).toBe('stale');
    state.down = false;
    expect((await resolver.resolve('alice')).cache).toBe('miss');
    expect((await resolver.resolve('alice')).cache).toBe('hit');
  });

  it('refreshes ahead of expiry in the background and keeps answering from the cache', async () => {
    const { resolver, clock, state, users } = setup({ refreshAhead: 0.5 });
    await resolver.resolve('alice');
    users.set('alice', { name: 'alice', uid: 20099, gid: 20001, groups: [] });
    clock.now += 30_000;
    const during = await resolver.resolve('alice');
    expect(during).toMatchObject({ cache: 'refresh' });
    expect(during.identity.uid).toBe(20001);
    await new Promise((r) => setTimeout(r, 0));
    expect(state.lookups).toBe(2);
    expect((await resolver.resolve('alice')).identity.uid).toBe(20099);
  });

  it('forgets a user on evict', async () => {
    const { resolver, state } = setup();
    await resolver.resolve('alice');
    expect(await resolver.evict('alice')).toEqual({ evicted: true, shared: false });
    expect(await resolver.evict('alice')).toEqual({ evicted: false, shared: false });
    await resolver.resolve('alice');
    expect(state.lookups).toBe(2);
  });

  it("evicts every key that answered with the user: the entry's other names too", async () => {
    const { resolver, state, users } = setup();
    // The directory answers the alias with the entry's own name (one entry, one identity).
    users.set('alice-alias', { name: 'alice', uid: 20001, gid: 20001, groups: [] });
    await resolver.resolve('alice');
    await resolver.resolve('alice-alias');
    expect((await resolver.evict('alice')).evicted).toBe(true);
    expect((await resolver.resolve('alice-alias')).cache).toBe('miss');
    expect(state.lookups).toBe(3);
  });
});

describe('cache keys and case', () => {
  const folding = (foldsCase: boolean) => {
    const scripted = scriptedSource();
    const source = { ...scripted.source, foldsCase };
    const lookup = source.lookup;
    // A case-insensitive directory: any spelling finds alice, answered with the directory's spelling.
    source.lookup = (name: string) => lookup(foldsCase ? name.toLowerCase() : name);
    const resolver = createResolver({
      chain: createChain([source]),
      store: createMemoryStore({ maxEntries: 100, maxNegativeEntries: 100 }),
      cache: {
        ttl: 60_000,
        negativeTtl: 10_000,
        staleIfError: 0,
        refreshAhead: 0,
        maxEntries: 100,
        maxNegativeEntries: 100,
        planEntries: 100,
        trimAfterIdle: 0,
      },
      derive: () => null,
      log: pino({ level: 'silent' }),
    });
    return { resolver, state: scripted.state };
  };

  it('shares one key between spellings when every source folds case, and evicts it under any spelling', async () => {
    const { resolver, state } = folding(true);
    await resolver.resolve('Alice');
    expect((await resolver.resolve('ALICE')).cache).toBe('hit');
    expect(state.lookups).toBe(1);
    expect((await resolver.evict('alice')).evicted).toBe(true);
    expect((await resolver.resolve('Alice')).cache).toBe('miss');
  });

  it('keeps spellings apart when a source is case-sensitive, and still evicts the other spelling', async () => {
    const { resolver } = folding(false);
    await resolver.resolve('alice');
    await expect(resolver.resolve('Alice')).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
    expect((await resolver.evict('alice')).evicted).toBe(true);
  });
});

describe('resolver with a shared tier', () => {
  it('answers a local miss from a fresh shared entry, without the directory, then from memory', async () => {
    const shared = fakeSharedStore();
    const { resolver, clock, state } = setup({}, shared.store);
    shared.entries.set('alice', foundEntry(20050, clock.now - 10_000));
    expect(await resolver.resolve('alice')).toMatchObject({ cache: 'shared', stale: false });
    expect((await resolver.resolve('alice')).cache).toBe('hit');
    expect(state.lookups).toBe(0);
    // The TTL counts from the directory lookup another replica made, not from this copy.
    clock.now += 50_000;
    expect((await resolver.resolve('alice')).cache).toBe('miss');
    expect(state.lookups).toBe(1);
  });

  it('writes what the directory answers (found and not found) for the other replicas', async () => {
    const shared = fakeSharedStore();
    const { resolver } = setup({}, shared.store);
    await resolver.resolve('alice');
    await codeOf(resolver.resolve('nobody'));
    expect(shared.entries.get('alice')).toMatchObject({ kind: 'found' });
    expect(shared.entries.get('nobody')).toMatchObject({ kind: 'missing' });
  });

  it.each([
    { sentence: 'a plan policy refuses (uid 0)', entry: () => foundEntry(0, 1_000_000), reason: 'plan' },
    {
      sentence: 'a fetch time in the future',
      entry: () => foundEntry(20050, 1_000_000 + 60_000),
      reason: 'clock',
    },
  ])('drops a shared entry with $sentence, counts it, and asks the directory', async ({ entry, reason }) => {
    const shared = fakeSharedStore();
    const { resolver, state, refused } = setup({}, shared.store);
    shared.entries.set('alice', entry());
    const answer = await resolver.resolve('alice');
    expect(answer).toMatchObject({ cache: 'miss' });
    expect(answer.identity.uid).toBe(20001);
    expect(state.lookups).toBe(1);
    expect(refused).toEqual([reason]);
    // The directory's answer replaces the refused entry.
    expect(shared.entries.get('alice')).toMatchObject({ fetchedAt: 1_000_000 });
  });

  it('never shares an identity whose plan is refused', async () => {
    const shared = fakeSharedStore();
    const { resolver, users } = setup({}, shared.store);
    users.set('root', { name: 'root', uid: 0, gid: 0, groups: [] });
    await resolver.resolve('root');
    expect(shared.entries.has('root')).toBe(false);
  });

  it('a restarted replica serves a shared entry past its TTL as stale while the directory is down (last-known-good)', async () => {
    const shared = fakeSharedStore();
    const { resolver, clock, state } = setup({}, shared.store);
    state.down = true;
    shared.entries.set('alice', foundEntry(20050, clock.now - 600_000));
    const stale = await resolver.resolve('alice');
    expect(stale).toMatchObject({ cache: 'stale', stale: true });
    expect(stale.identity.uid).toBe(20050);
    // A user the tier does not hold gets 503, as without a tier.
    expect(await codeOf(resolver.resolve('bob'))).toBe('SOURCE_UNAVAILABLE');
    // Past the stale horizon the entry is not served either.
    shared.entries.set('carol', foundEntry(20051, clock.now - 60_000 - 3_600_000, 'carol'));
    expect(await codeOf(resolver.resolve('carol'))).toBe('SOURCE_UNAVAILABLE');
  });

  it('answers from memory and the directory when the tier is down', async () => {
    const shared = fakeSharedStore();
    shared.state.reachable = false;
    const { resolver, state } = setup({}, shared.store);
    expect((await resolver.resolve('alice')).cache).toBe('miss');
    expect((await resolver.resolve('alice')).cache).toBe('hit');
    expect(state.lookups).toBe(1);
  });

  it('evicts in the tier too and says whether it reached it', async () => {
    const shared = fakeSharedStore();
    const { resolver, state } = setup({}, shared.store);
    await resolver.resolve('alice');
    expect(await resolver.evict('alice')).toEqual({ evicted: true, shared: true });
    expect(shared.entries.has('alice')).toBe(false);
    await resolver.resolve('alice');
    expect(state.lookups).toBe(2);
    shared.state.reachable = false;
    expect(await resolver.evict('alice')).toEqual({ evicted: true, shared: false });
  });

  it('a fill under way when the user is evicted answers its callers but is not kept', async () => {
    const shared = fakeSharedStore();
    const { resolver, state } = setup({}, shared.store);
    state.delay = 20;
    const pending = resolver.resolve('alice');
    await new Promise((r) => setTimeout(r, 5));
    resolver.forget('alice');
    expect((await pending).identity.uid).toBe(20001);
    expect(resolver.size()).toBe(0);
    expect(shared.entries.has('alice')).toBe(false);
    // The next request asks again instead of joining the forgotten fill.
    await resolver.resolve('alice');
    expect(state.lookups).toBe(2);
  });

  it('a refresh ahead takes a shared entry only when it is younger than the refresh point', async () => {
    const shared = fakeSharedStore();
    const { resolver, clock, state } = setup({ refreshAhead: 0.5 }, shared.store);
    await resolver.resolve('alice');
    clock.now += 40_000;
    // Another replica refreshed 5 s ago: this one's refresh takes that, not the directory.
    shared.entries.set('alice', foundEntry(20077, clock.now - 5_000));
    expect((await resolver.resolve('alice')).cache).toBe('refresh');
    await new Promise((r) => setTimeout(r, 0));
    expect(state.lookups).toBe(1);
    expect((await resolver.resolve('alice')).identity.uid).toBe(20077);
  });
});

describe('source chain', () => {
  const chain = (
    a: ReturnType<typeof scriptedSource>,
    b: ReturnType<typeof scriptedSource>,
    merge?: object,
  ) =>
    createResolver({
      chain: createChain([a.source, b.source], merge),
      store: createMemoryStore({ maxEntries: 10, maxNegativeEntries: 10 }),
      cache: {
        ttl: 60_000,
        negativeTtl: 10_000,
        staleIfError: 0,
        refreshAhead: 0,
        maxEntries: 10,
        maxNegativeEntries: 10,
        planEntries: 10,
        trimAfterIdle: 0,
      },
      derive: () => null,
      log: pino({ level: 'silent' }),
    });

  it('lets the first source that knows the user answer, and asks no further', async () => {
    const a = scriptedSource('first');
    const b = scriptedSource('second');
    const result = await chain(a, b).resolve('alice');
    expect(result.attempts).toEqual([{ source: 'first', result: 'found' }]);
    expect(b.state.lookups).toBe(0);
  });

  it('falls through to the next source when the first does not know the user', async () => {
    const a = scriptedSource('first');
    const b = scriptedSource('second');
    a.users.clear();
    const result = await chain(a, b).resolve('alice');
    expect(result.attempts).toEqual([
      { source: 'first', result: 'not found' },
      { source: 'second', result: 'found' },
    ]);
    expect(result.identity.origin.uid).toBe('second');
  });

  it('does not guess from a later source when an earlier one is down', async () => {
    const a = scriptedSource('first');
    const b = scriptedSource('second');
    a.state.down = true;
    expect(await codeOf(chain(a, b).resolve('alice'))).toBe('SOURCE_UNAVAILABLE');
    expect(b.state.lookups).toBe(0);
  });

  it('merges fields per source: numbers from one, groups from another', async () => {
    const a = scriptedSource('numbers');
    const b = scriptedSource('groups');
    a.users.set('alice', { name: 'alice', uid: 20001, gid: 20001, home: '/home/alice' });
    b.users.set('alice', { name: 'alice', groups: [{ name: 'proposal-mx1234', gid: 30001 }] });
    const result = await chain(a, b, { groups: 'groups' }).resolve('alice');
    expect(result.identity).toMatchObject({
      uid: 20001,
      home: '/home/alice',
      groups: [{ name: 'proposal-mx1234', gid: 30001 }],
    });
    expect(result.identity.origin).toMatchObject({
      uid: 'numbers',
      gid: 'numbers',
      home: 'numbers',
      groups: 'groups',
    });
  });

  it('refuses a merged identity without a uid, naming the field', async () => {
    const a = scriptedSource('numbers');
    const b = scriptedSource('groups');
    a.users.set('alice', { name: 'alice', gid: 20001 });
    const err = await chain(a, b)
      .resolve('alice')
      .catch((e: IdmountError) => e);
    expect(err).toMatchObject({ code: 'DIRECTORY_ENTRY_INVALID', extras: { attribute: 'uid' } });
  });
});
