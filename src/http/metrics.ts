// Prometheus metrics, one registry per app instance (tests build many apps in one process).
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ResolverEvents } from '../identity/cache/resolver.js';
import type { SharedTierEvents } from '../identity/cache/shared-tier.js';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'idmount_' });
  const lookups = new Counter({
    name: 'idmount_lookups_total',
    help: 'Directory lookups (cache misses) by result.',
    labelNames: ['result'] as const,
    registers: [registry],
    collect: () => flushLookups(),
  });
  const lookupSeconds = new Histogram({
    name: 'idmount_lookup_duration_seconds',
    help: 'Time to ask the source chain for one user.',
    labelNames: ['result'] as const,
    // Directory round trips: sub-millisecond (file) to seconds (a slow LDAP server before timeout).
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
    collect: () => flushLookups(),
  });
  // Each result's series bound once and exported at 0 from the start, as Prometheus advises (a
  // series that appears only with its first failure hides the failure from rate()).
  const seriesFor = (result: Parameters<ResolverEvents['lookup']>[0]) => {
    lookupSeconds.zero({ result });
    const count = lookups.labels(result);
    count.inc(0);
    return { count, seconds: lookupSeconds.labels(result) };
  };
  const byResult = {
    found: seriesFor('found'),
    not_found: seriesFor('not_found'),
    invalid: seriesFor('invalid'),
    unavailable: seriesFor('unavailable'),
  };
  // A lookup's duration waits in a plain list and reaches prom-client when Prometheus scrapes (or
  // every LOOKUP_BATCH lookups): prom-client checks and hashes the labels on every observe, which
  // cost more per miss than the rest of its bookkeeping. The figures are exact at every scrape.
  const LOOKUP_BATCH = 256;
  const pendingSeconds = { found: [], not_found: [], invalid: [], unavailable: [] } as Record<
    keyof typeof byResult,
    number[]
  >;
  const flushResult = (result: keyof typeof byResult) => {
    const waiting = pendingSeconds[result];
    if (waiting.length === 0) return;
    const series = byResult[result];
    series.count.inc(waiting.length);
    for (const seconds of waiting) series.seconds.observe(seconds);
    waiting.length = 0;
  };
  function flushLookups() {
    for (const result of Object.keys(byResult) as (keyof typeof byResult)[]) flushResult(result);
  }
  // Every spawn counts one cache outcome: the hot path adds to a plain number, and the counter
  // takes the sum when Prometheus scrapes (prom-client's collect), not a label lookup per request.
  const pending = { hit: 0, miss: 0, refresh: 0, stale: 0, shared: 0, negative: 0 };
  new Counter({
    name: 'idmount_cache_requests_total',
    help: 'Resolutions by cache outcome: hit, miss, refresh (hit + background refresh), stale, shared (a local miss the shared tier answered), negative.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      for (const state of Object.keys(pending) as (keyof typeof pending)[]) {
        this.inc({ state }, pending[state]);
        pending[state] = 0;
      }
    },
  });
  // The shared tier is asked only on a local miss: counting there directly costs nothing that shows.
  const counter = <L extends string>(name: string, help: string, label: L, values: readonly string[]) => {
    const c = new Counter({ name, help, labelNames: [label] as const, registers: [registry] });
    for (const value of values) c.inc({ [label]: value } as Record<L, string>, 0);
    return (value: string) => c.inc({ [label]: value } as Record<L, string>);
  };
  const sharedReads = counter(
    'idmount_shared_tier_reads_total',
    'Reads of the shared cache tier on a local miss: hit, miss, refused (failed the schema), error (failed or timed out), skipped (tier down or paused after a failure).',
    'result',
    ['hit', 'miss', 'refused', 'error', 'skipped'],
  );
  const sharedWrites = counter(
    'idmount_shared_tier_writes_total',
    'Entries written to the shared cache tier after a directory lookup: ok, error, skipped (tier down or too many writes waiting).',
    'result',
    ['ok', 'error', 'skipped'],
  );
  const sharedRefused = counter(
    'idmount_shared_entries_refused_total',
    'Entries read from the shared cache tier and dropped (the directory was asked instead): schema (malformed), clock (stamped in the future), plan (policy or the plan checks refused it).',
    'reason',
    ['schema', 'clock', 'plan'],
  );
  const evictionsReceived = new Counter({
    name: 'idmount_shared_tier_evictions_received_total',
    help: 'Evictions made on other replicas that reached this one through the shared cache tier.',
    registers: [registry],
  });
  const sharedEvents: SharedTierEvents = {
    read: sharedReads,
    write: sharedWrites,
    refused: sharedRefused,
    evictionReceived: () => evictionsReceived.inc(),
  };
  const events: ResolverEvents = {
    cache: (state) => {
      pending[state]++;
    },
    sharedRejected: sharedRefused,
    lookup: (result, seconds) => {
      const waiting = pendingSeconds[result];
      waiting.push(seconds);
      if (waiting.length >= LOOKUP_BATCH) flushResult(result);
    },
  };
  return {
    registry,
    events,
    sharedEvents,
    /** Gauges read at scrape time from live state (cache size, source health, the shared tier). */
    observe(read: {
      cacheEntries: () => number;
      sources: () => { name: string; type: string; up: boolean }[];
      shared?: (() => boolean) | undefined;
    }) {
      const sharedUp = read.shared;
      if (sharedUp !== undefined) {
        new Gauge({
          name: 'idmount_shared_tier_up',
          help: '1 while the shared cache tier (Redis) answers, 0 while it is down or paused after a failure (spawns are then answered from this replica and the directory).',
          registers: [registry],
          collect() {
            this.set(sharedUp() ? 1 : 0);
          },
        });
      }
      new Gauge({
        name: 'idmount_cache_entries',
        help: 'Identities (and negative answers) held in this replica.',
        registers: [registry],
        collect() {
          this.set(read.cacheEntries());
        },
      });
      new Gauge({
        name: 'idmount_source_up',
        help: '1 when the directory source answered its last operation, 0 when it is down.',
        labelNames: ['source', 'type'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const s of read.sources()) this.set({ source: s.name, type: s.type }, s.up ? 1 : 0);
        },
      });
    },
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ReturnType<typeof createMetrics>;
  }
}

export const metricsPlugin = fp(
  async (app) => {
    app.decorate('metrics', createMetrics());
  },
  { name: 'idmount-metrics' },
);
