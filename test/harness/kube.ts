// Runs a real Kubernetes control plane for tests, all on loopback, in a temp dir: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler (one binary,
// $IDMOUNT_CACHE/bin/kube-controlplane, built from test/kube/controlplane by
// scripts/test-deps/55-kubernetes.sh) and kwok, which plays one fake node and its kubelet: pods
// bound to it are marked Running with an IP from a 127.0.0.0/8 pod range, and deleted pods are
// removed. No container runs: what is tested is what the API server admits, stores and reports.
//
// Certificates (a CA, the API server's serving certificate, one client certificate in
// system:masters) and the service-account signing key are made with openssl. Every component and
// the tests talk to the API server with that client certificate, through one kubeconfig.
//
// Shared by the kube tests through a vitest globalSetup (kube-global-setup.ts).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { freePort } from './ports.js';

const run = promisify(execFile);

const INSTALL_HINT = 'run `npm run test:deps` (scripts/test-deps/55-kubernetes.sh builds them with Go)';

/** The fake node kwok manages. */
export const KWOK_NODE = 'kwok-node-0';
/** The node's InternalIP and the pod range kwok hands out: loopback, so nothing leaves the machine. */
export const NODE_IP = '127.0.0.1';
export const POD_CIDR = '127.1.0.0/16';
/** The node's own slice of POD_CIDR (spec.podCIDR), which kwok allocates pod IPs from. */
export const NODE_POD_CIDR = '127.1.0.0/24';
/** Service cluster IPs, loopback as well; the `kubernetes` Service gets its first address. */
export const SERVICE_CIDR = '127.2.0.0/24';

export function kubeBinaries(): { controlplane: string; kwok: string } {
  const bin = join(process.env.IDMOUNT_CACHE ?? join(homedir(), '.cache', 'idmount'), 'bin');
  const controlplane = join(bin, 'kube-controlplane');
  const kwok = join(bin, 'kwok');
  for (const path of [controlplane, kwok]) {
    if (!existsSync(path)) throw new Error(`${path} is missing: ${INSTALL_HINT}.`);
  }
  return { controlplane, kwok };
}

// ---------------------------------------------------------------------------------------------
// A small client: JSON over HTTPS with the kubeconfig's client certificate.

export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: unknown;
}

/** A refusal from the API server: HTTP status and the Status object it sent. */
export class KubeApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: KubeStatus,
  ) {
    super(`${method} ${path}: ${status} ${body.reason ?? ''}: ${body.message ?? JSON.stringify(body)}`);
    this.name = 'KubeApiError';
  }
}

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
}

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are checked by the API server and by tests, not by types.
export type KubeObject = Record<string, any>;

export interface KubeCredentials {
  server: string;
  ca: string;
  cert: string;
  key: string;
}

interface KubeconfigFile {
  clusters?: { name: string; cluster: { server: string; 'certificate-authority-data'?: string } }[];
  users?: { name: string; user: { 'client-certificate-data'?: string; 'client-key-data'?: string } }[];
}

/** Reads the first cluster and user of a kubeconfig that embeds its certificates (as ours does). */
export function readKubeconfig(path: string): KubeCredentials {
  const config = YAML.parse(readFileSync(path, 'utf8')) as KubeconfigFile;
  const cluster = config.clusters?.[0]?.cluster;
  const user = config.users?.[0]?.user;
  const pem = (data: string | undefined, what: string) => {
    if (data === undefined) throw new Error(`${path}: no ${what} (certificates must be embedded)`);
    return Buffer.from(data, 'base64').toString('utf8');
  };
  if (cluster === undefined || user === undefined) throw new Error(`${path}: no cluster or no user`);
  return {
    server: cluster.server,
    ca: pem(cluster['certificate-authority-data'], 'certificate-authority-data'),
    cert: pem(user['client-certificate-data'], 'client-certificate-data'),
    key: pem(user['client-key-data'], 'client-key-data'),
  };
}

export type PatchType = 'merge' | 'strategic' | 'json';
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
};

export class KubeClient {
  private readonly agent: https.Agent;
  readonly server: string;

  constructor(credentials: KubeCredentials) {
    this.server = credentials.server;
    this.agent = new https.Agent({
      ca: credentials.ca,
      cert: credentials.cert,
      key: credentials.key,
      keepAlive: true,
      maxSockets: 8,
    });
  }

