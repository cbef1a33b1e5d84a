// Opening one bound LDAP connection: URL failover (a dead server is skipped for a while, not
// re-dialled on every reconnect), LDAPS or StartTLS, bind (or an anonymous WhoAmI), all within
// connectTimeout. Why one ldapts Client per connection and never a transparent reconnect: ldapts
// reconnects a dropped socket on the next operation WITHOUT binding again (and, after StartTLS,
// without TLS). Each Client here may open exactly one socket.
import net from 'node:net';
import tls from 'node:tls';
import { Client, InvalidCredentialsError } from 'ldapts';
import type { Logger } from 'pino';
import { coalesceWrites } from './coalesce-writes.js';
import type { LdapConnectionSettings } from './config.js';

/** A failure that means "the directory cannot be asked" (vs. an LDAP result). */
export class ConnectionFailure extends Error {}
/** No URL could be connected and bound just now: retrying at once would only hammer the directory. */
export class OpenFailure extends ConnectionFailure {}

export const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
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

/** A failure as one line for health and logs (never a secret: ldapts errors carry none). */
export const describeFailure = (err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  return e.code !== undefined && typeof e.code === 'string'
    ? `${e.code}: ${e.message}`
    : String(e.message ?? err);
};

export function createOpener(source: string, settings: LdapConnectionSettings, log: Logger) {
  /** Per URL: do not try before this time. */
  const urlRetryAt = new Map<string, number>();

  const tlsOptions = (): tls.ConnectionOptions => ({
    ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
    rejectUnauthorized: settings.tlsVerify,
    ...(settings.tlsServerName !== undefined ? { servername: settings.tlsServerName } : {}),
  });

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

  /** Connect to the first reachable URL, StartTLS when asked, bind. Throws OpenFailure. */
  return async function open(): Promise<Client> {
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
        return client;
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
            : describeFailure(err);
        errors.push(`${url}: ${reason}`);
        urlRetryAt.set(url, Date.now() + settings.backoff.initial);
        log.debug({ source, url, reason }, 'LDAP server not usable; trying the next URL');
      }
    }
    throw new OpenFailure(errors.join('; '));
  };
}
