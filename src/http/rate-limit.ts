// Per-caller request budget: a fixed window per authenticated principal, so a leaked or runaway
// token cannot starve the hub. The authentication hook (./auth.ts) counts every request once the
// caller is known; it runs on every spawn, so it is a map lookup and an increment — no promise, no
// extra response headers; a caller past its budget gets 429 with Retry-After.
import { LRUCache } from 'lru-cache';

interface Window {
  start: number;
  count: number;
}

export interface RateLimitOptions {
  /** Requests per caller per window. */
  max: number;
  windowMs: number;
  /** Callers remembered at once; the least recent beyond this start a fresh window. */
  callers?: number;
  now?: () => number;
}

/** Counts one request for `caller`; returns 0 when it is within budget, else the seconds to wait. */
export function createRateLimiter(options: RateLimitOptions): (caller: string) => number {
  const { max, windowMs } = options;
  const now = options.now ?? Date.now;
  const windows = new LRUCache<string, Window>({ max: options.callers ?? 10_000 });
  return (caller) => {
    const t = now();
    let window = windows.get(caller);
    if (window === undefined || t - window.start >= windowMs) {
      window = { start: t, count: 0 };
      windows.set(caller, window);
    }
    window.count++;
    return window.count <= max ? 0 : Math.max(1, Math.ceil((window.start + windowMs - t) / 1000));
  };
}
