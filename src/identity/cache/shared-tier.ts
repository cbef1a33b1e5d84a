// The cache tier every replica shares, on Redis (or Valkey): the client and its timeouts, the key
// layout, entries written and read back through the codec (./shared-entry.ts), evictions told to
// every replica (pub/sub, with a short stream so a replica that was disconnected catches up), and
// AD ID-mapping slices agreed once for all (first writer wins, in one script).
//
// Redis is never needed to answer a spawn. Commands are not queued while it is away (they fail at
// once), each has a short timeout, and after a failure the tier is skipped for a few seconds, so a
// dead, slow or refusing Redis costs a spawn at most one command timeout. ioredis reconnects by
// itself in the background; the state shows in /metrics and GET /status, never in /readyz.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { CacheConfig, SharedTierConfig } from './config.js';
import { decodeEntry, encodeEntry } from './shared-entry.js';
import type { SharedStore, StoredEntry } from './store.js';

export interface SharedTierEvents {
  read(result: 'hit' | 'miss' | 'refused' | 'error' | 'skipped'): void;
  write(result: 'ok' | 'error' | 'skipped'): void;
  /** An entry read back failed the codec's schema (the resolver reports its own refusals). */
  refused(reason: 'schema'): void;
  /** Another replica's eviction reached this one. */
  evictionReceived(): void;
}

export interface SharedTierStatus {
  state: 'connecting' | 'up' | 'down';
  /** ISO time of the last change of state. */
  since: string;
  /** The server, as configured (the URL holds no credentials). */
  url: string;
  lastError?: string;
}

/** After a failed or timed-out command, the tier is skipped this long: one timeout, not one per spawn. */
const PAUSE_AFTER_FAILURE_MS = 2_000;
/** Background writes waiting for Redis beyond this are dropped: a slow Redis never piles up memory. */
const MAX_PENDING_WRITES = 1_000;
/** Evictions kept for replicas that were disconnected when they were told (about, with MAXLEN ~). */
const EVICTION_LOG_LENGTH = 10_000;
/** Reconnection delay: 100 ms, doubling, at most 5 s, with jitter so replicas do not reconnect in step. */
const reconnectDelay = (attempt: number) =>
  Math.min(100 * 2 ** Math.min(attempt, 6), 5_000) + Math.floor(Math.random() * 100);

/** The keys of one idmount release (keyPrefix) and one identity configuration (fingerprint). */
export function sharedKeys(prefix: string, fingerprint: string) {
  return {
    /** A user's entry. Replicas with other sources (a rollout changing them) use other keys. */
    user: (name: string) => `${prefix}id:${fingerprint}:${name}`,
    evictionLog: `${prefix}evictions`,
    evictionChannel: `${prefix}evict`,
    /** An ID map's agreed slices: range id → slice, and slice → range id (so each is given once). */
    slices: (scope: string) => [`${prefix}idmap:${scope}:ranges`, `${prefix}idmap:${scope}:slices`] as const,
  };
}

/**
 * A short digest of what decides an identity (the sources and merge settings, without secrets): a
 * rollout that changes them must not read what the old configuration stored.
 */
export function identityFingerprint(settings: unknown): string {
  const json = JSON.stringify(settings, (key, value) =>
    /password|secret/i.test(key) ? undefined : (value as unknown),
  );
  return createHash('sha256').update(json).digest('hex').slice(0, 12);
}

/** Deletes the entry, logs the eviction and tells every replica, in one step. */
const EVICT_SCRIPT = `
local removed = redis.call('DEL', KEYS[1])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[1])
redis.call('PUBLISH', ARGV[2], id .. ' ' .. ARGV[1])
return removed`;

/**
 * Agrees a slice for each requested range id, first writer wins: an agreed one is returned as it
 * is; otherwise the walk starts at the range's own slice (its hash) and takes the first slice no
 * other range holds and no configuration pins, as SSSD does, but once for every replica.
 * ARGV: slice count, request count, then (range id, origin) pairs, then the pinned slices.
 */
const CLAIM_SCRIPT = `
local max = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local pinned = {}
for j = 3 + 2 * count, #ARGV do pinned[ARGV[j]] = true end
local out = {}
for p = 0, count - 1 do
  local range = ARGV[3 + 2 * p]
  local origin = tonumber(ARGV[4 + 2 * p])
  local got = redis.call('HGET', KEYS[1], range)
  if not got then
    local s = origin
    repeat
      local field = tostring(s)
      if not pinned[field] and redis.call('HSETNX', KEYS[2], field, range) == 1 then
        redis.call('HSET', KEYS[1], range, field)
        got = field
        break
      end
      s = s + 1
      if s >= max then s = 0 end
    until s == origin
  end
  out[p + 1] = got or ''
end
return out`;

type EvictMessage = { from: string; fp: string; name: string };
const EvictMessageSchema = z.strictObject({
  from: z.string().max(64),
  fp: z.string().max(64),
  name: z.string().min(1).max(1024),
});

