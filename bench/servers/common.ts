// What every benchmarked server shares, so the comparison is like for like: the same Fastify
// request logging through pino (to /dev/null), the same listen options, the same ready signal.
import pino from 'pino';

/** Both sides log each request at info like a production idmount, but to /dev/null. */
export const benchLogger = () =>
  pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }));

/** The orchestrator (bench/run.ts) waits for this line on stdout. */
export const announce = (address: string) => process.stdout.write(`READY ${address}\n`);

/** Exit cleanly on SIGTERM/SIGINT so `--cpu-prof` writes its profile. */
export const exitOnSignal = (close: () => Promise<unknown>) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      close().finally(() => process.exit(0));
    });
  }
};
