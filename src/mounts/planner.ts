// MountPlanner: turns a checked identity into Kubernetes volumes and mounts. Every value that is
// substituted into a path must be a safe path segment, and every final path must lie under its
// rule's allowedRoots; anything else is a POLICY_VIOLATION for that user, never a partial plan.
import { policyViolation } from '../errors.js';
import type { CheckedIdentity } from '../policy/policy.js';
import { type DataRule, type HomeRule, podSecurityLevel, type VolumeSource } from './config.js';
import type { RuleTrace, Volume, VolumeMount } from './volumes.js';

export interface MountsConfig {
  home?: HomeRule | undefined;
  data: DataRule[];
}

export interface MountPlan {
  volumes: Volume[];
  volumeMounts: VolumeMount[];
  /** The home directory as the container sees it (HOME, passwd); undefined without a home rule. */
  containerHome: string | undefined;
}

// One path segment: no separators, no braces (KubeSpawner str.format()s every string), no
// whitespace, no ':' (passwd/group field separator), no leading dot (so never '.' or '..').
const SAFE_SEGMENT = /^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*$/;
// An absolute path of safe segments: no '.', '..' or empty segment and no trailing '/', so it is
// already in normal form — checking it is one match, not a split, a normalise and a scan.
const SAFE_PATH = /^(?:\/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+$/;
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const SYSTEM_DIRS = ['/etc', '/proc', '/sys', '/dev'];

/**
 * The value kept in `store` for `key`, made on first use. Rules and templates come from the frozen
 * config, so what is derived from them is derived once, not once per plan.
 */
function kept<K, V>(
  store: { get(key: K): V | undefined; set(key: K, value: V): unknown },
  key: K,
  make: () => V,
): V {
  let value = store.get(key);
  if (value === undefined) {
    value = make();
    store.set(key, value);
  }
  return value;
}

/** A template cut once into literal text and placeholder names (odd indexes are names). */
const templateParts = new Map<string, string[]>();
// split with a capturing group keeps the names: ['/data/', 'n', ''] for '/data/{n}'.
const partsOf = (template: string): string[] =>
  kept(templateParts, template, () => template.split(PLACEHOLDER));

/** Fills `{name}` placeholders; every substituted value must be a safe path segment. */
function fill(template: string, valueFor: (key: string) => string | undefined, rule: string): string {
  const parts = partsOf(template);
  let out = parts[0] as string;
  for (let i = 1; i < parts.length; i += 2) {
    const key = parts[i] as string;
    const value = valueFor(key);
    if (value === undefined) {
      throw policyViolation(`Rule '${rule}' uses {${key}}, which has no value for this user.`, { rule });
    }
    if (!SAFE_SEGMENT.test(value)) {
      throw policyViolation(`Rule '${rule}' would put the unsafe value '${printable(value)}' into a path.`, {
        rule,
        placeholder: key,
      });
    }
    out += value + (parts[i + 1] as string);
  }
  return out;
}

/** Shows a hostile value in a message without letting it break the message. */
const printable = (value: string) => JSON.stringify(value).slice(1, -1).slice(0, 80);

// Each rule's allowed roots with one trailing '/'.
const rootPrefixes = new WeakMap<object, string[]>();
const prefixesOf = (owner: { allowedRoots: string[] }): string[] =>
  kept(rootPrefixes, owner, () => owner.allowedRoots.map((r) => (r.endsWith('/') ? r : `${r}/`)));

/** Checks a final host path: absolute, clean, every segment safe, strictly under an allowed root. */
function confine(path: string, owner: { allowedRoots: string[] }, rule: string): string {
  if (!SAFE_PATH.test(path)) {
    throw policyViolation(`Rule '${rule}' produced the unsafe path '${printable(path)}'.`, { rule });
  }
  for (const prefix of prefixesOf(owner)) if (path.startsWith(prefix)) return path;
  throw policyViolation(
    `Rule '${rule}' produced '${path}', which is not under ${owner.allowedRoots.join(' or ')}.`,
    { rule },
  );
}

function checkMountPath(mountPath: string, rule: string): string {
  if (!SAFE_PATH.test(mountPath)) {
    throw policyViolation(`Rule '${rule}' produced the unsafe mount path '${printable(mountPath)}'.`, {
      rule,
    });
  }
  for (const dir of SYSTEM_DIRS) {
    if (mountPath === dir || mountPath.startsWith(`${dir}/`)) {
      throw policyViolation(`Rule '${rule}' would mount over the system directory '${mountPath}'.`, { rule });
    }
  }
  return mountPath;
}

/**
 * A volume's name suffix: 8 hex digits of FNV-1a over its path and mount path. It only has to be
 * stable and tell a user's few volumes apart (a clash is refused in `add`), so it is not a
 * cryptographic hash — a SHA-256 per volume was a fifth of the cost of planning a miss.
 */
function shortHash(path: string, mountPath: string): string {
  let h = 0x811c9dc5;
  const text = `${path}\0${mountPath}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

// Each rule's regular expression, compiled once.
const compiled = new WeakMap<object, RegExp>();
const regexOf = (owner: object, source: string): RegExp =>
  kept(compiled, owner, () => new RegExp(source, 'u'));

interface Planned {
  volume: Volume;
  mount: VolumeMount;
}

function volumeFor(
  rule: string,
  source: VolumeSource,
  path: string,
  mountPath: string,
  readOnly: boolean,
): Planned {
  if ('pvc' in source) {
    const root = source.pvc.mountedRoot.replace(/\/$/, '');
    if (!path.startsWith(`${root}/`)) {
      throw policyViolation(
        `Rule '${rule}' produced '${path}', which is not inside the claim root ${root}.`,
        { rule },
      );
    }
    const name = `idmount-${rule}`;
    return {
      volume: { name, persistentVolumeClaim: { claimName: source.pvc.claimName, readOnly } },
      mount: { name, mountPath, readOnly, subPath: path.slice(root.length + 1) },
    };
  }
  const name = `idmount-${rule}-${shortHash(path, mountPath)}`;
  const volume: Volume =
    'nfs' in source
      ? { name, nfs: { server: source.nfs.server, path, readOnly } }
      : 'csi' in source
        ? {
            name,
            csi: {
              driver: source.csi.driver,
              readOnly,
              // The confined path, and only it, comes from the directory.
              volumeAttributes: { ...source.csi.volumeAttributes, [source.csi.pathAttribute]: path },
            },
          }
        : { name, hostPath: { path, type: source.hostPath.type } };
  return { volume, mount: { name, mountPath, readOnly } };
}

type GroupFragment = Planned & { path: string };

// A group rule whose paths use only the group (its name and the rule's named captures) plans the
// same volume for every member of that group: it is planned once per group, not once per member.
// A path that also uses the user's values
// ({username}, {uid}, ...) is planned per user and never kept. Only successes are kept; a refusal
// is raised again each time. Bounded: a rule past GROUP_FRAGMENTS groups starts afresh.
const GROUP_FRAGMENTS = 10_000;
const groupFragments = new WeakMap<object, Map<string, GroupFragment>>();
const fragmentsOf = (rule: DataRule): Map<string, GroupFragment> =>
  kept(groupFragments, rule, () => new Map());

function remember(memo: Map<string, GroupFragment>, group: string, fragment: GroupFragment) {
  if (memo.size >= GROUP_FRAGMENTS) memo.clear();
  const { volume, mount } = fragment;
  for (const inner of Object.values(volume)) if (typeof inner === 'object') Object.freeze(inner);
  Object.freeze(volume);
  Object.freeze(mount);
  memo.set(group, Object.freeze(fragment));
}

/** Directory values (home attribute) are refused outright when they try to climb or smuggle. */
function checkDirectoryPath(value: string, rule: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (!value.startsWith('/') || value.split('/').includes('..') || /[\u0000-\u001f{}:]/.test(value)) {
    throw policyViolation(`The directory's home path '${printable(value)}' is not an acceptable path.`, {
      rule,
    });
  }
}

