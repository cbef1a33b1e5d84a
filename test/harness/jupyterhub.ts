// A real JupyterHub for the end-to-end tests and the spawn bench: `.venv/bin/jupyterhub` with
// test/hub/jupyterhub_config.py (z2jh's jupyterhub_config.py, reduced to what reaches a user pod;
// hub.extraConfig exec'd last as z2jh does), KubeSpawner talking to a real API server through a
// kubeconfig (KUBECONFIG, which KubeSpawner's load_config reads), configurable-http-proxy from
// node_modules started by the hub, all on free 127.0.0.1 ports, in a temp dir removed by stop().
//
// The tests drive it through the REST API with the token of a service granted admin:users and
// admin:servers (z2jh's auth.type dummy is the authenticator, for people looking at it by hand).
// A pod kwok marks Running has an IP in 127.1.0.0/16; startSingleuser() plays the container:
// `.venv/bin/jupyterhub-singleuser` on that IP and port with the stored pod's environment.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type KubeObject, readKubeconfig } from './kube.js';
import { freePort } from './ports.js';

const ROOT = resolve(import.meta.dirname, '../..');
const VENV_BIN = join(ROOT, '.venv/bin');
const NODE_BIN = join(ROOT, 'node_modules/.bin');

export interface HubOptions {
  /** The kubeconfig KubeSpawner uses. */
  kubeconfig: string;
  /** The namespace user pods go to. */
  namespace: string;
  /** z2jh values: the site's, with `idmount render-extra-config`'s fragment merged (or not). */
  values: KubeObject;
  /** Extra environment for the hub process (z2jh's hub.extraEnv), e.g. IDMOUNT_TOKEN. */
  env?: Record<string, string>;
  /** KubeSpawner.http_timeout (s): how long the hub waits for a started server to answer. */
  httpTimeout?: number;
  /** Milliseconds until the hub must answer its API. */
  timeoutMs?: number;
}

export interface HubResponse<T = KubeObject> {
  status: number;
  body: T;
}

export interface RunningHub {
  /** The proxy's public URL, http://127.0.0.1:PORT */
  url: string;
  /** The hub's own URL (what pods get as JUPYTERHUB_API_URL's base). */
  hubUrl: string;
  dir: string;
  pid: number;
  /** A REST API call under /hub/api with the admin service's token. */
  api<T = KubeObject>(method: string, path: string, body?: unknown): Promise<HubResponse<T>>;
  logTail(chars?: number): string;
  stop(): Promise<void>;
}

export function hubBinaries(): { jupyterhub: string; singleuser: string; proxy: string } {
  const jupyterhub = join(VENV_BIN, 'jupyterhub');
  const singleuser = join(VENV_BIN, 'jupyterhub-singleuser');
  const proxy = join(NODE_BIN, 'configurable-http-proxy');
  for (const path of [jupyterhub, singleuser]) {
    if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run test:deps\``);
  }
  if (!existsSync(proxy)) throw new Error(`${proxy} is missing: run \`npm ci\``);
  return { jupyterhub, singleuser, proxy };
}

function tail(file: string, chars = 4000): string {
  try {
    return readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}

/** node_modules/.bin first (the project's Node 24 runs configurable-http-proxy), then the venv. */
const childPath = () => [NODE_BIN, VENV_BIN, process.env.PATH ?? ''].join(':');

/** Stops a detached child's process group: SIGTERM, then SIGKILL after `graceMs`. */
async function stopGroup(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const killer = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, graceMs);
  await gone;
  clearTimeout(killer);
}

