// Stopping a server a test started (slapd, redis-server): the signal, then its exit, awaited. A
// server a test paused (SIGSTOP) is resumed first, so that it can act on the signal.
import type { ChildProcess } from 'node:child_process';

export async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGCONT');
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}
