// Renders the Zero-to-JupyterHub values fragment that wires idmount into a hub: the KubeSpawner
// subclass from templates/idmount_spawner.py (its constants block filled in), the token from a
// Kubernetes Secret, the hub's egress to idmount, and fsGid off.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';

export interface RenderOptions {
  /** The idmount Service URL as the hub reaches it, e.g. http://idmount.jhub.svc:8080. */
  url: string;
  /** Kubernetes Secret holding the hub's bearer token, and its key. */
  tokenSecret: string;
  tokenSecretKey: string;
  /** Hub environment variable the token is passed in. */
  tokenEnv: string;
  /** Seconds; both well under KubeSpawner's start_timeout. */
  connectTimeout: number;
  requestTimeout: number;
  attempts: number;
  /** Add the init container that writes the user's passwd/group entries. */
  nssInitContainer: boolean;
  /** Image for that init container; null means the notebook's own image. */
  nssImage: string | null;
  /** Where the idmount pods run, for the hub's egress NetworkPolicy rule. */
  namespace: string | null;
  release: string | null;
  podPort: number;
  /**
   * The site's own z2jh values (its config.yaml), when given: Helm replaces lists rather than
   * merging them, so the fragment's lists then hold the site's entries beside idmount's.
   */
  siteValues?: SiteValues | null;
}

/** The parts of a site's z2jh values the fragment must not make Helm lose. */
interface SiteValues {
  hub?: { networkPolicy?: { egress?: unknown[] }; extraEnv?: unknown };
}

export class RenderUsageError extends Error {
  override name = 'RenderUsageError';
}

export const RENDER_USAGE = `Usage: idmount render-extra-config --url URL [options]

Prints a Zero-to-JupyterHub values fragment (YAML) to merge into the hub's config.yaml.

  --url URL                 idmount's Service URL as the hub reaches it (http or https), required
  --token-secret NAME       Secret holding the hub's token (default: idmount-hub-token)
  --token-secret-key KEY    key in that Secret (default: token)
  --token-env NAME          hub environment variable for the token (default: IDMOUNT_TOKEN)
  --namespace NS            namespace of the idmount pods, when not the hub's own
  --release NAME            Helm release name of idmount (narrows the egress rule to its pods)
  --pod-port N              idmount's container port for the egress rule (default: the URL's port, else 8080)
  --connect-timeout SEC     connect timeout per attempt (default: 3)
  --request-timeout SEC     request timeout per attempt (default: 10)
  --attempts N              attempts on connection errors and 503 (default: 3)
  --nss-image IMAGE         image for the passwd/group init container (default: the notebook's image)
  --no-nss-init-container   do not add the passwd/group init container
  --values FILE             the site's z2jh config.yaml: lists in the fragment (hub.networkPolicy.egress,
                            a list-form hub.extraEnv) then keep the site's entries, since Helm replaces lists`;

const TEMPLATE_CANDIDATES = [
  // From src/spawner/render.ts (tsx) and from the built dist/.../spawner/render.js.
  new URL('./templates/idmount_spawner.py', import.meta.url),
  new URL('../../src/spawner/templates/idmount_spawner.py', import.meta.url),
  new URL('../../../src/spawner/templates/idmount_spawner.py', import.meta.url),
];

export function spawnerTemplate(): string {
  const found = TEMPLATE_CANDIDATES.find((candidate) => existsSync(fileURLToPath(candidate)));
  if (found === undefined)
    throw new Error('the spawner template idmount_spawner.py is missing from this install');
  return readFileSync(found, 'utf8');
}

const BLOCK_START = '# --- rendered by idmount render-extra-config ---';
const BLOCK_END = '# --- end rendered ---';

/** A Python literal for a string, number, boolean or null (JSON string escapes are valid Python). */
function pythonLiteral(value: string | number | boolean | null): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
  return JSON.stringify(value);
}

