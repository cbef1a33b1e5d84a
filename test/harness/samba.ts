// Runs a real Samba Active Directory domain controller for the `ad` source tests: Debian's samba
// packages, `samba-tool domain provision --use-rfc2307` into a temp dir, users and groups loaded
// offline in one transaction through Samba's Python API (test/harness/samba_fixture.py), then `samba` in the
// foreground serving LDAP only, on its own loopback address, until stop().
//
// Ports: Samba has no option to move its LDAP ports (389/636 are fixed; `testparm` knows no
// "ldap port"), so each DC gets its own address in 127.0.0.0/8 (Linux routes the whole block to
// `lo`) with `interfaces` + `bind interfaces only`, and runs only the ldap service
// (`server services = ldap`: no SMB, Kerberos, NetBIOS, RPC or DNS ports). Binding 389/636 needs
// root, which is how the tests and CI run.
// TLS: Samba creates its own CA and host certificate (private/tls) at first start, for
// `<NETBIOS>.<dns domain>`; clients use that CA file and that name (tlsServerName).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

const INSTALL_HINT =
  'Samba AD DC is not installed: run `npm run test:deps` (installs Debian packages samba, samba-ad-dc, samba-ad-provision, winbind, python3-samba).';
/** Debian's interpreter: python3-samba is installed for it, not for other Pythons on PATH. */
const PYTHON = '/usr/bin/python3';
const FIXTURE_SCRIPT = fileURLToPath(new URL('./samba_fixture.py', import.meta.url));

export const REALM = 'IDMOUNT.TEST';
export const DOMAIN = 'IDMOUNT';
export const BASE_DN = 'DC=idmount,DC=test';
/** The name in Samba's self-made host certificate: `<netbios name>.<dns domain>`. */
export const DC_HOST_NAME = 'DC1.idmount.test';

export interface SambaUser {
  name: string;
  password?: string;
  /** RFC2307 attributes; leave uidNumber out for a user that only ID mapping can number. */
  uidNumber?: number;
  gidNumber?: number;
  unixHome?: string;
  loginShell?: string;
  givenName?: string;
  surname?: string;
  mail?: string;
  /** Default: `<name>@idmount.test`. */
  userPrincipalName?: string;
  disabled?: boolean;
  /** A deny ACE on the entry: the bind account may not read its tokenGroups (as a DC or bind account that does not give them). */
  hideTokenGroups?: boolean;
}

export interface SambaGroup {
  name: string;
  gidNumber?: number;
  /** sAMAccountNames of member users or groups (groups nest). */
  members?: string[];
  /** A distribution group (no security SID in tokens); default: a global security group. */
  distribution?: boolean;
}

export interface SambaFixture {
  users: SambaUser[];
  groups: SambaGroup[];
}

export interface SambaDc {
  /** ldaps://<loopback address> */
  url: string;
  /** ldap://<loopback address> (AD refuses simple binds here: no TLS). */
  plainUrl: string;
  host: string;
  /** Samba's own CA (private/tls/ca.pem) that signed the DC's certificate. */
  caFile: string;
  tlsServerName: string;
  baseDN: string;
  bindDN: string;
  bindPasswordFile: string;
  domainSid: string;
  /** DN and text SID of every fixture user and group, plus well-known groups. */
  objects: Record<string, { dn: string; sid: string }>;
  /** Milliseconds spent in `samba-tool domain provision`, loading fixtures, and booting to LDAPS. */
  timings: { provisionMs: number; fixtureMs: number; bootMs: number };
  /** The `samba` process (one process: `-M single`), for CPU accounting in the bench. */
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

const BIND_USER = 'svc-idmount';
const BIND_PASSWORD = `Bind-${randomInt(1e9)}-pw!`;
const DEFAULT_PASSWORD = 'Us3r-Passw0rd!';

function requireBinaries(): { samba: string; sambaTool: string } {
  const samba = ['/usr/sbin/samba', '/usr/local/sbin/samba'].find((p) => existsSync(p));
  const sambaTool = ['/usr/bin/samba-tool', '/usr/local/bin/samba-tool'].find((p) => existsSync(p));
  if (samba === undefined || sambaTool === undefined || !existsSync(PYTHON)) throw new Error(INSTALL_HINT);
  if (!existsSync('/usr/share/samba/setup')) throw new Error(INSTALL_HINT);
  return { samba, sambaTool };
}

/** A loopback address nobody listens on for LDAP (389) yet. */
async function freeLoopbackAddress(): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const host = `127.${randomInt(100, 250)}.${randomInt(1, 250)}.${randomInt(2, 250)}`;
    const inUse = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port: 389 });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (!inUse) return host;
  }
  throw new Error('no free loopback address found for the Samba DC');
}

