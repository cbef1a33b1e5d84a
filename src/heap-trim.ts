// Gives the memory of a burst of cache fills back to the operating system once the burst is over.
//
// Why: filling the cache quickly (a replica's first minutes, a morning of logins, an eviction)
// makes V8 grow its heap for the burst and keep the freed pages pooled afterwards; 100 000
// identities are ~60 MB of heap, yet the process stayed near 400 MB after filling them. After at
// least MIN_FILLS directory lookups, once none has happened for `idleMs`, one full collection
// returns those pages (~0.2 s pause at 100 000 cached users; `cache.trimAfterIdle: 0` turns it off).
// It needs V8's gc(), which node exposes only when started with --expose-gc (as `npm start`, the
// image's CMD and the chart do); no V8 flag is ever changed at runtime.
import type { Logger } from 'pino';

/** Fewer fills than this are not a burst worth a full collection. */
export const MIN_FILLS = 1000;

export type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** V8's own gc(), present only when node was started with --expose-gc. */
const startupGc = (): GcFunction | undefined => (globalThis as { gc?: GcFunction }).gc;

export interface HeapTrimmer {
  /** Called once per directory lookup (a cache fill or a miss). */
  noteFill(): void;
  close(): void;
}

export function createHeapTrimmer(options: { idleMs: number; log: Logger; gc?: GcFunction }): HeapTrimmer {
  const { idleMs, log } = options;
  const gc = options.gc ?? startupGc();
  if (idleMs === 0) return { noteFill() {}, close() {} };
  if (gc === undefined) {
    log.info('node was started without --expose-gc: the heap is not trimmed after bursts of cache fills');
    return { noteFill() {}, close() {} };
  }
  let fills = 0;
  let lastFill = 0;
  let timer: NodeJS.Timeout | undefined;
  let failed = false;

  const trim = () => {
    const before = process.memoryUsage.rss();
    const started = performance.now();
    try {
      gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    } catch (err) {
      // Only memory is at stake: never let the trim take the service down. Not tried again.
      log.warn({ err }, 'could not trim the heap after a burst of cache fills; trimming is off');
      failed = true;
      return;
    }
    const toMB = (bytes: number) => Math.round(bytes / 2 ** 20);
    log.info(
      {
        fills,
        rssBeforeMB: toMB(before),
        rssAfterMB: toMB(process.memoryUsage.rss()),
        pauseMs: Math.round(performance.now() - started),
      },
      'memory of a burst of cache fills returned to the OS',
    );
    fills = 0;
  };

  const check = () => {
    timer = undefined;
    const idle = Date.now() - lastFill;
    if (idle < idleMs) {
      timer = setTimeout(check, idleMs - idle).unref();
      return;
    }
    trim();
  };

  return {
    noteFill() {
      if (failed) return;
      fills += 1;
      lastFill = Date.now();
      if (timer === undefined && fills >= MIN_FILLS) timer = setTimeout(check, idleMs).unref();
    },
    close() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
