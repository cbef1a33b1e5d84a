// MountPlanner: turns a checked identity into Kubernetes volumes and mounts. Every value that is
// substituted into a path must be a safe path segment, and every final path must lie under its
// rule's allowedRoots; anything else is a POLICY_VIOLATION for that user, never a partial plan.
import { hash } from 'node:crypto';
import { posix } from 'node:path';
import { policyViolation } from '../errors.js';
import type { Explain, Volume, VolumeMount } from '../http/schemas.js';
import type { CheckedIdentity } from '../policy/policy.js';
import type { DataRule, HomeRule, VolumeSource } from './schema.js';

export interface MountsConfig {
  home?: HomeRule | undefined;
  data: DataRule[];
}

export interface MountPlan {
  volumes: Volume[];
  volumeMounts: VolumeMount[];
  /** The home directory as the container sees it (HOME, passwd); undefined without a home rule. */
  containerHome: string | undefined;
  rules: Explain['rules'];
}

// One path segment: no separators, no braces (KubeSpawner str.format()s every string), no
// whitespace, no ':' (passwd/group field separator), no leading dot-only names.
const SAFE_SEGMENT = /^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*$/;
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const SYSTEM_DIRS = ['/etc', '/proc', '/sys', '/dev'];

export const isSafeSegment = (value: string) => SAFE_SEGMENT.test(value) && value !== '..' && value !== '.';

/** Fills `{name}` placeholders; every substituted value must be a safe path segment. */
function fill(template: string, values: Record<string, string | undefined>, rule: string): string {
  return template.replace(PLACEHOLDER, (_, key: string) => {
    const value = values[key];
    if (value === undefined) {
      throw policyViolation(`Rule '${rule}' uses {${key}}, which has no value for this user.`, { rule });
    }
    if (!isSafeSegment(value)) {
      throw policyViolation(`Rule '${rule}' would put the unsafe value '${printable(value)}' into a path.`, {
        rule,
        placeholder: key,
      });
    }
    return value;
  });
}

/** Shows a hostile value in a message without letting it break the message. */
const printable = (value: string) => JSON.stringify(value).slice(1, -1).slice(0, 80);

/** Checks a final host path: absolute, clean, every segment safe, strictly under an allowed root. */
function confine(path: string, allowedRoots: string[], rule: string): string {
  const segments = path.split('/').slice(1);
  if (!path.startsWith('/') || segments.some((s) => !isSafeSegment(s))) {
    throw policyViolation(`Rule '${rule}' produced the unsafe path '${printable(path)}'.`, { rule });
  }
  const normal = posix.normalize(path);
  const root = allowedRoots.find((r) => normal.startsWith(r.endsWith('/') ? r : `${r}/`));
  if (root === undefined) {
    throw policyViolation(
      `Rule '${rule}' produced '${normal}', which is not under ${allowedRoots.join(' or ')}.`,
      {
        rule,
      },
    );
  }
  return normal;
}

function checkMountPath(mountPath: string, rule: string): string {
  const segments = mountPath.split('/').slice(1);
  const normal = posix.normalize(mountPath);
  if (!mountPath.startsWith('/') || segments.some((s) => !isSafeSegment(s)) || normal === '/') {
    throw policyViolation(`Rule '${rule}' produced the unsafe mount path '${printable(mountPath)}'.`, {
      rule,
    });
  }
  if (SYSTEM_DIRS.some((dir) => normal === dir || normal.startsWith(`${dir}/`))) {
    throw policyViolation(`Rule '${rule}' would mount over the system directory '${normal}'.`, { rule });
  }
  return normal;
}

const shortHash = (...parts: string[]) => hash('sha256', parts.join('\0')).slice(0, 8);

// Rules come from the frozen config: compile each regular expression once, not once per plan.
const compiled = new WeakMap<object, RegExp>();
function regexOf(owner: object, source: string): RegExp {
  let regex = compiled.get(owner);
  if (regex === undefined) {
    regex = new RegExp(source, 'u');
    compiled.set(owner, regex);
  }
  return regex;
}

function volumeFor(rule: string, source: VolumeSource, path: string, mountPath: string, readOnly: boolean) {
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
      : { name, hostPath: { path, type: source.hostPath.type } };
  return { volume, mount: { name, mountPath, readOnly } };
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

export function planMounts(checked: CheckedIdentity, config: MountsConfig): MountPlan {
  const { identity } = checked;
  const values: Record<string, string | undefined> = {
    username: identity.name,
    initial: identity.name.slice(0, 1).toLowerCase(),
    uid: String(identity.uid),
    gid: String(identity.gid),
  };
  const volumes = new Map<string, Volume>();
  const mounts: VolumeMount[] = [];
  const mountedBy = new Map<string, string>();
  const rules: Explain['rules'] = [];

  const add = (rule: string, source: VolumeSource, path: string, mountPath: string, readOnly: boolean) => {
    const owner = mountedBy.get(mountPath);
    const { volume, mount } = volumeFor(rule, source, path, mountPath, readOnly);
    if (owner !== undefined) {
      const same = mounts.find((m) => m.mountPath === mountPath);
      if (owner === rule && same?.name === mount.name && same.subPath === mount.subPath) return false;
      throw policyViolation(`Rules '${owner}' and '${rule}' both mount at '${mountPath}'.`, {
        rule,
        mountPath,
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
      path = fill(home.template as string, values, 'home');
    }
    path = confine(path, home.allowedRoots, 'home');
    containerHome = checkMountPath(fill(home.mountPath, values, 'home'), 'home');
    add('home', home.volume, path, containerHome, home.readOnly);
    rules.push({
      rule: 'home',
      outcome: 'mounted',
      reason: `home from ${home.from}`,
      path,
      mountPath: containerHome,
    });
  }

  for (const rule of config.data) {
    if (rule.fromGroup === undefined) {
      const path = confine(fill(rule.path, values, rule.name), rule.allowedRoots, rule.name);
      const mountPath = checkMountPath(fill(rule.mountPath, values, rule.name), rule.name);
      add(rule.name, rule.volume, path, mountPath, rule.readOnly);
      rules.push({ rule: rule.name, outcome: 'mounted', reason: 'static mount', path, mountPath });
      continue;
    }
    const matcher = regexOf(rule, rule.fromGroup);
    let matched = 0;
    for (const group of checked.keptGroups) {
      const match = matcher.exec(group.name);
      if (match === null) continue;
      matched += 1;
      const groupValues = { ...values, group: group.name, ...match.groups };
      const path = confine(fill(rule.path, groupValues, rule.name), rule.allowedRoots, rule.name);
      const mountPath = checkMountPath(fill(rule.mountPath, groupValues, rule.name), rule.name);
      const added = add(rule.name, rule.volume, path, mountPath, rule.readOnly);
      rules.push({
        rule: rule.name,
        group: group.name,
        outcome: added ? 'mounted' : 'skipped',
        reason: added ? `group '${group.name}' matches ${rule.fromGroup}` : 'same mount as an earlier group',
        path,
        mountPath,
      });
    }
    if (matched === 0) {
      rules.push({
        rule: rule.name,
        outcome: 'skipped',
        reason: `no group of this user matches ${rule.fromGroup}`,
      });
    }
  }

  return { volumes: [...volumes.values()], volumeMounts: mounts, containerHome, rules };
}