/** Stream ids are `<ms>-<seq>`; true when `a` comes after `b`. */
function laterId(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am > bm || (am === bm && as > bs);
}

export interface SharedTierOptions {
  log: Logger;
  cache: CacheConfig;
  /** identityFingerprint() of this replica's sources. */
  fingerprint: string;
  events?: SharedTierEvents | undefined;
  /** Entries this replica holds: a replica that cached alone before it first reached Redis replays the eviction log. */
  localEntries: () => number;
  /** The resolver's clock (entries carry its fetch times). */
  now?: (() => number) | undefined;
}

export function redisOptions(config: SharedTierConfig): RedisOptions {
  const url = new URL(config.url);
  const tls = url.protocol === 'rediss:';
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? 6379 : Number(url.port),
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    ...(config.username !== undefined ? { username: config.username } : {}),
    ...(config.password !== undefined ? { password: config.password } : {}),
    ...(tls
      ? {
          tls: {
            ...(config.tls?.caFile !== undefined ? { ca: readFileSync(config.tls.caFile) } : {}),
            servername: config.tls?.serverName ?? url.hostname,
            rejectUnauthorized: true,
          },
        }
      : {}),
    connectionName: 'idmount',
    lazyConnect: true,
    connectTimeout: config.timeouts.connect,
    commandTimeout: config.timeouts.command,
    // Nothing waits for a Redis that is away: a command fails at once, and is never resent later.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelay,
  };
}