/**
 * Plans the user's mounts. With `trace` (an explain request), each rule's decision is recorded in
 * it; the volumes and mounts are the same either way.
 */
export function planMounts(checked: CheckedIdentity, config: MountsConfig, trace?: RuleTrace[]): MountPlan {
  const { identity } = checked;
  const values: Record<string, string | undefined> = {
    username: identity.name,
    initial: identity.name.slice(0, 1).toLowerCase(),
    uid: String(identity.uid),
    gid: String(identity.gid),
  };
  const userValue = (key: string) => values[key];
  const volumes = new Map<string, Volume>();
  const mounts: VolumeMount[] = [];
  const mountedBy = new Map<string, string>();

  const add = (rule: string, { volume, mount }: Planned) => {
    const mountPath = mount.mountPath;
    const owner = mountedBy.get(mountPath);
    if (owner !== undefined) {
      const same = mounts.find((m) => m.mountPath === mountPath);
      if (owner === rule && same?.name === mount.name && same.subPath === mount.subPath) return false;
      throw policyViolation(`Rules '${owner}' and '${rule}' both mount at '${mountPath}'.`, {
        rule,
        mountPath,
      });
    }
    const named = volumes.get(volume.name);
    if (named !== undefined && JSON.stringify(named) !== JSON.stringify(volume)) {
      // Two different directories whose names share a hash prefix: never mount one as the other.
      throw policyViolation(`Rule '${rule}' gives two different volumes the name '${volume.name}'.`, {
        rule,
      });
    }
    mountedBy.set(mountPath, rule);
    volumes.set(volume.name, volume);
    mounts.push(mount);
    return true;
  };

  let containerHome: string | undefined;
  const home = config.home;
  if (home !== undefined) {
    let path: string;
    if (home.from === 'attribute') {
      if (identity.home === undefined) {
        throw policyViolation(`The directory has no home directory for '${identity.name}'.`, {
          rule: 'home',
        });
      }
      checkDirectoryPath(identity.home, 'home');
      const rewrite = home.rewrite.find((r) => regexOf(r, r.from).test(identity.home as string));
      path = rewrite ? identity.home.replace(regexOf(rewrite, rewrite.from), rewrite.to) : identity.home;
    } else {
      path = fill(home.template as string, userValue, 'home');
    }
    path = confine(path, home, 'home');
    containerHome = checkMountPath(fill(home.mountPath, userValue, 'home'), 'home');
    add('home', volumeFor('home', home.volume, path, containerHome, home.readOnly));
    trace?.push({
      rule: 'home',
      outcome: 'mounted',
      reason: `home from ${home.from}`,
      path,
      mountPath: containerHome,
      podSecurity: podSecurityLevel(home.volume),
    });
  }

  for (const rule of config.data) {
    if (rule.fromGroup === undefined) {
      const path = confine(fill(rule.path, userValue, rule.name), rule, rule.name);
      const mountPath = checkMountPath(fill(rule.mountPath, userValue, rule.name), rule.name);
      add(rule.name, volumeFor(rule.name, rule.volume, path, mountPath, rule.readOnly));
      trace?.push({
        rule: rule.name,
        outcome: 'mounted',
        reason: 'static mount',
        path,
        mountPath,
        podSecurity: podSecurityLevel(rule.volume),
      });
      continue;
    }
    const matcher = regexOf(rule, rule.fromGroup);
    const memo = fragmentsOf(rule);
    let matched = 0;
    for (const group of checked.keptGroups) {
      let fragment = memo.get(group.name);
      if (fragment === undefined) {
        const match = matcher.exec(group.name);
        if (match === null) continue;
        // Named captures first, then {group}, then the user's values.
        const captures = match.groups;
        let personal = false;
        const groupValue = (key: string) => {
          if (captures !== undefined && Object.hasOwn(captures, key)) return captures[key];
          if (key === 'group') return group.name;
          personal = true;
          return values[key];
        };
        const path = confine(fill(rule.path, groupValue, rule.name), rule, rule.name);
        const mountPath = checkMountPath(fill(rule.mountPath, groupValue, rule.name), rule.name);
        fragment = { path, ...volumeFor(rule.name, rule.volume, path, mountPath, rule.readOnly) };
        if (!personal) remember(memo, group.name, fragment);
      }
      matched += 1;
      const { path, mount } = fragment;
      const added = add(rule.name, fragment);
      trace?.push({
        rule: rule.name,
        group: group.name,
        outcome: added ? 'mounted' : 'skipped',
        reason: added ? `group '${group.name}' matches ${rule.fromGroup}` : 'same mount as an earlier group',
        path,
        mountPath: mount.mountPath,
        podSecurity: podSecurityLevel(rule.volume),
      });
    }
    if (matched === 0) {
      trace?.push({
        rule: rule.name,
        outcome: 'skipped',
        reason: `no group of this user matches ${rule.fromGroup}`,
      });
    }
  }

  return {
    volumes: [...volumes.values()],
    volumeMounts: mounts,
    containerHome,
  };
}