async function waitForLdaps(
  host: string,
  caFile: string,
  child: ChildProcess,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`samba exited with code ${child.exitCode}:\n${log()}`);
    if (existsSync(caFile)) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = tls.connect(
          { host, port: 636, ca: readFileSync(caFile), servername: DC_HOST_NAME },
          () => {
            socket.destroy();
            resolve(true);
          },
        );
        socket.once('error', () => resolve(false));
      });
      if (ok) return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`samba did not serve LDAPS on ${host}:636 within 120 s:\n${log()}`);
}

/** What an `ad` source needs to reach this DC (LDAPS, its CA, the bind account), with timeouts
 * generous enough for two shared cores. */
export const adConnection = (dc: SambaDc) => ({
  urls: [dc.url],
  caFile: dc.caFile,
  tlsServerName: dc.tlsServerName,
  bindDN: dc.bindDN,
  bindPasswordFile: dc.bindPasswordFile,
  baseDN: dc.baseDN,
  connectTimeout: '20s',
  operationTimeout: '20s',
});

/** Provisions a fresh domain, loads the fixture, boots `samba`. Call stop() when done. */
export async function startSambaDc(fixture: SambaFixture): Promise<SambaDc> {
  const { samba, sambaTool } = requireBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'idmount-samba-'));
  const host = await freeLoopbackAddress();
  const smbConf = join(dir, 'etc', 'smb.conf');

  let started = Date.now();
  try {
    await run(
      sambaTool,
      [
        'domain',
        'provision',
        '--use-rfc2307',
        '--dns-backend=NONE',
        `--targetdir=${dir}`,
        `--realm=${REALM}`,
        `--domain=${DOMAIN}`,
        '--host-name=dc1',
        '--server-role=dc',
        `--adminpass=Adm1n-${randomInt(1e9)}!`,
        `--option=interfaces = ${host}/8`,
        '--option=bind interfaces only = yes',
        // Only the LDAP server: no SMB, Kerberos, NetBIOS, RPC or DNS ports to collide on.
        '--option=server services = ldap',
        `--option=log file = ${join(dir, 'log.%m')}`,
        // Per-DC runtime paths: two DCs (parallel test files) must not share /run/samba.
        `--option=pid directory = ${join(dir, 'run')}`,
        `--option=ncalrpc dir = ${join(dir, 'run', 'ncalrpc')}`,
        `--option=winbindd socket directory = ${join(dir, 'run', 'winbindd')}`,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`samba-tool domain provision failed: ${(err as { stderr?: string }).stderr ?? err}`);
  }
  const provisionMs = Date.now() - started;

  started = Date.now();
  const spec = {
    smbConf,
    bindUser: BIND_USER,
    users: [
      { name: BIND_USER, password: BIND_PASSWORD },
      ...fixture.users.map((u) => ({ password: DEFAULT_PASSWORD, ...u })),
    ],
    groups: fixture.groups,
    lookup: ['Domain Users', 'Administrator'],
  };
  const loaded = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      PYTHON,
      [FIXTURE_SCRIPT],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`loading the Samba fixture failed: ${stderr || err.message}`))
          : resolve(stdout),
    );
    child.stdin?.end(JSON.stringify(spec));
  }).catch((err) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const { domainSid, objects } = JSON.parse(loaded) as Pick<SambaDc, 'domainSid' | 'objects'>;
  const fixtureMs = Date.now() - started;

  const bindPasswordFile = join(dir, 'bind-password');
  writeFileSync(bindPasswordFile, BIND_PASSWORD, { mode: 0o600 });
  const caFile = join(dir, 'private', 'tls', 'ca.pem');

  started = Date.now();
  let output = '';
  const child = spawn(
    samba,
    ['--foreground', '--no-process-group', '-M', 'single', '-s', smbConf, '--debug-stdout', '-d', '1'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitForLdaps(host, caFile, child, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  const bootMs = Date.now() - started;

  return {
    url: `ldaps://${host}`,
    plainUrl: `ldap://${host}`,
    host,
    caFile,
    tlsServerName: DC_HOST_NAME,
    baseDN: BASE_DN,
    bindDN: (objects[BIND_USER] as { dn: string }).dn,
    bindPasswordFile,
    domainSid,
    objects,
    timings: { provisionMs, fixtureMs, bootMs },
    pid: child.pid as number,
    dir,
    stop,
  };
}
