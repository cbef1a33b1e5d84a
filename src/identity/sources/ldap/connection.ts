// A small pool of bound LDAP connections shared by the `ldap` and `ad` sources: URL failover,
// LDAPS / StartTLS, single-flight bind, re-bind after the server drops a connection, per-operation
// timeouts, health (up/down + last error), jittered exponential backoff while the directory is down,
// and one write per connection for the searches started in the same turn of the event loop.
//
// Why one ldapts Client per connection and never a transparent reconnect: ldapts reconnects a
// dropped socket on the next operation WITHOUT binding again (and, after StartTLS, without TLS).
// Each Client here may open exactly one socket; when it is gone the slot is rebuilt (connect,
// StartTLS, bind) before anything is sent, so no search ever runs anonymously or in clear text.
import net from 'node:net';
import tls from 'node:tls';
import { Client, type Entry, type Filter, InvalidCredentialsError, ResultCodeError } from 'ldapts';
import type { Logger } from 'pino';
import { searchRefused, sourceUnavailable } from '../../../errors.js';
import type { SourceHealth } from '../../types.js';
import { coalesceWrites } from './coalesce-writes.js';
import type { LdapConnectionSettings } from './config.js';

export interface LdapSearchRequest {
  base: string;
  scope: 'base' | 'one' | 'sub';
  filter: Filter;
  attributes: string[];
  /** Attributes returned as Buffers (e.g. AD `objectSid`). */
  explicitBufferAttributes?: string[] | undefined;
  /** Ask the server for pages of this size (RFC 2696) so large results never hit a server size limit. */
  pageSize?: number;
  /** Most entries wanted: sent as the search's size limit (the server stops there) and cut to it here too. */
  sizeLimit?: number;
}

interface Slot {
  client?: Client;
  /** Single-flight connect + StartTLS + bind: concurrent first operations share it. */
  ready?: Promise<Client>;
  inFlight: number;
}

/** Raised inside the pool for failures that mean "the directory cannot be asked" (vs. an LDAP result). */
class ConnectionFailure extends Error {}
/** No URL could be connected and bound just now: retrying at once would only hammer the directory. */
class OpenFailure extends ConnectionFailure {}

/** LDAP result codes that say the server, not the request, is in trouble. */
const UNAVAILABLE_RESULT_CODES = new Set([
  3 /* timeLimitExceeded */, 51 /* busy */, 52 /* unavailable */, 80 /* other */,
]);

export interface LdapPool {
  /** Runs one search on a pooled connection; retries once on a fresh connection if that one died. */
  search(request: LdapSearchRequest): Promise<Entry[]>;
  health(): SourceHealth;
  close(): Promise<void>;
}