function killGroupSync(child: ChildProcess) {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export async function startHub(options: HubOptions): Promise<RunningHub> {
  const { jupyterhub, proxy } = hubBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'idmount-hub-'));
  const [publicPort, hubPort, proxyApiPort] = [await freePort(), await freePort(), await freePort()];
  const apiToken = randomBytes(24).toString('hex');
  const hubUrl = `http://127.0.0.1:${hubPort}`;
  const settings = {
    values: options.values,
    hub: {
      dir,
      namespace: options.namespace,
      public_url: `http://127.0.0.1:${publicPort}/`,
      hub_bind_url: `${hubUrl}/`,
      proxy_api_url: `http://127.0.0.1:${proxyApiPort}`,
      proxy_auth_token: randomBytes(24).toString('hex'),
      proxy_command: proxy,
      api_token: apiToken,
      dummy_password: randomBytes(12).toString('hex'),
      http_timeout: options.httpTimeout ?? 30,
    },
  };
  const settingsFile = join(dir, 'settings.json');
  writeFileSync(settingsFile, JSON.stringify(settings), { mode: 0o600 });
  const log = join(dir, 'jupyterhub.log');
  const fd = openSync(log, 'a');
  const child = spawn(jupyterhub, ['-f', join(ROOT, 'test/hub/jupyterhub_config.py')], {
    cwd: dir,
    env: {
      ...process.env,
      ...options.env,
      PATH: childPath(),
      KUBECONFIG: options.kubeconfig,
      IDMOUNT_E2E_SETTINGS: settingsFile,
      PYTHONDONTWRITEBYTECODE: '1',
    },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = signal === null ? `code ${code}` : `signal ${signal}`;
  });
  const onExit = () => killGroupSync(child);
  process.once('exit', onExit);

  const url = `http://127.0.0.1:${publicPort}`;
  const api = async <T>(method: string, path: string, body?: unknown): Promise<HubResponse<T>> => {
    const res = await fetch(`${hubUrl}/hub/api${path}`, {
      method,
      headers: {
        authorization: `token ${apiToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // leave the text as it came
    }
    return { status: res.status, body: parsed as T };
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    // SIGTERM to the group: the hub stops the proxy it started, and the proxy goes with the group.
    await stopGroup(child);
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  try {
    for (;;) {
      if (exited !== undefined) throw new Error(`jupyterhub exited (${exited}):\n${tail(log)}`);
      const ready = await api('GET', '/user').then(
        (r) => r.status === 200,
        () => false,
      );
      // The proxy answers too (the hub adds its own route once the proxy is up).
      if (
        ready &&
        (await fetch(`${url}/hub/api/`).then(
          (r) => r.ok,
          () => false,
        ))
      )
        break;
      if (Date.now() > deadline) throw new Error(`jupyterhub did not answer in time:\n${tail(log)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    hubUrl,
    dir,
    pid: child.pid as number,
    api,
    logTail: (chars) => tail(log, chars),
    stop,
  };
}

export interface RunningSingleuser {
  url: string;
  logTail(chars?: number): string;
  stop(): Promise<void>;
}

/**
 * Plays the notebook container of a stored pod: `jupyterhub-singleuser` with the container's
 * environment (the JUPYTERHUB_* variables KubeSpawner put there), listening on the pod's IP (a
 * loopback address from kwok) and the port in JUPYTERHUB_SERVICE_URL, in a temp dir as HOME.
 */
export async function startSingleuser(pod: KubeObject): Promise<RunningSingleuser> {
  const { singleuser } = hubBinaries();
  const podIP: string | undefined = pod.status?.podIP;
  if (podIP === undefined || !podIP.startsWith('127.')) {
    throw new Error(
      `pod ${pod.metadata?.name} has no loopback IP (${podIP}): is it Running on the kwok node?`,
    );
  }
  const container =
    (pod.spec.containers as KubeObject[]).find((c) => c.name === 'notebook') ?? pod.spec.containers[0];
  const env: Record<string, string> = {};
  for (const entry of (container.env ?? []) as KubeObject[]) {
    if (typeof entry.value === 'string') env[entry.name] = entry.value;
  }
  const service = new URL(env.JUPYTERHUB_SERVICE_URL ?? 'http://0.0.0.0:8888/');
  // The container would listen on every interface of its own network namespace; here the pod's
  // loopback IP stands for it.
  service.hostname = podIP;
  const dir = mkdtempSync(join(tmpdir(), 'idmount-singleuser-'));
  mkdirSync(join(dir, 'home'));
  const log = join(dir, 'singleuser.log');
  const fd = openSync(log, 'a');
  const args = [`--ServerApp.root_dir=${join(dir, 'home')}`];
  // The container runs as the plan's uid; the test process may be root, which jupyter_server refuses.
  if (process.getuid?.() === 0) args.push('--allow-root');
  const child = spawn(singleuser, args, {
    cwd: join(dir, 'home'),
    env: {
      PATH: childPath(),
      LANG: process.env.LANG ?? 'C.UTF-8',
      ...env,
      JUPYTERHUB_SERVICE_URL: service.toString(),
      HOME: join(dir, 'home'),
      JUPYTER_CONFIG_DIR: join(dir, 'config'),
      JUPYTER_DATA_DIR: join(dir, 'data'),
      JUPYTER_RUNTIME_DIR: join(dir, 'runtime'),
      PYTHONDONTWRITEBYTECODE: '1',
    },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  const onExit = () => killGroupSync(child);
  process.once('exit', onExit);
  return {
    url: service.toString(),
    logTail: (chars) => tail(log, chars),
    async stop() {
      process.removeListener('exit', onExit);
      await stopGroup(child, 5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A watch on pods, for when a pod appeared and went, to the millisecond.

export interface PodEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** performance.now() when the event arrived. */
  at: number;
  pod: KubeObject;
}

export interface PodWatch {
  /** Resolves with the first event for namespace/name matching `type` (past events included). */
  next(namespace: string, name: string, type: PodEvent['type'], timeoutMs?: number): Promise<PodEvent>;
  close(): void;
}

/**
 * Watches every pod of the cluster (GET /api/v1/pods?watch=1 from the current resourceVersion):
 * each event is stamped with performance.now() as it arrives, so "the pod exists in the API
 * server" is timed to the event's delivery, not to creationTimestamp's whole seconds.
 */
export async function watchPods(kubeconfig: string): Promise<PodWatch> {
  const credentials = readKubeconfig(kubeconfig);
  const agent = new https.Agent({ ca: credentials.ca, cert: credentials.cert, key: credentials.key });
  const get = (path: string) =>
    new Promise<import('node:http').IncomingMessage>((resolveRes, reject) => {
      const req = https.get(new URL(path, credentials.server), {
        agent,
        headers: { accept: 'application/json' },
      });
      req.on('response', resolveRes);
      req.on('error', reject);
    });
  const list = await get('/api/v1/pods?limit=1');
  const chunks: Buffer[] = [];
  for await (const chunk of list) chunks.push(chunk as Buffer);
  const resourceVersion = JSON.parse(Buffer.concat(chunks).toString('utf8')).metadata.resourceVersion;
  const events: PodEvent[] = [];
  const waiters: { match: (e: PodEvent) => boolean; resolve: (e: PodEvent) => void }[] = [];
  const stream = await get(
    `/api/v1/pods?watch=1&allowWatchBookmarks=false&resourceVersion=${resourceVersion}`,
  );
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    const at = performance.now();
    buffered += text;
    let newline = buffered.indexOf('\n');
    while (newline !== -1) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
      if (line.trim() === '') continue;
      const { type, object } = JSON.parse(line) as { type: PodEvent['type']; object: KubeObject };
      const event = { type, at, pod: object };
      events.push(event);
      for (let i = waiters.length - 1; i >= 0; i--) {
        const waiter = waiters[i] as (typeof waiters)[number];
        if (waiter.match(event)) {
          waiters.splice(i, 1);
          waiter.resolve(event);
        }
      }
    }
  });
  stream.on('error', () => undefined);
  return {
    next(namespace, name, type, timeoutMs = 60_000) {
      const match = (e: PodEvent) =>
        e.type === type && e.pod.metadata?.namespace === namespace && e.pod.metadata?.name === name;
      const past = events.find(match);
      if (past !== undefined) return Promise.resolve(past);
      return new Promise((resolveEvent, reject) => {
        const timer = setTimeout(() => {
          const index = waiters.findIndex((w) => w.resolve === done);
          if (index !== -1) waiters.splice(index, 1);
          reject(new Error(`no ${type} event for pod ${namespace}/${name} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (e: PodEvent) => {
          clearTimeout(timer);
          resolveEvent(e);
        };
        waiters.push({ match, resolve: done });
      });
    },
    close() {
      stream.destroy();
      agent.destroy();
    },
  };
}