/** Replaces each `NAME = ...` line of the marked block; every constant must be there exactly once. */
export function renderSpawnerPython(options: RenderOptions, template = spawnerTemplate()): string {
  const constants: Record<string, string | number | boolean | null> = {
    IDMOUNT_URL: options.url,
    IDMOUNT_TOKEN_ENV: options.tokenEnv,
    IDMOUNT_CONNECT_TIMEOUT: options.connectTimeout,
    IDMOUNT_REQUEST_TIMEOUT: options.requestTimeout,
    IDMOUNT_ATTEMPTS: options.attempts,
    IDMOUNT_NSS_INIT_CONTAINER: options.nssInitContainer,
    IDMOUNT_NSS_IMAGE: options.nssImage,
  };
  const lines = template.split('\n');
  const start = lines.indexOf(BLOCK_START);
  const end = lines.indexOf(BLOCK_END);
  if (start < 0 || end < start) throw new Error('the spawner template has no rendered-constants block');
  const seen = new Set<string>();
  for (let i = start + 1; i < end; i++) {
    const name = /^([A-Z_]+) = /.exec(lines[i] ?? '')?.[1];
    if (name === undefined || !(name in constants) || seen.has(name)) {
      throw new Error(`unexpected line ${i + 1} in the spawner template's rendered block: ${lines[i]}`);
    }
    seen.add(name);
    lines[i] = `${name} = ${pythonLiteral(constants[name] ?? null)}`;
  }
  const missing = Object.keys(constants).filter((name) => !seen.has(name));
  if (missing.length > 0) throw new Error(`the spawner template does not define ${missing.join(', ')}`);
  return lines.join('\n');
}

/** The values fragment as a plain object (YAML-serialised by renderExtraConfig). */
export function extraConfigValues(options: RenderOptions, template?: string) {
  const podLabels: Record<string, string> = { 'app.kubernetes.io/name': 'idmount' };
  if (options.release !== null) podLabels['app.kubernetes.io/instance'] = options.release;
  const peer: Record<string, unknown> = { podSelector: { matchLabels: podLabels } };
  if (options.namespace !== null) {
    peer.namespaceSelector = { matchLabels: { 'kubernetes.io/metadata.name': options.namespace } };
  }
  const site = options.siteValues?.hub;
  const ours = { to: [peer], ports: [{ port: options.podPort, protocol: 'TCP' }] };
  // The site's egress rules first, each once; a rule to idmount's pods from an earlier render goes.
  const isOurs = (rule: unknown) => JSON.stringify(rule).includes('"app.kubernetes.io/name":"idmount"');
  const egress = [...(site?.networkPolicy?.egress ?? []).filter((rule) => !isOurs(rule)), ours];
  const secretRef = { secretKeyRef: { name: options.tokenSecret, key: options.tokenSecretKey } };
  // z2jh takes hub.extraEnv as a map or as a list of env entries; keep the site's form.
  const extraEnv = Array.isArray(site?.extraEnv)
    ? [
        ...site.extraEnv.filter((e) => (e as { name?: unknown })?.name !== options.tokenEnv),
        { name: options.tokenEnv, valueFrom: secretRef },
      ]
    : { [options.tokenEnv]: { valueFrom: secretRef } };
  return {
    hub: {
      extraConfig: { idmount: renderSpawnerPython(options, template) },
      extraEnv,
      networkPolicy: { egress },
    },
    // NFS ownership comes from the user's uid/gid; z2jh's default fsGroup 100 would chown-walk it.
    singleuser: { fsGid: null },
  };
}

export function renderExtraConfig(options: RenderOptions, template?: string): string {
  const header =
    options.siteValues == null
      ? '# Generated by `idmount render-extra-config`. Merge into your z2jh config.yaml\n' +
        '# (hub.networkPolicy.egress is a list: Helm replaces lists, so render with --values\n' +
        '# config.yaml to keep your own rules, or add them next to this one).\n'
      : '# Generated by `idmount render-extra-config --values`: give it to helm after your\n' +
        '# config.yaml (-f config.yaml -f this.yaml); its lists already hold your entries.\n';
  return header + YAML.stringify(extraConfigValues(options, template), { lineWidth: 0 });
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Kubernetes object names (Secrets, namespaces, releases) are DNS-1123 subdomains or labels.
const DNS_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

function seconds(flag: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    throw new RenderUsageError(
      `${flag} must be a number of seconds above 0 and at most ${max}, got '${raw}'`,
    );
  }
  return value;
}

function integer(flag: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RenderUsageError(`${flag} must be a whole number from ${min} to ${max}, got '${raw}'`);
  }
  return value;
}

