// The trim after a burst of cache fills: when it runs, when it does not, that it reaches V8's real
// collector when node starts with --expose-gc, and that without it nothing changes V8's flags.
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHeapTrimmer, MIN_FILLS } from '../../src/heap-trim.js';

// Fake timers (setTimeout and Date together), so "idle for N ms" is exact on a loaded machine.
const sleep = (ms: number) => vi.advanceTimersByTimeAsync(ms);

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  return { log, lines };
}

function spyGc() {
  const calls: unknown[] = [];
  return { calls, gc: (options: unknown) => void calls.push(options) } as const;
}

describe('heap trim after a burst of cache fills', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs one memory-reducing full collection once the fills have stopped for the idle time', async () => {
    const { log, lines } = capture();
    const { calls, gc } = spyGc();
    const trimmer = createHeapTrimmer({ idleMs: 40, log, gc });
    for (let i = 0; i < MIN_FILLS; i++) trimmer.noteFill();
    expect(calls).toEqual([]);
    await sleep(120);
    expect(calls).toEqual([{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ fills: MIN_FILLS, msg: expect.stringContaining('returned to the OS') });
    expect(lines[0]?.rssAfterMB).toEqual(expect.any(Number));
    // Quiet afterwards: no second collection without a new burst.
    await sleep(120);
    expect(calls).toHaveLength(1);
    trimmer.close();
  });

  it('does not collect for fewer fills than a burst', async () => {
    const { log } = capture();
    const { calls, gc } = spyGc();
    const trimmer = createHeapTrimmer({ idleMs: 20, log, gc });
    for (let i = 0; i < MIN_FILLS - 1; i++) trimmer.noteFill();
    await sleep(100);
    expect(calls).toEqual([]);
    trimmer.close();
  });

  it('waits while fills keep coming', async () => {
    const { log } = capture();
    const { calls, gc } = spyGc();
    const trimmer = createHeapTrimmer({ idleMs: 80, log, gc });
    for (let i = 0; i < MIN_FILLS; i++) trimmer.noteFill();
    for (let i = 0; i < 4; i++) {
      await sleep(40);
      trimmer.noteFill();
    }
    expect(calls).toEqual([]);
    await sleep(200);
    expect(calls).toHaveLength(1);
    trimmer.close();
  });

  it('is off with trimAfterIdle 0, and close() cancels a pending trim', async () => {
    const { log } = capture();
    const off = spyGc();
    const disabled = createHeapTrimmer({ idleMs: 0, log, gc: off.gc });
    for (let i = 0; i < MIN_FILLS * 2; i++) disabled.noteFill();
    const closed = spyGc();
    const trimmer = createHeapTrimmer({ idleMs: 20, log, gc: closed.gc });
    for (let i = 0; i < MIN_FILLS; i++) trimmer.noteFill();
    trimmer.close();
    await sleep(100);
    expect(off.calls).toEqual([]);
    expect(closed.calls).toEqual([]);
  });

  it('logs a collector that fails instead of throwing from its timer, and does not try again', async () => {
    const { log, lines } = capture();
    let calls = 0;
    const trimmer = createHeapTrimmer({
      idleMs: 20,
      log,
      gc: () => {
        calls += 1;
        throw new Error('no collector here');
      },
    });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < MIN_FILLS; i++) trimmer.noteFill();
      await sleep(100);
    }
    expect(calls).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: expect.stringContaining('trimming is off') });
    trimmer.close();
  });

  it('is off without --expose-gc, says so once, and never turns a V8 flag on', () => {
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    const { log, lines } = capture();
    const trimmer = createHeapTrimmer({ idleMs: 10, log });
    for (let i = 0; i < MIN_FILLS; i++) trimmer.noteFill();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: expect.stringContaining('without --expose-gc') });
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    trimmer.close();
  });

  it("trims with V8's collector when node is started with --expose-gc (as npm start and the image are)", () => {
    const module = new URL('../../src/heap-trim.ts', import.meta.url).href;
    const script = `
      const { createHeapTrimmer, MIN_FILLS } = await import(${JSON.stringify(module)});
      const lines = [];
      const log = { info: (o, m) => lines.push({ ...(typeof o === 'object' ? o : {}), msg: m ?? o }), warn: () => {} };
      const trimmer = createHeapTrimmer({ idleMs: 10, log });
      for (let i = 0; i < MIN_FILLS; i++) trimmer.noteFill();
      for (let waited = 0; lines.length === 0 && waited < 10000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      process.stdout.write(JSON.stringify(lines));
    `;
    const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.stderr).toBe('');
    const lines = JSON.parse(run.stdout) as { msg: string; pauseMs?: number }[];
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: expect.stringContaining('returned to the OS'),
      pauseMs: expect.any(Number),
    });
  });
});