export function createLdapPool(source: string, settings: LdapConnectionSettings, log: Logger): LdapPool {
  const slots: Slot[] = Array.from({ length: settings.poolSize }, () => ({ inFlight: 0 }));
  let closed = false;
  let health: SourceHealth = { up: true, since: new Date().toISOString() };
  let failures = 0;
  let retryAt = 0;
  let probeTimer: NodeJS.Timeout | undefined;
  /** Per URL: do not try before this time (a dead primary is skipped, not re-dialled on every reconnect). */
  const urlRetryAt = new Map<string, number>();

  const tlsOptions = (): tls.ConnectionOptions => ({
    ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
    rejectUnauthorized: settings.tlsVerify,
    ...(settings.tlsServerName !== undefined ? { servername: settings.tlsServerName } : {}),
  });

  const markUp = () => {
    failures = 0;
    retryAt = 0;
    if (!health.up) {
      log.info({ source }, 'directory is reachable again');
      health = { up: true, since: new Date().toISOString() };
    }
  };

  const markDown = (reason: string) => {
    if (!health.up && Date.now() < retryAt) {
      // Requests that were already in flight when the directory went down: same outage, same
      // wait, and the reason that declared the outage stays the one reported.
      scheduleProbe(retryAt - Date.now());
      return;
    }
    failures += 1;
    // Exponential from `initial`, capped at `max`, with full jitter in [50%, 100%] so replicas
    // that saw the outage together do not come back in lock step.
    const ceiling = Math.min(
      settings.backoff.max,
      settings.backoff.initial * 2 ** Math.min(failures - 1, 20),
    );
    const wait = Math.round(ceiling * (0.5 + Math.random() * 0.5));
    retryAt = Date.now() + wait;
    const since = health.up ? new Date().toISOString() : health.since;
    health = { up: false, since, lastError: reason };
    if (failures === 1) log.warn({ source, reason }, 'directory is down');
    scheduleProbe(wait);
  };

  const retryAfterSeconds = () => Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));

  /** While down, a background probe reconnects one slot so health recovers without traffic. */
  const scheduleProbe = (wait: number) => {
    if (probeTimer !== undefined || closed) return;
    probeTimer = setTimeout(() => {
      probeTimer = undefined;
      if (closed || health.up) return;
      acquire(slots[0] as Slot).then(markUp, (err) => {
        if (!(err instanceof ConnectionFailure)) return;
        markDown(err.message);
      });
    }, wait);
    probeTimer.unref();
  };

  /** A Client allowed to open one socket: ldapts' silent reconnect (anonymous, maybe clear text) is refused. */
  const newClient = (url: string) => {
    let plainOpened = false;
    let secureOpened = false;
    const refuse = () => {
      const socket = new net.Socket();
      process.nextTick(() =>
        socket.destroy(new Error('connection was closed; the pool opens a new bound one')),
      );
      return socket;
    };
    return new Client({
      url,
      connectTimeout: settings.connectTimeout,
      ...(url.startsWith('ldaps:') ? { tlsOptions: tlsOptions() } : {}),
      createConnection: ((...args: Parameters<typeof net.connect>) => {
        if (plainOpened) return refuse();
        plainOpened = true;
        return coalesceWrites(net.connect(...args));
      }) as typeof net.connect,
      createSecureConnection: ((...args: Parameters<typeof tls.connect>) => {
        if (secureOpened) return refuse() as unknown as tls.TLSSocket;
        secureOpened = true;
        return coalesceWrites((tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args));
      }) as typeof tls.connect,
    });
  };

  const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ConnectionFailure(`${what} timed out after ${ms} ms`)), ms);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });

  const describe = (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    return e.code !== undefined && typeof e.code === 'string'
      ? `${e.code}: ${e.message}`
      : String(e.message ?? err);
  };

  /** Connect to the first reachable URL, StartTLS when asked, bind. Throws ConnectionFailure. */
  const open = async (): Promise<{ client: Client; url: string }> => {
    const now = Date.now();
    const candidates = settings.urls.filter((u) => (urlRetryAt.get(u) ?? 0) <= now);
    const order = candidates.length > 0 ? candidates : settings.urls;
    const errors: string[] = [];
    for (const url of order) {
      const client = newClient(url);
      const setup = (async () => {
        // StartTLS upgrades an existing socket: the host to verify must be named explicitly.
        if (settings.startTls) await client.startTLS({ ...tlsOptions(), host: new URL(url).hostname });
        if (settings.bindDN !== undefined) await client.bind(settings.bindDN, settings.bindPassword ?? '');
        // Anonymous: make sure the socket really opened before the slot is handed out.
        else if (!client.isConnected) await client.exop('1.3.6.1.4.1.4203.1.11.3'); // WhoAmI
      })();
      try {
        await withTimeout(setup, settings.connectTimeout, `connecting to ${url}`);
        urlRetryAt.delete(url);
        return { client, url };
      } catch (err) {
        // A setup that outlives its timeout must not leave a bound connection behind.
        setup.then(
          () => client.unbind().catch(() => {}),
          () => {},
        );
        client.unbind().catch(() => {});
        const reason =
          err instanceof InvalidCredentialsError
            ? `bind as ${settings.bindDN} refused: invalid credentials`
            : describe(err);
        errors.push(`${url}: ${reason}`);
        urlRetryAt.set(url, Date.now() + settings.backoff.initial);
        log.debug({ source, url, reason }, 'LDAP server not usable; trying the next URL');
      }
    }
    throw new OpenFailure(errors.join('; '));
  };

  const usable = (client: Client) => (settings.bindDN !== undefined ? client.isBound : client.isConnected);

  const retire = (slot: Slot) => {
    const client = slot.client;
    slot.client = undefined;
    slot.ready = undefined;
    client?.unbind().catch(() => {});
  };

  /** The slot's client, (re)opened and bound if needed; concurrent callers share one attempt. */
  const acquire = (slot: Slot): Promise<Client> => {
    if (slot.client !== undefined && usable(slot.client)) return Promise.resolve(slot.client);
    if (slot.ready === undefined) {
      if (slot.client !== undefined) retire(slot);
      const attempt = open().then(
        ({ client }) => {
          if (slot.ready === attempt) slot.client = client;
          return client;
        },
        (err) => {
          if (slot.ready === attempt) slot.ready = undefined;
          throw err;
        },
      );
      slot.ready = attempt;
      // The attempt is complete once the client is stored; later callers take the fast path above.
      attempt.then(
        () => {
          if (slot.ready === attempt) slot.ready = undefined;
        },
        () => {},
      );
    }
    return slot.ready as Promise<Client>;
  };

  /** Least-busy slot: spreads load, and a slow connection collects fewer new requests. */
  const pickSlot = () => {
    let best: Slot | undefined;
    for (const slot of slots) {
      if (best === undefined || slot.inFlight < best.inFlight) best = slot;
    }
    return best as Slot;
  };

  const runSearch = async (client: Client, request: LdapSearchRequest): Promise<Entry[]> => {
    // A paged search is read to its end by ldapts itself (all pages, one promise); the size limit
    // travels in the request, so the directory stops there, and anything past it is cut here.
    const { searchEntries } = await client.search(request.base, {
      scope: request.scope,
      filter: request.filter,
      attributes: request.attributes,
      explicitBufferAttributes: request.explicitBufferAttributes,
      sizeLimit: request.sizeLimit,
      paged: request.pageSize === undefined ? false : { pageSize: request.pageSize },
    });
    return request.sizeLimit !== undefined && searchEntries.length > request.sizeLimit
      ? searchEntries.slice(0, request.sizeLimit)
      : searchEntries;
  };

  const isConnectionError = (err: unknown) =>
    err instanceof ConnectionFailure ||
    !(err instanceof ResultCodeError) ||
    UNAVAILABLE_RESULT_CODES.has((err as ResultCodeError).code);

  /** A search answered with an error result (see `isConnectionError`): a 503 naming the result, the base in the log. */
  const refused = (err: unknown, request: LdapSearchRequest) => {
    const { name, code, message } = err as ResultCodeError;
    const result = `${name.replace(/Error$/, '')} (LDAP result ${code})`;
    return searchRefused(
      source,
      result,
      new Error(`${result} for a search under '${request.base}': ${message}`),
    );
  };

  const attempt = async (slot: Slot, request: LdapSearchRequest): Promise<Entry[]> => {
    slot.inFlight += 1;
    try {
      // A bound connection is used as it is: no promise (and no turn of the microtask queue) per search.
      const current = slot.client;
      const client = current !== undefined && usable(current) ? current : await acquire(slot);
      try {
        // Our own timer, not ldapts' `timeout` option: ldapts destroys the socket on a timeout,
        // failing every other request in flight on that connection. Here only this request fails;
        // the connection is retired (no new requests) and the others finish or time out on their own.
        return await withTimeout(runSearch(client, request), settings.operationTimeout, 'LDAP search');
      } catch (err) {
        // A connection that failed at the connection level is never handed out again, so the
        // retry below always runs on a freshly opened and bound one.
        if (isConnectionError(err) && slot.client === client) {
          slot.client = undefined;
          slot.ready = undefined;
          const retired = client;
          setTimeout(() => retired.unbind().catch(() => {}), settings.operationTimeout).unref();
        }
        throw err;
      }
    } finally {
      slot.inFlight -= 1;
    }
  };

  // Connect one slot right away so /readyz and idmount_source_up tell the truth (bad bind DN,
  // wrong CA, unreachable servers) before the first user asks.
  acquire(slots[0] as Slot).then(markUp, (err) => markDown(describe(err)));

  return {
    async search(request) {
      if (closed) throw sourceUnavailable(source, 1, new Error('source closed'));
      if (!health.up && Date.now() < retryAt) {
        throw sourceUnavailable(source, retryAfterSeconds(), new Error(health.lastError));
      }
      const unavailable = (err: unknown) => {
        markDown(describe(err));
        return sourceUnavailable(source, retryAfterSeconds(), err);
      };
      const first = pickSlot();
      try {
        const entries = await attempt(first, request);
        markUp();
        return entries;
      } catch (err) {
        if (!isConnectionError(err)) throw refused(err, request);
        if (err instanceof OpenFailure) throw unavailable(err);
        // An established connection failed (dropped by the server, idle timeout, restart, a stuck
        // search): one retry on a freshly opened connection in the same slot tells a dead socket
        // from a dead directory (the other slots may hold sockets that died the same way).
        log.debug({ source, err: describe(err) }, 'LDAP search failed on a pooled connection; retrying once');
        if (!health.up && Date.now() < retryAt) throw sourceUnavailable(source, retryAfterSeconds(), err);
        try {
          const entries = await attempt(first, request);
          markUp();
          return entries;
        } catch (retryErr) {
          if (!isConnectionError(retryErr)) throw refused(retryErr, request);
          throw unavailable(retryErr);
        }
      }
    },
    health: () => health,
    async close() {
      closed = true;
      if (probeTimer !== undefined) clearTimeout(probeTimer);
      await Promise.all(
        slots.map(async (slot) => {
          const client = slot.client ?? (await slot.ready?.catch(() => undefined));
          slot.client = undefined;
          slot.ready = undefined;
          await client?.unbind().catch(() => {});
        }),
      );
    },
  };
}
