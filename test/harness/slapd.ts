// Runs Debian's OpenLDAP slapd for tests and benchmarks: its own generated slapd.conf in a temp
// dir, loopback ports (ldap:// + ldaps://), a CA + server certificate made with openssl (and a
// second, unrelated CA to prove verification), data loaded with slapadd before start, stats
// logging so callers can count the searches slapd really served. Stop/start keeps the ports.
//
// Used by the ldap source tests, the Keycloak federation tests and bench/ (bulk fixtures).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';
import { stopProcess } from './process.js';

const run = promisify(execFile);

export type LdapSchema = 'rfc2307' | 'rfc2307bis';

const SLAPD_CANDIDATES = ['/usr/sbin/slapd', '/usr/local/sbin/slapd'];
const SLAPADD_CANDIDATES = ['/usr/sbin/slapadd', '/usr/local/sbin/slapadd'];
const INSTALL_HINT =
  'slapd is not installed: run `npm run test:deps` (installs Debian packages slapd and ldap-utils).';

function findBinary(candidates: string[]): string {
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new Error(INSTALL_HINT);
  return found;
}

/**
 * The RFC2307bis (draft-howard-rfc2307bis-02) classes and attributes idmount reads: posixAccount and
 * posixGroup are AUXILIARY there, so a group can be groupOfNames + posixGroup. Debian ships only
 * nis.schema (RFC2307, where posixGroup is STRUCTURAL), so the harness writes this file itself.
 * (slapd 2.5 has uidNumber and gidNumber built in.)
 */
const RFC2307BIS_SCHEMA = `
attributetype ( 1.3.6.1.1.1.1.2 NAME 'gecos' EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )
attributetype ( 1.3.6.1.1.1.1.3 NAME 'homeDirectory' EQUALITY caseExactIA5Match
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )
attributetype ( 1.3.6.1.1.1.1.4 NAME 'loginShell' EQUALITY caseExactIA5Match
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )
attributetype ( 1.3.6.1.1.1.1.12 NAME 'memberUid' EQUALITY caseExactIA5Match SUBSTR caseExactIA5SubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )
objectclass ( 1.3.6.1.1.1.2.0 NAME 'posixAccount' SUP top AUXILIARY
  MUST ( cn $ uid $ uidNumber $ gidNumber $ homeDirectory )
  MAY ( userPassword $ loginShell $ gecos $ description ) )
objectclass ( 1.3.6.1.1.1.2.2 NAME 'posixGroup' SUP top AUXILIARY
  MUST gidNumber
  MAY ( userPassword $ memberUid $ description ) )
`;

// ---------------------------------------------------------------------------------------------
// Fixtures

export interface FixtureUser {
  uid: string;
  /** Omitted: the entry has no uidNumber. A string is written as is (e.g. a non-numeric value). */
  uidNumber?: number | string;
  gidNumber?: number | string;
  homeDirectory?: string;
  cn?: string;
  mail?: string;
  loginShell?: string;
  /** The OU (below the suffix) holding the entry; default `people`. */
  ou?: string;
}

export interface FixtureGroup {
  cn: string;
  gidNumber?: number | string;
  /** rfc2307: login names written to memberUid. rfc2307bis: user login names, mapped to their DNs. */
  users?: string[];
  /** rfc2307bis only: names of member groups (nesting). */
  groups?: string[];
  /** The OU (below the suffix) holding the entry; default `groups`. */
  ou?: string;
}

export interface DirectoryFixture {
  users: FixtureUser[];
  groups: FixtureGroup[];
}

export const SERVICE_ACCOUNT = { cn: 'idmount', password: 'bind-secret-for-tests' };

export const userDn = (user: Pick<FixtureUser, 'uid' | 'ou'>, suffix: string) =>
  `uid=${user.uid},ou=${user.ou ?? 'people'},${suffix}`;
export const groupDn = (group: Pick<FixtureGroup, 'cn' | 'ou'>, suffix: string) =>
  `cn=${group.cn},ou=${group.ou ?? 'groups'},${suffix}`;