  static fromKubeconfig(path: string): KubeClient {
    return new KubeClient(readKubeconfig(path));
  }

  close(): void {
    this.agent.destroy();
  }

  /** One request; the body is parsed as JSON when it is JSON. Never throws for an HTTP status. */
  async request<T = KubeObject>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
    timeoutMs = 30_000,
  ): Promise<KubeResponse<T>> {
    const url = new URL(path, this.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            accept: 'application/json',
            ...(payload === undefined
              ? {}
              : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }),
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json')) {
              try {
                parsed = JSON.parse(text);
              } catch {
                // leave the text as it came
              }
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${url.pathname}: no answer in ${timeoutMs} ms`)),
      );
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  private async ok<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.request<T>(method, path, body, contentType);
    if (res.status < 200 || res.status > 299) {
      const status = typeof res.body === 'object' && res.body !== null ? res.body : { message: res.body };
      throw new KubeApiError(method, path, res.status, status as KubeStatus);
    }
    return res.body;
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.ok('GET', path);
  }

  /** GET that answers undefined for 404. */
  async find<T = KubeObject>(path: string): Promise<T | undefined> {
    const res = await this.request<T>('GET', path);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new KubeApiError('GET', path, res.status, res.body as KubeStatus);
    return res.body;
  }

  /** POST to a collection path (e.g. /api/v1/namespaces/NS/pods); returns the stored object. */
  create<T = KubeObject>(collectionPath: string, object: KubeObject): Promise<T> {
    return this.ok('POST', collectionPath, object);
  }

  patch<T = KubeObject>(path: string, patch: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.ok('PATCH', path, patch, PATCH_CONTENT_TYPES[type]);
  }

  /** DELETE; a missing object is not an error. */
  async delete(path: string, options: KubeObject = {}): Promise<void> {
    const res = await this.request('DELETE', path, { kind: 'DeleteOptions', apiVersion: 'v1', ...options });
    if (res.status !== 404 && (res.status < 200 || res.status > 299)) {
      throw new KubeApiError('DELETE', path, res.status, res.body as KubeStatus);
    }
  }

  /** Creates a namespace with labels (e.g. pod-security.kubernetes.io/enforce). */
  createNamespace(name: string, labels: Record<string, string> = {}): Promise<KubeObject> {
    return this.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels },
    });
  }

  /**
   * A namespace enforcing a Pod Security level (latest), ready for pods: the ServiceAccount
   * admission plugin refuses pods until the controller-manager has made its `default` account.
   */
  async createPodSecurityNamespace(
    name: string,
    level: 'restricted' | 'baseline' | 'privileged',
  ): Promise<void> {
    await this.createNamespace(name, {
      'pod-security.kubernetes.io/enforce': level,
      'pod-security.kubernetes.io/enforce-version': 'latest',
    });
    await this.waitFor(`ServiceAccount ${name}/default`, () =>
      this.find(`/api/v1/namespaces/${name}/serviceaccounts/default`),
    );
  }

  /** Starts deleting a namespace and everything in it; does not wait. */
  deleteNamespace(name: string): Promise<void> {
    return this.delete(`/api/v1/namespaces/${name}`);
  }

  /** Polls `probe` until it returns a value other than undefined; throws with `what` on timeout. */
  async waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        const value = await probe();
        if (value !== undefined) return value;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) {
        const cause = lastError === undefined ? '' : ` (last error: ${(lastError as Error).message})`;
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Certificates and the kubeconfig

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`openssl is not installed: ${INSTALL_HINT}.`);
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? String(err)}`);
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A certificate signed by the test CA (ca.crt/ca.key in dir) with the given extensions. */
async function signedCertificate(dir: string, name: string, subject: string, extensions: string[]) {
  await openssl(dir, [
    'req',
    '-new',
    ...EC_KEY,
    '-subj',
    subject,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  ]);
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
}

