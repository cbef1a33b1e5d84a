// Runs a real Keycloak (the Quarkus server distribution that scripts/test-deps/30-keycloak.sh
// unpacks into the cache) for tests: `kc.sh start-dev` on loopback with random HTTP and management
// ports, an in-memory database, a bootstrap admin with a random password. Realms are created
// through the Admin REST API by the tests themselves, so one server serves every test file.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

const INSTALL_HINT = 'run `npm run test:deps` (scripts/test-deps/30-keycloak.sh fetches it with Maven)';
const SUPPORTED_JAVA = [25, 21, 17]; // Keycloak 26 runs on the Java LTS releases 17, 21 and 25.

/** The version the test-deps script installs: one place says it. */
export function keycloakVersion(): string {
  const script = join(dirname(fileURLToPath(import.meta.url)), '../../scripts/test-deps/30-keycloak.sh');
  const match = /IDMOUNT_KEYCLOAK_VERSION:-([0-9.]+)/.exec(readFileSync(script, 'utf8'));
  if (match === null) throw new Error('scripts/test-deps/30-keycloak.sh does not name a Keycloak version');
  return process.env.IDMOUNT_KEYCLOAK_VERSION ?? (match[1] as string);
}

export function keycloakHome(): string {
  const cache = process.env.IDMOUNT_CACHE ?? join(homedir(), '.cache', 'idmount');
  const home = join(cache, `keycloak-${keycloakVersion()}`);
  if (!existsSync(join(home, 'bin', 'kc.sh'))) {
    throw new Error(`Keycloak ${keycloakVersion()} is not installed in ${home}: ${INSTALL_HINT}.`);
  }
  return home;
}

/** The major version a JDK declares in its `release` file, or undefined. */
function javaMajor(javaHome: string): number | undefined {
  try {
    const release = readFileSync(join(javaHome, 'release'), 'utf8');
    const version = /^JAVA_VERSION="(\d+)/m.exec(release)?.[1];
    return version === undefined ? undefined : Number(version);
  } catch {
    return undefined;
  }
}

/** JAVA_HOME when it is a supported JDK, otherwise the newest supported one in /usr/lib/jvm. */
export function findJavaHome(): string {
  const env = process.env.JAVA_HOME;
  if (env !== undefined && SUPPORTED_JAVA.includes(javaMajor(env) ?? 0)) return env;
  const root = '/usr/lib/jvm';
  const candidates = existsSync(root)
    ? readdirSync(root)
        .map((d) => join(root, d))
        .filter((d) => existsSync(join(d, 'bin', 'java')))
        .map((d) => ({ home: d, major: javaMajor(d) ?? 0 }))
        .filter((c) => SUPPORTED_JAVA.includes(c.major))
        .sort((a, b) => b.major - a.major)
    : [];
  const best = candidates[0];
  if (best === undefined) {
    throw new Error(`No Java 17, 21 or 25 found (JAVA_HOME or /usr/lib/jvm): ${INSTALL_HINT}.`);
  }
  return best.home;
}

export interface KeycloakEndpoint {
  /** Base URL, e.g. http://127.0.0.1:PORT (realms live under /realms/NAME). */
  url: string;
  adminUser: string;
  adminPassword: string;
}

export interface RunningKeycloak extends KeycloakEndpoint {
  /** Milliseconds from spawn until /health/ready answered. */
  bootMs: number;
  stop(): Promise<void>;
}

