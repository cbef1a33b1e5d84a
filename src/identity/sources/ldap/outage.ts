// A source's health: up, or down since when and why; while down, lookups fail fast for a jittered
// exponential backoff instead of hammering the directory, and a background probe brings the
// health back without waiting for traffic.
import type { Logger } from 'pino';
import type { SourceHealth } from '../../types.js';
import type { LdapConnectionSettings } from './config.js';

export function createOutageTracker(
  source: string,
  backoff: LdapConnectionSettings['backoff'],
  log: Logger,
  /** Tries to reach the directory once; resolves when it answered. */
  probe: () => Promise<unknown>,
  /** Only failures that mean "cannot be asked" count as an outage. */
  isOutage: (err: unknown) => boolean,
  describe: (err: unknown) => string,
) {
  let health: SourceHealth = { up: true, since: new Date().toISOString() };
  let failures = 0;
  let retryAt = 0;
  let probeTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const up = () => {
    failures = 0;
    retryAt = 0;
    if (!health.up) {
      log.info({ source }, 'directory is reachable again');
      health = { up: true, since: new Date().toISOString() };
    }
  };

  const schedule = (wait: number) => {
    if (probeTimer !== undefined || closed) return;
    probeTimer = setTimeout(() => {
      probeTimer = undefined;
      if (closed || health.up) return;
      probe().then(up, (err) => {
        if (isOutage(err)) down(describe(err));
      });
    }, wait);
    probeTimer.unref();
  };

  const down = (reason: string) => {
    if (!health.up && Date.now() < retryAt) {
      // Requests that were already in flight when the directory went down: same outage, same
      // wait, and the reason that declared the outage stays the one reported.
      schedule(retryAt - Date.now());
      return;
    }
    failures += 1;
    // Exponential from `initial`, capped at `max`, with full jitter in [50%, 100%] so replicas
    // that saw the outage together do not come back in lock step.
    const ceiling = Math.min(backoff.max, backoff.initial * 2 ** Math.min(failures - 1, 20));
    const wait = Math.round(ceiling * (0.5 + Math.random() * 0.5));
    retryAt = Date.now() + wait;
    const since = health.up ? new Date().toISOString() : health.since;
    health = { up: false, since, lastError: reason };
    if (failures === 1) log.warn({ source, reason }, 'directory is down');
    schedule(wait);
  };

  return {
    up,
    down,
    /** True while the directory is down and the backoff has not run out: fail fast. */
    waiting: () => !health.up && Date.now() < retryAt,
    retryAfterSeconds: () => Math.max(1, Math.ceil((retryAt - Date.now()) / 1000)),
    health: () => health,
    close() {
      closed = true;
      if (probeTimer !== undefined) clearTimeout(probeTimer);
    },
  };
}