async function makePki(dir: string): Promise<void> {
  await openssl(dir, [
    'req',
    '-x509',
    ...EC_KEY,
    '-subj',
    '/CN=idmount test Kubernetes CA',
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  ]);
  const serviceIp = SERVICE_CIDR.replace(/0\/\d+$/, '1');
  await signedCertificate(dir, 'apiserver', '/CN=kube-apiserver', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=IP:127.0.0.1,IP:${serviceIp},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc`,
  ]);
  // system:masters: every component and the tests act as cluster admin.
  await signedCertificate(dir, 'admin', '/O=system:masters/CN=idmount-test-admin', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
  ]);
  // The key the API server signs service-account tokens with (and the controller-manager checks).
  await openssl(dir, [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    'sa.key',
  ]);
  await openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

function writeKubeconfig(dir: string, server: string): string {
  const b64 = (file: string) => readFileSync(join(dir, file)).toString('base64');
  const path = join(dir, 'kubeconfig');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'idmount-test', cluster: { server, 'certificate-authority-data': b64('ca.crt') } }],
    users: [
      {
        name: 'idmount-test-admin',
        user: { 'client-certificate-data': b64('admin.crt'), 'client-key-data': b64('admin.key') },
      },
    ],
    contexts: [{ name: 'idmount-test', context: { cluster: 'idmount-test', user: 'idmount-test-admin' } }],
    'current-context': 'idmount-test',
  };
  writeFileSync(path, YAML.stringify(config), { mode: 0o600 });
  return path;
}

// ---------------------------------------------------------------------------------------------
// kwok's configuration: what the fake kubelet does to nodes and pods (its "stages").

function kwokConfig(): string {
  const stage = (name: string, kind: string, spec: KubeObject) => ({
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'Stage',
    metadata: { name },
    spec: { resourceRef: { apiGroup: 'v1', kind }, ...spec },
  });
  const notDeleted = { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' };
  const docs = [
    {
      apiVersion: 'config.kwok.x-k8s.io/v1alpha1',
      kind: 'KwokConfiguration',
      // kwok fills in no defaults for options a file leaves out: every one it needs is here.
      options: {
        cidr: POD_CIDR,
        nodeIP: NODE_IP,
        nodeLeaseDurationSeconds: 40,
        nodeLeaseParallelism: 2,
        nodePlayStageParallelism: 2,
        podPlayStageParallelism: 2,
        podsOnNodeSyncParallelism: 1,
        enablePodsOnNodeSyncListPager: true,
        enablePodsOnNodeSyncStreamWatch: false,
        manageAllNodes: false,
        enableDebuggingHandlers: false,
        enableContentionProfiling: false,
        enableProfilingHandler: false,
      },
    },
    // A node it manages becomes Ready at once, with room for plenty of pods; kwok then keeps its
    // Lease renewed, which is the heartbeat the node-lifecycle controller watches.
    stage('idmount-node-ready', 'Node', {
      selector: {
        matchExpressions: [
          notDeleted,
          {
            key: '.status.conditions.[] | select( .type == "Ready" ) | .status',
            operator: 'NotIn',
            values: ['True'],
          },
        ],
      },
      next: {
        statusTemplate: [
          '{{ $now := Now }}',
          'phase: Running',
          'addresses:',
          '- type: InternalIP',
          '  address: {{ NodeIP | Quote }}',
          '- type: Hostname',
          '  address: {{ .metadata.name | Quote }}',
          'capacity: {cpu: "16", memory: 64Gi, pods: "110", ephemeral-storage: 100Gi}',
          'allocatable: {cpu: "16", memory: 64Gi, pods: "110", ephemeral-storage: 100Gi}',
          'nodeInfo:',
          '  architecture: amd64',
          '  operatingSystem: linux',
          '  kubeletVersion: kwok',
          'conditions:',
          '- type: Ready',
          '  status: "True"',
          '  reason: KubeletReady',
          '  message: kwok plays this node',
          '  lastHeartbeatTime: {{ $now | Quote }}',
          '  lastTransitionTime: {{ $now | Quote }}',
          ...['MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable'].flatMap((type) => [
            `- type: ${type}`,
            '  status: "False"',
            '  reason: KwokNode',
            '  lastHeartbeatTime: {{ $now | Quote }}',
            '  lastTransitionTime: {{ $now | Quote }}',
          ]),
        ].join('\n'),
      },
    }),
    // A pod bound to the node runs: init containers have completed, every container is running
    // and ready, and the pod has an address from the node's pod range.
    stage('idmount-pod-running', 'Pod', {
      selector: {
        matchExpressions: [
          notDeleted,
          { key: '.status.phase', operator: 'In', values: ['Pending'] },
          { key: '.spec.nodeName', operator: 'Exists' },
        ],
      },
      next: {
        statusTemplate: [
          '{{ $now := Now }}',
          'phase: Running',
          'startTime: {{ $now | Quote }}',
          'conditions:',
          ...['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready'].flatMap((type) => [
            `- type: ${type}`,
            '  status: "True"',
            '  lastTransitionTime: {{ $now | Quote }}',
          ]),
          'initContainerStatuses:',
          '{{ range .spec.initContainers }}',
          '- name: {{ .name | Quote }}',
          '  image: {{ .image | Quote }}',
          '  imageID: ""',
          '  ready: true',
          '  restartCount: 0',
          '  state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}',
          '{{ end }}',
          'containerStatuses:',
          '{{ range .spec.containers }}',
          '- name: {{ .name | Quote }}',
          '  image: {{ .image | Quote }}',
          '  imageID: ""',
          '  ready: true',
          '  started: true',
          '  restartCount: 0',
          '  state: {running: {startedAt: {{ $now | Quote }}}}',
          '{{ end }}',
          '{{ with NodeIPsWith .spec.nodeName }}',
          'hostIP: {{ index . 0 | Quote }}',
          'hostIPs:',
          '{{ range . }}',
          '- ip: {{ . | Quote }}',
          '{{ end }}',
          '{{ end }}',
          '{{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}',
          'podIP: {{ index . 0 | Quote }}',
          'podIPs:',
          '{{ range . }}',
          '- ip: {{ . | Quote }}',
          '{{ end }}',
          '{{ end }}',
        ].join('\n'),
      },
    }),
    // A pod being deleted is gone at once (a kubelet would stop its containers first).
    stage('idmount-pod-delete', 'Pod', {
      selector: { matchExpressions: [{ key: '.metadata.deletionTimestamp', operator: 'Exists' }] },
      next: { finalizers: { empty: true }, delete: true },
    }),
  ];
  return docs.map((doc) => YAML.stringify(doc)).join('---\n');
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Component {
  name: string;
  child: ChildProcess;
  log: string;
  exited?: string;
}

export interface KubeControlPlane {
  /** A kubeconfig (certificates embedded) for cluster-admin access. */
  kubeconfig: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** The fake node's name; pods are scheduled there. */
  nodeName: string;
}

export interface RunningKube extends KubeControlPlane {
  /** The temp dir with certificates, logs and etcd's data (removed by stop()). */
  dir: string;
  client: KubeClient;
  /** Milliseconds from the first spawn until everything below was ready. */
  startMs: number;
  /** Process ids by component, for measurements. */
  pids: Record<string, number>;
  /** The last lines a component wrote (its log in dir). */
  logTail(name: string, chars?: number): string;
  stop(): Promise<void>;
}

function tail(file: string, chars = 4000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.slice(-chars);
  } catch {
    return '';
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

export interface StartKubeOptions {
  /** Keep the temp dir (certificates, logs, etcd data) after stop(), to look at it. */
  keepDir?: boolean;
  /** Milliseconds until the whole stack must be ready. */
  timeoutMs?: number;
}

export async function startKube(options: StartKubeOptions = {}): Promise<RunningKube> {
  const { controlplane, kwok } = kubeBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'idmount-kube-'));
  const components: Component[] = [];
  let client: KubeClient | undefined;
  let stopped = false;

  const spawnComponent = (name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const log = join(dir, `${name}.log`);
    const fd = openSync(log, 'a');
    const child = spawn(command, args, {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    const component: Component = { name, child, log };
    child.once('exit', (code, signal) => {
      component.exited = signal === null ? `code ${code}` : `signal ${signal}`;
    });
    components.push(component);
    return component;
  };

  const stopSync = () => {
    for (const c of components) {
      if (c.child.exitCode === null && c.child.signalCode === null && c.child.pid !== undefined) {
        try {
          process.kill(-c.child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  };
  // If the test process ends without calling stop(), the servers must not outlive it.
  process.once('exit', stopSync);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', stopSync);
    // Dependents first, etcd last.
    for (const c of [...components].reverse()) {
      if (c.child.exitCode !== null || c.child.signalCode !== null || c.child.pid === undefined) continue;
      const gone = new Promise<void>((resolve) => c.child.once('exit', () => resolve()));
      process.kill(-c.child.pid, 'SIGTERM');
      const killer = setTimeout(() => {
        try {
          process.kill(-(c.child.pid as number), 'SIGKILL');
        } catch {
          // already gone
        }
      }, 10_000);
      await gone;
      clearTimeout(killer);
    }
    client?.close();
    if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
  };

  const failure = (what: string) => {
    const logs = components
      .map((c) => `--- ${c.name} (${c.exited ?? 'running'}):\n${tail(c.log, 2500)}`)
      .join('\n');
    return new Error(`Kubernetes control plane: ${what}\n${logs}`);
  };

  const started = Date.now();
  const deadline = started + (options.timeoutMs ?? 120_000);
  const waitUntil = async (what: string, probe: () => Promise<boolean>) => {
    for (;;) {
      const dead = components.find((c) => c.exited !== undefined);
      if (dead !== undefined) throw failure(`${dead.name} exited (${dead.exited}) while waiting for ${what}`);
      if (await probe()) return;
      if (Date.now() > deadline) throw failure(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  try {
    await makePki(dir);
    const [etcdPort, peerPort, apiPort, cmPort, schedulerPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfig = writeKubeconfig(dir, server);
    writeFileSync(join(dir, 'kwok.yaml'), kwokConfig());

    spawnComponent('etcd', controlplane, [
      'etcd',
      '--name=idmount-test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=idmount-test=${peerUrl}`,
      // A throwaway cluster: no fsync, small logs.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitUntil('etcd', () => httpOk(`${etcdUrl}/health`));

    spawnComponent('kube-apiserver', controlplane, [
      'kube-apiserver',
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      // The `kubernetes` Service's endpoints would be 127.0.0.1, which Endpoints may not hold.
      '--endpoint-reconciler-type=none',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      '--tls-cert-file=apiserver.crt',
      '--tls-private-key-file=apiserver.key',
      '--client-ca-file=ca.crt',
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      '--service-account-key-file=sa.pub',
      '--service-account-signing-key-file=sa.key',
      '--profiling=false',
    ]);
    client = KubeClient.fromKubeconfig(kubeconfig);
    const api = client;
    await waitUntil('the API server /readyz', async () => {
      try {
        const res = await api.request<string>('GET', '/readyz', undefined, undefined, 2000);
        return res.status === 200 && res.body === 'ok';
      } catch {
        return false;
      }
    });

    spawnComponent('kube-controller-manager', controlplane, [
      'kube-controller-manager',
      `--kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${cmPort}`,
      `--cert-dir=${join(dir, 'controller-manager-certs')}`,
      '--leader-elect=false',
      '--service-account-private-key-file=sa.key',
      '--root-ca-file=ca.crt',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--profiling=false',
    ]);
    spawnComponent('kube-scheduler', controlplane, [
      'kube-scheduler',
      `--kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${schedulerPort}`,
      `--cert-dir=${join(dir, 'scheduler-certs')}`,
      '--leader-elect=false',
      '--profiling=false',
    ]);
    spawnComponent(
      'kwok',
      kwok,
      [
        `--kubeconfig=${kubeconfig}`,
        `--config=${join(dir, 'kwok.yaml')}`,
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      ],
      { KWOK_WORKDIR: dir },
    );

    await api.create('/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: KWOK_NODE,
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        labels: {
          'kubernetes.io/hostname': KWOK_NODE,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          type: 'kwok',
        },
      },
      spec: { podCIDR: NODE_POD_CIDR, podCIDRs: [NODE_POD_CIDR] },
    });
    await waitUntil(`node ${KWOK_NODE} Ready and untainted`, async () => {
      const node = await api.find(`/api/v1/nodes/${KWOK_NODE}`);
      const ready = (node?.status?.conditions ?? []).some(
        (c: KubeObject) => c.type === 'Ready' && c.status === 'True',
      );
      return ready && (node?.spec?.taints ?? []).length === 0;
    });
    await waitUntil('the ServiceAccount default/default', async () => {
      try {
        return (await api.find('/api/v1/namespaces/default/serviceaccounts/default')) !== undefined;
      } catch {
        return false;
      }
    });

    const pids: Record<string, number> = {};
    for (const c of components) pids[c.name] = c.child.pid as number;
    return {
      dir,
      kubeconfig,
      server,
      nodeName: KWOK_NODE,
      client: api,
      startMs: Date.now() - started,
      pids,
      logTail: (name, chars) => tail(join(dir, `${name}.log`), chars),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
