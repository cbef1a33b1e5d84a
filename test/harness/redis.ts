// Runs Debian's redis-server for tests and the bench: a temp dir, a free loopback port, no
// persistence (a restart starts empty, like a Redis pod without a volume), and optionally a
// password (requirepass) and a TLS port with a certificate from a test CA made by openssl.
// Stop/start keeps the ports; pause/resume (SIGSTOP/SIGCONT) makes a Redis that accepts
// connections but never answers.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { stopProcess } from './process.js';
import { makeTlsMaterial, type TlsMaterial } from './slapd.js';

const CANDIDATES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'];
export const REDIS_INSTALL_HINT =
  'redis-server is not installed: run `npm run test:deps` (installs the Debian package redis-server).';

export interface RedisHarnessOptions {
  /** requirepass: clients must AUTH with it. */
  password?: string;
  /** Also listen with TLS (a server certificate for 127.0.0.1 signed by a test CA). */
  tls?: boolean;
}

export interface RedisServer {
  /** redis://127.0.0.1:PORT (plain port). */
  readonly url: string;
  readonly port: number;
  /** rediss://127.0.0.1:PORT when started with tls. */
  readonly tlsUrl: string | undefined;
  readonly tls: TlsMaterial | undefined;
  readonly password: string | undefined;
  /** A file holding the password, for passwordFile keys. */
  readonly passwordFile: string | undefined;
  readonly running: boolean;
  readonly pid: number | undefined;
  start(): Promise<void>;
  /** SIGTERM, or SIGKILL (a crash); resolves when the process is gone. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** SIGSTOP: connections stay open, nothing is answered. */
  pause(): void;
  resume(): void;
  /** A client of the test's own (plain port, authenticated), for looking at and poisoning keys. */
  client(): Redis;
  close(): Promise<void>;
}

function findRedis(): string {
  const found = CANDIDATES.find((p) => existsSync(p));
  if (found === undefined) throw new Error(REDIS_INSTALL_HINT);
  return found;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis(options: RedisHarnessOptions = {}): Promise<RedisServer> {
  const binary = findRedis();
  const dir = join(tmpdir(), `idmount-redis-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const tlsPort = options.tls ? await freePort() : undefined;
  const tls = options.tls ? await makeTlsMaterial(join(dir, 'tls')) : undefined;
  const passwordFile = options.password === undefined ? undefined : join(dir, 'password');
  if (passwordFile !== undefined) writeFileSync(passwordFile, `${options.password}\n`, { mode: 0o600 });
  const logFile = join(dir, 'redis.log');
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--logfile',
    logFile,
    ...(options.password !== undefined ? ['--requirepass', options.password] : []),
    ...(tls !== undefined && tlsPort !== undefined
      ? [
          '--tls-port',
          String(tlsPort),
          '--tls-cert-file',
          tls.certFile,
          '--tls-key-file',
          tls.keyFile,
          '--tls-ca-cert-file',
          tls.caFile,
          '--tls-auth-clients',
          'no',
        ]
      : []),
  ];
  let child: ChildProcess | undefined;
  const admins: Redis[] = [];

  const start = async () => {
    if (child !== undefined) return;
    const started = spawn(binary, args, { stdio: 'ignore' });
    child = started;
    started.once('exit', () => {
      if (child === started) child = undefined;
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (started.exitCode !== null) {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
        throw new Error(`redis-server exited with ${started.exitCode}:\n${log}`);
      }
      if ((await listening(port)) && (tlsPort === undefined || (await listening(tlsPort)))) return;
      if (Date.now() > deadline) throw new Error('redis-server did not listen within 10 s');
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    await stopProcess(child, signal);
    child = undefined;
  };

  try {
    await start();
  } catch (err) {
    await stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    tlsUrl: tlsPort === undefined ? undefined : `rediss://127.0.0.1:${tlsPort}`,
    tls,
    password: options.password,
    passwordFile,
    get running() {
      return child !== undefined;
    },
    get pid() {
      return child?.pid;
    },
    start,
    stop,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    client() {
      const admin = new Redis({
        host: '127.0.0.1',
        port,
        ...(options.password !== undefined ? { password: options.password } : {}),
        maxRetriesPerRequest: 1,
      });
      admin.on('error', () => {});
      admins.push(admin);
      return admin;
    },
    async close() {
      for (const admin of admins) admin.disconnect();
      await stop('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