function matching(flag: string, raw: string | undefined, pattern: RegExp, what: string): string | undefined {
  if (raw !== undefined && !pattern.test(raw))
    throw new RenderUsageError(`${flag} must be ${what}, got '${raw}'`);
  return raw;
}

/** Parses the command's arguments; throws RenderUsageError with a sentence on bad input. */
export function parseRenderArgs(argv: string[]): RenderOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        'token-secret': { type: 'string' },
        'token-secret-key': { type: 'string' },
        'token-env': { type: 'string' },
        namespace: { type: 'string' },
        release: { type: 'string' },
        'pod-port': { type: 'string' },
        'connect-timeout': { type: 'string' },
        'request-timeout': { type: 'string' },
        attempts: { type: 'string' },
        'nss-image': { type: 'string' },
        'no-nss-init-container': { type: 'boolean' },
        values: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new RenderUsageError((err as Error).message);
  }
  const str = (key: string) => values[key] as string | undefined;

  const rawUrl = str('url');
  if (rawUrl === undefined)
    throw new RenderUsageError('--url is required (the idmount Service URL the hub calls)');
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new RenderUsageError(`--url is not a URL: '${rawUrl}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RenderUsageError(`--url must be http or https, got '${url.protocol.replace(/:$/, '')}'`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new RenderUsageError(
      '--url must not carry credentials, a query or a fragment (the token comes from a Secret)',
    );
  }

  const nssImage = str('nss-image');
  if (nssImage !== undefined && (nssImage === '' || /\s/.test(nssImage))) {
    throw new RenderUsageError(`--nss-image must be an image reference without spaces, got '${nssImage}'`);
  }
  const connectTimeout = seconds('--connect-timeout', str('connect-timeout'), 3, 30);
  const requestTimeout = seconds('--request-timeout', str('request-timeout'), 10, 30);
  if (connectTimeout > requestTimeout) {
    throw new RenderUsageError('--connect-timeout must not exceed --request-timeout');
  }
  const attempts = integer('--attempts', str('attempts'), 3, 1, 5);
  // KubeSpawner's default start_timeout is 60 s: the plan fetch must leave room for the pod.
  if (attempts * requestTimeout > 45) {
    throw new RenderUsageError(
      '--attempts times --request-timeout must stay within 45 seconds (start_timeout is 60)',
    );
  }
  return {
    url: url.href.replace(/\/$/, ''),
    tokenSecret:
      matching('--token-secret', str('token-secret'), DNS_NAME, 'a Kubernetes Secret name') ??
      'idmount-hub-token',
    tokenSecretKey:
      matching('--token-secret-key', str('token-secret-key'), SECRET_KEY, 'a Secret key') ?? 'token',
    tokenEnv:
      matching('--token-env', str('token-env'), ENV_NAME, 'an environment variable name') ?? 'IDMOUNT_TOKEN',
    namespace: matching('--namespace', str('namespace'), DNS_NAME, 'a namespace name') ?? null,
    release: matching('--release', str('release'), DNS_NAME, 'a Helm release name') ?? null,
    podPort: integer('--pod-port', str('pod-port'), url.port === '' ? 8080 : Number(url.port), 1, 65535),
    connectTimeout,
    requestTimeout,
    attempts,
    nssInitContainer: values['no-nss-init-container'] !== true,
    nssImage: nssImage ?? null,
    siteValues: readSiteValues(str('values')),
  };
}

function readSiteValues(file: string | undefined): SiteValues | null {
  if (file === undefined) return null;
  let document: unknown;
  try {
    document = YAML.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new RenderUsageError(
      `--values: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (document === null || document === undefined) return {};
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new RenderUsageError(`--values: ${file} is not a z2jh values mapping`);
  }
  const egress = (document as SiteValues).hub?.networkPolicy?.egress;
  if (egress !== undefined && !Array.isArray(egress)) {
    throw new RenderUsageError(`--values: hub.networkPolicy.egress in ${file} is not a list`);
  }
  return document as SiteValues;
}

/** The `idmount render-extra-config` command: returns what to print on stdout. */
export function renderExtraConfigCommand(argv: string[]): string {
  return renderExtraConfig(parseRenderArgs(argv));
}