/** LDIF for the suffix, OUs, the service account and the fixture (schema-specific group shape). */
export function fixtureLdif(schema: LdapSchema, suffix: string, fixture: DirectoryFixture): string {
  const dc = /^dc=([^,]+)/.exec(suffix)?.[1] ?? 'example';
  const out: string[] = [];
  const entry = (lines: string[]) => out.push(`${lines.join('\n')}\n`);
  entry([`dn: ${suffix}`, 'objectClass: dcObject', 'objectClass: organization', `dc: ${dc}`, `o: ${dc}`]);
  const ous = new Set(['people', 'groups', 'services']);
  for (const u of fixture.users) ous.add(u.ou ?? 'people');
  for (const g of fixture.groups) ous.add(g.ou ?? 'groups');
  for (const ou of ous) entry([`dn: ou=${ou},${suffix}`, 'objectClass: organizationalUnit', `ou: ${ou}`]);
  entry([
    `dn: cn=${SERVICE_ACCOUNT.cn},ou=services,${suffix}`,
    'objectClass: organizationalRole',
    'objectClass: simpleSecurityObject',
    `cn: ${SERVICE_ACCOUNT.cn}`,
    `userPassword: ${SERVICE_ACCOUNT.password}`,
  ]);
  const usersByName = new Map(fixture.users.map((u) => [u.uid, u]));
  for (const u of fixture.users) {
    const lines = [
      `dn: ${userDn(u, suffix)}`,
      'objectClass: inetOrgPerson',
      'objectClass: posixAccount',
      `uid: ${u.uid}`,
      `cn: ${u.cn ?? u.uid}`,
      `sn: ${u.uid}`,
    ];
    if (u.uidNumber !== undefined) lines.push(`uidNumber: ${u.uidNumber}`);
    if (u.gidNumber !== undefined) lines.push(`gidNumber: ${u.gidNumber}`);
    lines.push(`homeDirectory: ${u.homeDirectory ?? `/home/${u.uid}`}`);
    if (u.mail !== undefined) lines.push(`mail: ${u.mail}`);
    if (u.loginShell !== undefined) lines.push(`loginShell: ${u.loginShell}`);
    entry(lines);
  }
  const groupsByName = new Map(fixture.groups.map((g) => [g.cn, g]));
  for (const g of fixture.groups) {
    const lines = [`dn: ${groupDn(g, suffix)}`];
    if (schema === 'rfc2307') {
      lines.push('objectClass: posixGroup', `cn: ${g.cn}`);
      if (g.gidNumber !== undefined) lines.push(`gidNumber: ${g.gidNumber}`);
      for (const name of g.users ?? []) lines.push(`memberUid: ${name}`);
    } else {
      lines.push('objectClass: groupOfNames');
      if (g.gidNumber !== undefined) lines.push('objectClass: posixGroup', `gidNumber: ${g.gidNumber}`);
      lines.push(`cn: ${g.cn}`);
      for (const name of g.users ?? []) {
        lines.push(`member: ${userDn(usersByName.get(name) ?? { uid: name }, suffix)}`);
      }
      for (const name of g.groups ?? []) {
        lines.push(`member: ${groupDn(groupsByName.get(name) ?? { cn: name }, suffix)}`);
      }
    }
    entry(lines);
  }
  return out.join('\n');
}

/**
 * A large directory for benchmarks: `users` posix users (user0..), `groups` groups (group0..), each
 * user a member of `groupsPerUser` groups spread evenly, plus a user-private group per user
 * when `privateGroups` is set. Built in memory in well under a second for 10 000 / 2 000.
 */
export function bulkFixture(options: {
  users: number;
  groups: number;
  groupsPerUser?: number;
  firstUid?: number;
  firstGid?: number;
}): DirectoryFixture {
  const {
    users: userCount,
    groups: groupCount,
    groupsPerUser = 5,
    firstUid = 10_000,
    firstGid = 50_000,
  } = options;
  const users: FixtureUser[] = [];
  const groups: FixtureGroup[] = Array.from({ length: groupCount }, (_, i) => ({
    cn: `group${i}`,
    gidNumber: firstGid + i,
    users: [],
  }));
  for (let i = 0; i < userCount; i += 1) {
    users.push({
      uid: `user${i}`,
      uidNumber: firstUid + i,
      gidNumber: firstGid + (i % groupCount),
      cn: `User ${i}`,
    });
    for (let k = 0; k < groupsPerUser && groupCount > 0; k += 1) {
      groups[(i * 7 + k * 13) % groupCount]?.users?.push(`user${i}`);
    }
  }
  return { users, groups };
}

/**
 * Mount rules that fit bulkFixture's users: a templated home, and one read-only data mount per
 * `group<N>` the user belongs to. Shared by the bench and the soak so both plan the same mounts.
 */
