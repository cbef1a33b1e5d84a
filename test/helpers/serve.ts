// Runs the real `idmount serve` as a child process on a free loopback port, with its stdout (the
// pino log) captured: for the contract run, the soak and the log-secrecy tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { freePort } from '../harness/ports.js';

export const ROOT = resolve(import.meta.dirname, '../..');
const CLI = resolve(ROOT, 'src/cli/main.ts');

/** A fresh temporary folder for one service's config, secrets and directory files. */
export const scratchDir = (prefix = 'idmount-serve-') => mkdtempSync(join(tmpdir(), prefix));

/** Writes `doc` as YAML into `dir` and returns the file's path. */
export function writeYaml(dir: string, name: string, doc: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, YAML.stringify(doc));
  return file;
}

export interface RunningService {
  readonly url: string;
  readonly pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resident memory of the service process in bytes (from /proc), or undefined once it is gone. */
  rssBytes(): number | undefined;
  /** SIGTERM and wait for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `idmount serve --config FILE --port P` and resolves once /healthz answers. */
export async function serveIdmount(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<RunningService> {
  const port = await freePort();
  // node --import tsx (not the tsx wrapper): the pid is the server itself, so its RSS is the service's.
  const args = ['--import', 'tsx', CLI, 'serve', '--config', configFile, '--port', String(port)];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, IDMOUNT_CONFIG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    out += chunk;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  // Node 24 + tsx compile on the fly: a cold start takes a few seconds on a busy two-core machine.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`idmount serve exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`idmount serve did not answer /healthz within 30 s:\n${out}`);
    }
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid as number;
  return {
    url,
    pid,
    output: () => out,
    rssBytes() {
      try {
        // /proc/PID/statm: sizes in pages; the second field is the resident set.
        const statm = readFileSync(`/proc/${pid}/statm`, 'utf8');
        return Number(statm.split(' ')[1]) * 4096;
      } catch {
        return undefined;
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Runs a project script under Node with tsx and resolves with its exit code and all its output. */
export async function runScript(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c) => {
    out += c;
  });
  child.stderr.on('data', (c) => {
    out += c;
  });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  return { code, out };
}