export function createSharedTier(config: SharedTierConfig, options: SharedTierOptions) {
  const { log, cache, fingerprint, events } = options;
  const now = options.now ?? Date.now;
  const keys = sharedKeys(config.keyPrefix, fingerprint);
  const replica = randomUUID();
  // Loaded only when a shared tier is configured: ioredis adds about 8 MB to every replica's RSS.
  const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  const client = new RedisClient(redisOptions(config));
  // Subscribing takes a connection of its own; it may wait for Redis (it sends nothing else), and
  // ioredis subscribes again by itself after each reconnect.
  const subscriber = client.duplicate({
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
  });
  const commands = client as Redis & {
    idmountEvict(
      entry: string,
      log: string,
      message: string,
      channel: string,
      length: number,
    ): Promise<number>;
    idmountClaim(ranges: string, slices: string, ...args: (string | number)[]): Promise<string[]>;
  };
  client.defineCommand('idmountEvict', { numberOfKeys: 2, lua: EVICT_SCRIPT });
  client.defineCommand('idmountClaim', { numberOfKeys: 2, lua: CLAIM_SCRIPT });

  let pausedUntil = 0;
  let lastError: string | undefined;
  let state: SharedTierStatus['state'] = 'connecting';
  let since = new Date().toISOString();
  let pendingWrites = 0;
  let closing = false;
  const evictionListeners: ((name: string) => void)[] = [];

  const setState = (next: SharedTierStatus['state']) => {
    if (next === state) return;
    const previous = state;
    state = next;
    since = new Date().toISOString();
    if (next === 'up') log.info({ url: config.url }, 'shared cache tier reachable');
    else if (previous === 'up')
      log.warn(
        { url: config.url, err: lastError },
        'shared cache tier unreachable; answering from this replica and the directory',
      );
  };
  const available = () => client.status === 'ready' && Date.now() >= pausedUntil;
  const failed = (err: unknown) => {
    lastError = (err as Error).message;
    pausedUntil = Date.now() + PAUSE_AFTER_FAILURE_MS;
  };
  client.on('ready', () => {
    pausedUntil = 0;
    setState('up');
    void startEvictionLog();
  });
  client.on('error', (err: Error) => {
    lastError = err.message;
  });
  // 'connecting' only until the first attempt ends; then up or down.
  client.on('close', () => {
    if (!closing) setState('down');
  });
  subscriber.on('error', () => {});

  // ---- evictions: pub/sub while connected, the log for what a disconnected subscriber missed
  let lastEviction: string | undefined;
  let missed = false;
  let subscribedBefore = false;

  function received(id: string, text: string) {
    if (lastEviction === undefined || laterId(id, lastEviction)) lastEviction = id;
    let message: EvictMessage;
    try {
      message = EvictMessageSchema.parse(JSON.parse(text));
    } catch {
      log.warn({ id }, 'malformed eviction message in the shared tier ignored');
      return;
    }
    if (message.from === replica) return;
    events?.evictionReceived();
    for (const listener of evictionListeners) listener(message.name);
    // Replicas with other sources (mid-rollout) keep their entries under another key: each removes its own.
    if (message.fp !== fingerprint && available()) client.del(keys.user(message.name)).catch(failed);
  }

  async function startEvictionLog() {
    try {
      if (lastEviction === undefined && !missed) {
        if (options.localEntries() > 0) {
          // Cached alone before Redis was first reached: any eviction logged meanwhile may concern us.
          missed = true;
        } else {
          const [latest] = await client.xrevrange(keys.evictionLog, '+', '-', 'COUNT', 1);
          lastEviction ??= latest?.[0] ?? '0-0';
        }
      }
      if (!missed) return;
      const from = lastEviction === undefined ? '-' : `(${lastEviction}`;
      const entries = await client.xrange(keys.evictionLog, from, '+', 'COUNT', EVICTION_LOG_LENGTH);
      missed = false;
      for (const [id, fields] of entries) received(id, fields[1] ?? '');
      if (entries.length > 0)
        log.info({ evictions: entries.length }, 'caught up with evictions missed while disconnected');
    } catch (err) {
      failed(err);
    }
  }

  subscriber.on('message', (_channel: string, payload: string) => {
    const space = payload.indexOf(' ');
    if (space > 0) received(payload.slice(0, space), payload.slice(space + 1));
  });
  subscriber.on('ready', () => {
    // ioredis subscribes again by itself after a reconnect; what was published meanwhile is in the log.
    if (subscribedBefore) {
      missed = true;
      if (client.status === 'ready') void startEvictionLog();
    }
    subscribedBefore = true;
  });

  const store: SharedStore = {
    async get(name) {
      if (!available()) {
        events?.read('skipped');
        return undefined;
      }
      let text: string | null;
      try {
        text = await client.get(keys.user(name));
      } catch (err) {
        failed(err);
        events?.read('error');
        return undefined;
      }
      if (text === null) {
        events?.read('miss');
        return undefined;
      }
      const decoded = decodeEntry(text);
      if (!decoded.ok) {
        events?.read('refused');
        events?.refused('schema');
        log.warn({ user: name, reason: decoded.reason }, 'shared cache entry refused; asking the directory');
        return undefined;
      }
      events?.read('hit');
      return decoded.entry;
    },

    set(name: string, entry: StoredEntry) {
      if (!available() || pendingWrites >= MAX_PENDING_WRITES) {
        events?.write('skipped');
        return;
      }
      // Kept as long as a replica may use it: until its stale horizon (found) or negative TTL (missing).
      const horizon = entry.kind === 'found' ? cache.ttl + cache.staleIfError : cache.negativeTtl;
      const remaining = entry.fetchedAt + horizon - now();
      if (remaining <= 0) return;
      pendingWrites += 1;
      client
        .set(keys.user(name), encodeEntry(entry), 'PX', remaining)
        .then(
          () => events?.write('ok'),
          (err: unknown) => {
            failed(err);
            events?.write('error');
          },
        )
        .finally(() => {
          pendingWrites -= 1;
        });
    },

    async delete(name) {
      if (client.status !== 'ready') return { removed: false, reached: false };
      const message = JSON.stringify({ from: replica, fp: fingerprint, name } satisfies EvictMessage);
      try {
        const removed = await commands.idmountEvict(
          keys.user(name),
          keys.evictionLog,
          message,
          keys.evictionChannel,
          EVICTION_LOG_LENGTH,
        );
        return { removed: removed > 0, reached: true };
      } catch (err) {
        failed(err);
        return { removed: false, reached: false };
      }
    },
  };

  return {
    store,
    /** Calls `listener` with each user another replica evicted. */
    onEviction(listener: (name: string) => void) {
      evictionListeners.push(listener);
    },
    /**
     * Agrees slices for `requests` in the ID map `scope` (see CLAIM_SCRIPT); the answer is in the
     * order asked. Throws when Redis cannot be asked: a slice is never guessed.
     */
    async claim(
      scope: string,
      maxSlices: number,
      pinned: readonly number[],
      requests: readonly { rangeId: string; origin: number }[],
    ): Promise<(number | undefined)[]> {
      if (client.status !== 'ready')
        throw new Error(`the shared cache tier is not reachable (${lastError ?? state})`);
      const [ranges, slices] = keys.slices(scope);
      const args = requests.flatMap((r) => [r.rangeId, r.origin]);
      const answer = await commands.idmountClaim(
        ranges,
        slices,
        maxSlices,
        requests.length,
        ...args,
        ...pinned,
      );
      return answer.map((v) => (v === '' ? undefined : Number(v)));
    },
    status(): SharedTierStatus {
      if (state === 'up' && !available()) setState('down');
      else if (state !== 'up' && available()) setState('up');
      return { state, since, url: config.url, ...(lastError !== undefined ? { lastError } : {}) };
    },
    /** Connects in the background; resolves at once (a replica never waits for Redis to start). */
    start() {
      client.connect().catch(() => {});
      subscriber.subscribe(keys.evictionChannel).catch(() => {});
    },
    async close() {
      closing = true;
      subscriber.disconnect();
      await Promise.race([client.quit().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
      client.disconnect();
    },
  };
}

export type SharedTier = ReturnType<typeof createSharedTier>;