export async function startKeycloak(): Promise<RunningKeycloak> {
  const home = keycloakHome();
  const javaHome = findJavaHome();
  const [httpPort, managementPort] = [await freePort(), await freePort()];
  const adminUser = 'bootstrap-admin';
  const adminPassword = randomBytes(18).toString('base64url');
  const started = Date.now();
  const child: ChildProcess = spawn(
    join(home, 'bin', 'kc.sh'),
    [
      'start-dev',
      '--http-host=127.0.0.1',
      `--http-port=${httpPort}`,
      `--http-management-port=${managementPort}`,
      '--db=dev-mem',
      '--health-enabled=true',
      '--cache=local',
    ],
    {
      env: {
        ...process.env,
        JAVA_HOME: javaHome,
        KC_BOOTSTRAP_ADMIN_USERNAME: adminUser,
        KC_BOOTSTRAP_ADMIN_PASSWORD: adminPassword,
        // Tests boot Keycloak once and run briefly: the C1 compiler alone starts it faster.
        JAVA_OPTS_APPEND: '-XX:TieredStopAtLevel=1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // kc.sh runs java as a child: signal the whole process group.
    process.kill(-(child.pid as number), 'SIGTERM');
    const killer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), 20_000);
    await gone;
    clearTimeout(killer);
  };

  const deadline = started + 300_000;
  for (;;) {
    if (exited !== undefined) {
      throw new Error(
        `Keycloak exited (code ${exited}) before it was ready:\n${output.join('').slice(-4000)}`,
      );
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Keycloak was not ready after 300 s:\n${output.join('').slice(-4000)}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${managementPort}/health/ready`, {
        signal: AbortSignal.timeout(2000),
      });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    url: `http://127.0.0.1:${httpPort}`,
    adminUser,
    adminPassword,
    bootMs: Date.now() - started,
    stop,
  };
}

/** A small Admin REST API client for fixtures (the bootstrap admin in the master realm). */
export class KeycloakAdmin {
  private token: { value: string; expiresAt: number } | undefined;

  constructor(readonly endpoint: KeycloakEndpoint) {}

  private async accessToken(): Promise<string> {
    if (this.token !== undefined && this.token.expiresAt > Date.now() + 5000) return this.token.value;
    const res = await fetch(`${this.endpoint.url}/realms/master/protocol/openid-connect/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'password',
        client_id: 'admin-cli',
        username: this.endpoint.adminUser,
        password: this.endpoint.adminPassword,
      }),
    });
    if (!res.ok) throw new Error(`admin login failed: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { access_token: string; expires_in: number };
    this.token = { value: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
    return body.access_token;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.endpoint.url}/admin/realms${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await this.accessToken()}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    const text = await res.text();
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** Creates a realm from a full representation (clients, roles, groups, users are imported). */
  async createRealm(representation: { realm: string } & Record<string, unknown>): Promise<void> {
    await this.request('POST', '', representation);
  }

  async deleteRealm(realm: string): Promise<void> {
    await this.request('DELETE', `/${encodeURIComponent(realm)}`);
  }

  /** Replaces the realm's user profile (declared attributes, unmanaged-attribute policy). */
  async updateUserProfile(
    realm: string,
    change: (profile: UserProfileConfig) => UserProfileConfig,
  ): Promise<void> {
    const current = await this.request<UserProfileConfig>('GET', `/${realm}/users/profile`);
    await this.request('PUT', `/${realm}/users/profile`, change(current));
  }

  async userId(realm: string, username: string): Promise<string> {
    const users = await this.request<{ id: string }[]>(
      'GET',
      `/${realm}/users?${new URLSearchParams({ username, exact: 'true' })}`,
    );
    const user = users[0];
    if (user === undefined) throw new Error(`no user ${username} in ${realm}`);
    return user.id;
  }
}

export interface UserProfileConfig {
  attributes: Array<{ name: string } & Record<string, unknown>>;
  unmanagedAttributePolicy?: 'ENABLED' | 'ADMIN_VIEW' | 'ADMIN_EDIT';
  [key: string]: unknown;
}

/** Password grant for test users (the realm's test clients enable direct access grants). */
export async function passwordGrant(
  issuer: string,
  client: { clientId: string; clientSecret?: string },
  username: string,
  password: string,
  scope = 'openid',
): Promise<{ access_token: string; id_token?: string; refresh_token?: string; expires_in: number }> {
  const res = await fetch(`${issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: client.clientId,
      ...(client.clientSecret === undefined ? {} : { client_secret: client.clientSecret }),
      username,
      password,
      scope,
    }),
  });
  if (!res.ok) throw new Error(`password grant for ${username} failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as {
    access_token: string;
    id_token?: string;
    refresh_token?: string;
    expires_in: number;
  };
}