export const bulkMountRules = {
  home: {
    from: 'template' as const,
    template: '/export/home/{username}',
    allowedRoots: ['/export/home'],
    volume: { nfs: { server: 'nfs-home.example.org' } },
    mountPath: '/home/jovyan/home',
  },
  data: [
    {
      name: 'group',
      fromGroup: '^group(?<n>[0-9]+)$',
      path: '/data/groups/{n}',
      mountPath: '/home/jovyan/groups/{n}',
      readOnly: true,
      allowedRoots: ['/data/groups'],
      volume: { nfs: { server: 'nfs-data.example.org' } },
    },
  ],
};

// ---------------------------------------------------------------------------------------------
// TLS material

export interface TlsMaterial {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A CA that signed nothing here: clients trusting only it must refuse the server. */
  wrongCaFile: string;
}

/** A CA, a server certificate for localhost / 127.0.0.1 signed by it, and an unrelated CA. */
export async function makeTlsMaterial(dir: string): Promise<TlsMaterial> {
  mkdirSync(dir, { recursive: true });
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = async (name: string) =>
    run('openssl', [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.pem`),
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
    ]);
  await Promise.all([ca('test-ca'), ca('wrong-ca')]);
  await run('openssl', [
    'req',
    ...ec,
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  writeFileSync(p('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('test-ca.pem'),
    '-CAkey',
    p('test-ca.key'),
    '-CAcreateserial',
    '-out',
    p('server.pem'),
    '-days',
    '2',
    '-extfile',
    p('server.ext'),
  ]);
  return {
    caFile: p('test-ca.pem'),
    certFile: p('server.pem'),
    keyFile: p('server.key'),
    wrongCaFile: p('wrong-ca.pem'),
  };
}

// ---------------------------------------------------------------------------------------------
// The server

export { freePort } from './ports.js';

export interface SlapdOptions {
  schema: LdapSchema;
  fixture?: DirectoryFixture;
  /** Extra raw LDIF appended after the fixture (e.g. deliberately odd entries). */
  extraLdif?: string;
  suffix?: string;
  /** slapd's size limit for non-paged searches (paged results are not capped in total). Default 500. */
  sizeLimit?: number;
}

export interface Slapd {
  readonly schema: LdapSchema;
  readonly suffix: string;
  readonly url: string;
  readonly ldapsUrl: string;
  readonly port: number;
  readonly ldapsPort: number;
  readonly rootDN: string;
  readonly rootPassword: string;
  /** The service account idmount binds as, and a file holding its password. */
  readonly bindDN: string;
  readonly bindPasswordFile: string;
  readonly tls: TlsMaterial;
  readonly dir: string;
  readonly running: boolean;
  /** The running slapd's process id (the bench reads its CPU time); undefined when stopped. */
  readonly pid: number | undefined;
  /** Starts slapd again on the same ports with the same data. */
  start(): Promise<void>;
  /** SIGTERM (clean) or SIGKILL (crash); resolves when the process is gone. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Filters of every SRCH slapd logged so far (stats log level), oldest first. */
  searchFilters(): string[];
  /** slapd's stats log so far (CONN, BIND, SRCH, RESULT lines). */
  log(): string;
  /** Stops slapd and removes its directory. */
  close(): Promise<void>;
}

/**
 * The `ldap` source config (as written in YAML, unparsed) that reads this slapd's people and
 * groups as the service account, with `overrides` merged over it.
 */
export function ldapSourceFor(slapd: Slapd, overrides: Record<string, unknown> = {}) {
  return {
    name: 'campus',
    type: 'ldap' as const,
    schema: slapd.schema,
    urls: [slapd.url],
    bindDN: slapd.bindDN,
    bindPasswordFile: slapd.bindPasswordFile,
    users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
    groups: { bases: [{ base: `ou=groups,${slapd.suffix}` }] },
    ...overrides,
  };
}

export async function startSlapd(options: SlapdOptions): Promise<Slapd> {
  const slapdBin = findBinary(SLAPD_CANDIDATES);
  const slapaddBin = findBinary(SLAPADD_CANDIDATES);
  const suffix = options.suffix ?? 'dc=example,dc=org';
  const dir = join(tmpdir(), `idmount-slapd-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const dbDir = join(dir, 'db');
  mkdirSync(dbDir, { recursive: true });
  const tls = await makeTlsMaterial(join(dir, 'tls'));
  const [port, ldapsPort] = [await freePort(), await freePort()];
  const rootDN = `cn=admin,${suffix}`;
  const rootPassword = 'root-secret-for-tests';
  const bindDN = `cn=${SERVICE_ACCOUNT.cn},ou=services,${suffix}`;
  const bindPasswordFile = join(dir, 'bind-password');
  writeFileSync(bindPasswordFile, `${SERVICE_ACCOUNT.password}\n`, { mode: 0o600 });

  const schemaFiles = ['/etc/ldap/schema/core.schema', '/etc/ldap/schema/cosine.schema'];
  if (options.schema === 'rfc2307') {
    schemaFiles.push('/etc/ldap/schema/nis.schema');
  } else {
    writeFileSync(join(dir, 'rfc2307bis.schema'), RFC2307BIS_SCHEMA);
    schemaFiles.push(join(dir, 'rfc2307bis.schema'));
  }
  schemaFiles.push('/etc/ldap/schema/inetorgperson.schema');
  const sizeLimit = options.sizeLimit ?? 500;
  const conf = join(dir, 'slapd.conf');
  writeFileSync(
    conf,
    [
      ...schemaFiles.map((f) => `include ${f}`),
      `pidfile ${join(dir, 'slapd.pid')}`,
      `argsfile ${join(dir, 'slapd.args')}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      `TLSCACertificateFile ${tls.caFile}`,
      `TLSCertificateFile ${tls.certFile}`,
      `TLSCertificateKeyFile ${tls.keyFile}`,
      // Like a production server: plain searches are capped, paged searches may walk everything.
      `sizelimit size.soft=${sizeLimit} size.hard=${sizeLimit} size.prtotal=unlimited`,
      'database mdb',
      'maxsize 1073741824',
      `suffix "${suffix}"`,
      `rootdn "${rootDN}"`,
      `rootpw ${rootPassword}`,
      `directory ${dbDir}`,
      'index objectClass eq',
      'index uid,cn,memberUid,member,uidNumber,gidNumber eq',
      // Anonymous users may only bind: a search that lost its bind finds nothing.
      'access to attrs=userPassword by self read by anonymous auth by * none',
      'access to * by users read by * none',
      '',
    ].join('\n'),
  );

  const ldif = `${fixtureLdif(options.schema, suffix, options.fixture ?? { users: [], groups: [] })}\n${options.extraLdif ?? ''}`;
  writeFileSync(join(dir, 'data.ldif'), ldif);
  // -q: fast bulk mode; -s: no schema check, so tests can hold deliberately broken entries
  // (a posixAccount without uidNumber) the way real directories sometimes do.
  try {
    await run(slapaddBin, ['-q', '-s', '-f', conf, '-l', join(dir, 'data.ldif')], {
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`slapadd failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
  }

  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${ldapsPort}`;
  const logFile = join(dir, 'slapd.log');
  let child: ChildProcess | undefined;

  const waitForPort = async (p: number, deadline: number) => {
    while (Date.now() < deadline) {
      if (child?.exitCode !== null && child?.exitCode !== undefined) {
        throw new Error(
          `slapd exited with code ${child.exitCode}:\n${readFileSync(logFile, 'utf8').slice(-2000)}`,
        );
      }
      const ok = await new Promise<boolean>((resolve) => {
        const socket = net.connect(p, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`slapd did not listen on ${p} in time:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
  };

  const start = async () => {
    if (child !== undefined) return;
    const fd = openSync(logFile, 'a');
    // -d stats: stay in the foreground and log connections and operations (SRCH lines) to stderr.
    child = spawn(slapdBin, ['-d', 'stats', '-f', conf, '-h', `${url}/ ${ldapsUrl}/`], {
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const started = child;
    started.once('exit', () => {
      if (child === started) child = undefined;
    });
    const deadline = Date.now() + 15_000;
    await waitForPort(port, deadline);
    await waitForPort(ldapsPort, deadline);
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
    schema: options.schema,
    suffix,
    url,
    ldapsUrl,
    port,
    ldapsPort,
    rootDN,
    rootPassword,
    bindDN,
    bindPasswordFile,
    tls,
    dir,
    get running() {
      return child !== undefined;
    },
    get pid() {
      return child?.pid;
    },
    start,
    stop,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    searchFilters() {
      const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      return [...text.matchAll(/ SRCH base=".*?" scope=\d+ deref=\d+ filter="(.*)"$/gm)].map(
        (m) => m[1] as string,
      );
    },
    async close() {
      await stop('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
