// A small pool of bound LDAP connections shared by the `ldap` and `ad` sources: the least busy
// slot takes each search, a slot whose connection died is rebuilt (./open.ts: connect, StartTLS,
// bind) before anything is sent on it, one retry on a fresh connection tells a dead socket from a
// dead directory, per-search timeouts, and the source's health (./outage.ts).
import { type Client, type Entry, type Filter, ResultCodeError, SizeLimitExceededError } from 'ldapts';
import type { Logger } from 'pino';
import { incompleteAnswer, searchRefused, sourceUnavailable } from '../../../errors.js';
import type { SourceHealth } from '../../types.js';
import type { LdapConnectionSettings } from './config.js';
import { ConnectionFailure, createOpener, describeFailure, OpenFailure, withTimeout } from './open.js';
import { createOutageTracker } from './outage.js';

export interface LdapSearchRequest {
  base: string;
  scope: 'base' | 'one' | 'sub';
  filter: Filter;
  attributes: string[];
  /** Attributes returned as Buffers (e.g. AD `objectSid`). */
  explicitBufferAttributes?: string[] | undefined;
  /** Ask the server for pages of this size (RFC 2696) so large results never hit a server size limit. */
  pageSize?: number;
  /**
   * Continuation references that cannot hold what is searched for (AD's DNS and configuration
   * partitions below a domain root); any other reference makes the answer incomplete.
   */
  ignorableReference?: ((url: string) => boolean) | undefined;
}

interface Slot {
  client?: Client;
  /** Single-flight connect + StartTLS + bind: concurrent first operations share it. */
  ready?: Promise<Client>;
  inFlight: number;
}

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
  const open = createOpener(source, settings, log);
  const outage = createOutageTracker(
    source,
    settings.backoff,
    log,
    () => acquire(slots[0] as Slot),
    (err) => err instanceof ConnectionFailure,
    describeFailure,
  );

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
        (client) => {
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
  acquire(slots[0] as Slot).then(outage.up, (err) => outage.down(describeFailure(err)));

  const unavailable = (err: unknown) => sourceUnavailable(source, outage.retryAfterSeconds(), err);

  return {
    async search(request) {
      if (closed) throw sourceUnavailable(source, 1, new Error('source closed'));
      if (outage.waiting()) throw unavailable(new Error(outage.health().lastError));
      const down = (err: unknown) => {
        outage.down(describeFailure(err));
        return unavailable(err);
      };
      const first = pickSlot();
      try {
        const entries = await attempt(first, request);
        outage.up();
        return entries;
      } catch (err) {
        if (!isConnectionError(err)) throw refused(source, err, request);
        if (err instanceof OpenFailure) throw down(err);
        // An established connection failed (dropped by the server, idle timeout, restart, a stuck
        // search): one retry on a freshly opened connection in the same slot tells a dead socket
        // from a dead directory (the other slots may hold sockets that died the same way).
        log.debug(
          { source, err: describeFailure(err) },
          'LDAP search failed on a pooled connection; retrying once',
        );
        if (outage.waiting()) throw unavailable(err);
        try {
          const entries = await attempt(first, request);
          outage.up();
          return entries;
        } catch (retryErr) {
          if (!isConnectionError(retryErr)) throw refused(source, retryErr, request);
          throw down(retryErr);
        }
      }
    },
    health: outage.health,
    async close() {
      closed = true;
      outage.close();
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

// A search is read to its end or refused, never taken in part. No size limit is ever sent: ldapts 9
// hides the server's sizeLimitExceeded whenever the request carried one, so a server that stopped
// early (its own limit, or ours) would look like a complete answer. Without one, a server limit is
// an error result (SizeLimitExceeded) and a time limit too; continuation references (entries held
// by another server) are a refusal unless the request says to ignore them. Bounds on what we keep
// are applied to the complete answer.
const runSearch = async (client: Client, request: LdapSearchRequest): Promise<Entry[]> => {
  // A paged search is read to its end by ldapts itself (all pages, one promise).
  const { searchEntries, searchReferences } = await client.search(request.base, {
    scope: request.scope,
    filter: request.filter,
    attributes: request.attributes,
    explicitBufferAttributes: request.explicitBufferAttributes,
    paged: request.pageSize === undefined ? false : { pageSize: request.pageSize },
  });
  const elsewhere = searchReferences.filter((url) => request.ignorableReference?.(url) !== true);
  if (elsewhere.length > 0) throw new IncompleteAnswer('a referral to another server');
  return searchEntries;
};

/** The directory answered, but not all of it: never read as "these are all the entries". */
class IncompleteAnswer extends Error {}

const isConnectionError = (err: unknown) =>
  err instanceof ConnectionFailure ||
  (!(err instanceof ResultCodeError) && !(err instanceof IncompleteAnswer)) ||
  UNAVAILABLE_RESULT_CODES.has((err as ResultCodeError).code);

/** A search answered with an error result (see `isConnectionError`): a 503 naming the result, the base in the log. */
const refused = (source: string, err: unknown, request: LdapSearchRequest) => {
  if (err instanceof IncompleteAnswer) return incompleteAnswer(source, err.message, err);
  if (err instanceof SizeLimitExceededError) {
    return incompleteAnswer(source, "the server's size limit (LDAP result 4)", err);
  }
  const { name, code, message } = err as ResultCodeError;
  const result = `${name.replace(/Error$/, '')} (LDAP result ${code})`;
  return searchRefused(
    source,
    result,
    new Error(`${result} for a search under '${request.base}': ${message}`),
  );
};
