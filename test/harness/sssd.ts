// SSSD as the oracle for what a directory says about a user: Debian's sssd (id_provider = ldap)
// reading a test slapd, asked through the real NSS path (`getent passwd`, `getent initgroups`
// via libnss_sss). It never touches the machine's own files: each SSSD runs in a private mount
// namespace (`unshare --mount`, private propagation) with a tmpfs over /var/lib/sss (cache,
// pipes, memory cache) and /run (sssd.pid), and files of a temp directory bind-mounted over
// /var/log/sssd, /etc/sssd and /etc/nsswitch.conf; the shell half is ./sssd-oracle.sh, which
// asks getent from a nested namespace whose nsswitch.conf says `sss` only.
//
// SSSD's cache makes nested-group answers depend on lookup order (sssd-ldap(5),
// ldap_group_nesting_level: groups beyond the level "may be returned if previous lookups already
// resolved the deeper nesting levels"). `freshCache: true` starts every name's SSSD on an empty
// cache; the names are spread over `instances` namespaces that run side by side.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LdapSchema, Slapd } from './slapd.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(HERE, 'sssd-oracle.sh');

const INSTALL_HINT =
  'run `npm run test:deps` (scripts/test-deps/15-sssd.sh installs Debian packages sssd-ldap, libnss-sss, sssd-tools)';

const LIBSSS_LDAP = [
  '/usr/lib/x86_64-linux-gnu/sssd/libsss_ldap.so',
  '/usr/lib/aarch64-linux-gnu/sssd/libsss_ldap.so',
  '/usr/lib64/sssd/libsss_ldap.so',
];

const LIBNSS_SSS = [
  '/lib/x86_64-linux-gnu/libnss_sss.so.2',
  '/usr/lib/x86_64-linux-gnu/libnss_sss.so.2',
  '/lib/aarch64-linux-gnu/libnss_sss.so.2',
  '/usr/lib/aarch64-linux-gnu/libnss_sss.so.2',
  '/usr/lib64/libnss_sss.so.2',
];

/**
 * Throws (so the test fails, it is not skipped) when SSSD, its NSS module, its LDAP provider,
 * getent or unshare is missing, or when the process is not root (mount namespaces, and sssd
 * itself, need it).
 */
export function assertSssdAvailable(): void {
  const missing: string[] = [];
  if (!existsSync('/usr/sbin/sssd')) missing.push('sssd (/usr/sbin/sssd)');
  if (!existsSync('/usr/libexec/sssd/sssd_be') && !existsSync('/usr/lib/sssd/sssd_be')) {
    missing.push('sssd_be');
  }
  if (!LIBSSS_LDAP.some((p) => existsSync(p))) missing.push('the LDAP provider (sssd-ldap)');
  if (!LIBNSS_SSS.some((p) => existsSync(p))) missing.push('libnss_sss (libnss-sss)');
  for (const dir of ['/var/lib/sss', '/var/log/sssd']) if (!existsSync(dir)) missing.push(dir);
  if (!existsSync('/usr/bin/getent')) missing.push('getent');
  if (!existsSync('/usr/bin/unshare')) missing.push('unshare (util-linux)');
  if (missing.length > 0) {
    throw new Error(`SSSD oracle: missing ${missing.join(', ')}: ${INSTALL_HINT}.`);
  }
  if (process.geteuid?.() !== 0) {
    throw new Error(
      'SSSD oracle: needs root (sssd runs in a private mount namespace made with `unshare --mount`).',
    );
  }
}

export interface SssdSearchBase {
  base: string;
  scope: 'base' | 'one' | 'sub';
}

export interface SssdDomainOptions {
  slapd: Slapd;
  schema: LdapSchema;
  userBases: SssdSearchBase[];
  groupBases: SssdSearchBase[];
  /** ldap_group_nesting_level (rfc2307bis). */
  nestingLevel: number;
  /** case_sensitive. */
  caseSensitive: boolean;
  /** ldap_group_object_class; default groupOfNames for rfc2307bis, posixGroup for rfc2307. */
  groupObjectClass?: string;
  /** ldap_group_member; default member (rfc2307bis) or memberUid (rfc2307). */
  groupMember?: string;
}

const SCOPES = { base: 'base', one: 'onelevel', sub: 'subtree' } as const;

/** base?scope?filter triples, as sssd-ldap(5) reads ldap_*_search_base. */
const searchBases = (bases: SssdSearchBase[]) => bases.map((b) => `${b.base}?${SCOPES[b.scope]}?`).join('?');

/** The sssd.conf the oracle runs with (the bind password is written into it: mode 0600). */
export function sssdConf(options: SssdDomainOptions, bindPassword: string): string {
  const bis = options.schema === 'rfc2307bis';
  return [
    '[sssd]',
    'config_file_version = 2',
    'domains = oracle',
    'services = nss',
    '',
    '[nss]',
    // No memory cache: every answer comes from the responder (and so from the directory).
    'memcache_timeout = 0',
    'entry_negative_timeout = 0',
    '',
    '[domain/oracle]',
    'id_provider = ldap',
    'auth_provider = none',
    'access_provider = permit',
    `ldap_uri = ${options.slapd.url}`,
    `ldap_schema = ${options.schema}`,
    `ldap_search_base = ${options.slapd.suffix}`,
    `ldap_user_search_base = ${searchBases(options.userBases)}`,
    `ldap_group_search_base = ${searchBases(options.groupBases)}`,
    'ldap_user_object_class = posixAccount',
    `ldap_group_object_class = ${options.groupObjectClass ?? (bis ? 'groupOfNames' : 'posixGroup')}`,
    `ldap_group_member = ${options.groupMember ?? (bis ? 'member' : 'memberUid')}`,
    `ldap_group_nesting_level = ${options.nestingLevel}`,
    `ldap_default_bind_dn = ${options.slapd.bindDN}`,
    'ldap_default_authtok_type = password',
    `ldap_default_authtok = ${bindPassword}`,
    'ldap_id_use_start_tls = false',
    'ldap_tls_reqcert = never',
    'ldap_id_mapping = false',
    'ldap_referrals = false',
    'entry_cache_timeout = 1',
    'enumerate = false',
    'cache_credentials = false',
    `case_sensitive = ${options.caseSensitive ? 'true' : 'false'}`,
    '',
  ].join('\n');
}

export interface SssdPasswd {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export interface SssdAnswer {
  /** The name asked. */
  asked: string;
  /** `getent passwd NAME`; null: SSSD does not know the name. */
  passwd: SssdPasswd | null;
  /**
   * `getent initgroups NAME`: the gids glibc's getgrouplist gets from SSSD (getent passes no
   * primary gid, so these are SSSD's supplementary groups as it reports them). Empty when unknown.
   */
  initgroups: number[];
}

export interface AskOptions {
  /** A new SSSD on an empty cache for every name (default true). */
  freshCache?: boolean;
  /** Namespaces (SSSD instances) run side by side (default 4). */
  instances?: number;
  /** A user the directory holds; SSSD counts as ready once it answers for it. */
  probe: string;
}

const parsePasswd = (line: string): SssdPasswd => {
  const [name, , uid, gid, gecos, home, shell] = line.split(':');
  return {
    name: name ?? '',
    uid: Number(uid),
    gid: Number(gid),
    gecos: gecos ?? '',
    home: home ?? '',
    shell: shell ?? '',
  };
};

function runInstance(stateDir: string, mode: 'fresh' | 'shared', probe: string, names: string[]) {
  return new Promise<SssdAnswer[]>((resolve, reject) => {
    const child = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', 'bash', SCRIPT, 'run', stateDir, mode, probe],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`sssd-oracle exited with ${code}: ${err.slice(-2000)}`));
        return;
      }
      const answers = out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => {
          const raw = JSON.parse(l) as { name: string; passwd: string | null; initgroups: string | null };
          const gids = (raw.initgroups ?? '').trim().split(/\s+/).slice(1).map(Number);
          return {
            asked: raw.name,
            passwd: raw.passwd === null ? null : parsePasswd(raw.passwd),
            initgroups: gids,
          };
        });
      resolve(answers);
    });
    child.stdin.end(`${names.join('\n')}\n`);
  });
}

/**
 * Asks SSSD about each name. Returns the answers by name; every name is asked exactly once.
 * Leaves nothing behind: each instance's temp directory is removed afterwards.
 */
export async function askSssd(
  domain: SssdDomainOptions,
  names: string[],
  options: AskOptions,
): Promise<Map<string, SssdAnswer>> {
  assertSssdAvailable();
  for (const name of names) {
    if (/[\s]/.test(name) || name === '') throw new Error(`sssd oracle: cannot ask for '${name}'`);
  }
  const bindPassword = readFileSync(domain.slapd.bindPasswordFile, 'utf8').trim();
  const fresh = options.freshCache ?? true;
  const count = Math.max(1, Math.min(options.instances ?? 4, names.length));
  const root = mkdtempSync(join(tmpdir(), 'idmount-sssd-'));
  try {
    const work = Array.from({ length: count }, (_, i) => {
      const state = join(root, `instance-${i}`);
      for (const d of ['log', 'etc-sssd/conf.d']) mkdirSync(join(state, d), { recursive: true });
      writeFileSync(join(state, 'sssd.conf'), sssdConf(domain, bindPassword), { mode: 0o600 });
      writeFileSync(join(state, 'nsswitch-files.conf'), 'passwd: files\ngroup: files\nshadow: files\n');
      writeFileSync(join(state, 'nsswitch-sss.conf'), 'passwd: sss\ngroup: sss\nshadow: sss\n');
      // Round robin: neighbours in the list (often alike) go to different instances.
      const share = names.filter((_, k) => k % count === i);
      return runInstance(state, fresh ? 'fresh' : 'shared', options.probe, share);
    });
    const answers = (await Promise.all(work)).flat();
    const byName = new Map(answers.map((a) => [a.asked, a]));
    const lost = names.filter((n) => !byName.has(n));
    if (lost.length > 0) throw new Error(`sssd oracle: no answer for ${lost.join(', ')}`);
    return byName;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * A fingerprint of the machine's own SSSD and NSS files (/etc/nsswitch.conf, /etc/sssd,
 * /var/lib/sss, /var/log/sssd, /run/sssd.pid): every file's path, size, mtime and content hash.
 * The oracle takes one before and one after a run; they must be equal.
 */
export function machineFingerprint(): string {
  const lines: string[] = [];
  const visit = (path: string) => {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path);
    } catch {
      lines.push(`${path} absent`);
      return;
    }
    if (st.isDirectory()) {
      lines.push(`${path}/ ${st.mode.toString(8)} ${st.mtimeMs}`);
      for (const name of readdirSync(path).sort()) visit(join(path, name));
    } else if (st.isFile()) {
      const hash = createHash('sha256').update(readFileSync(path)).digest('hex');
      lines.push(`${path} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${hash}`);
    } else {
      lines.push(`${path} ${st.mode.toString(8)} ${st.mtimeMs}`);
    }
  };
  for (const path of ['/etc/nsswitch.conf', '/etc/sssd', '/var/lib/sss', '/var/log/sssd', '/run/sssd.pid']) {
    visit(path);
  }
  return lines.join('\n');
}
