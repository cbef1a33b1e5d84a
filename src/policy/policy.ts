// Policy: what idmount refuses. Usernames are checked before any directory is asked; identities
// after. Violations are errors with codes, never silently "fixed" — except supplemental groups
// below the floor, which are dropped (and reported in explain) because a user may legitimately
// belong to system groups that must not follow them into a notebook.
import { invalidUsername, policyViolation } from '../errors.js';
import type { DirectoryGroup, Identity } from '../identity/types.js';
import { foldsOntoAscii } from '../identity/values.js';
import type { PolicyConfig } from './config.js';

export interface DroppedGroup extends DirectoryGroup {
  reason: string;
}

export interface CheckedIdentity {
  identity: Identity;
  /** Supplemental gids that survive policy, sorted, without the primary gid. */
  supplementalGids: number[];
  /** Groups kept (for NSS lines), including the primary group when known. */
  keptGroups: DirectoryGroup[];
  droppedGroups: DroppedGroup[];
}

// Always refused whatever the site's pattern says: path separators, parent references, NUL,
// control characters and any whitespace (these turn names into paths, filters or log lines).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const ALWAYS_REFUSED = /[/\\\u0000-\u001f\u007f-\u009f\s]|\.\./u;

export function createUsernameCheck(policy: PolicyConfig) {
  const pattern = new RegExp(policy.username.pattern, 'u');
  const { maxLength } = policy.username;
  return function checkUsername(name: string): void {
    if (name.length === 0) throw invalidUsername('it is empty');
    if (name.length > maxLength) throw invalidUsername(`it is longer than ${maxLength} characters`);
    if (ALWAYS_REFUSED.test(name)) {
      throw invalidUsername('it contains a path separator, "..", whitespace or a control character');
    }
    // Such a name would match another user's in a case-insensitive directory (the Kelvin sign K
    // folds to k) while differing from it everywhere else: cache keys, eviction, paths.
    if (foldsOntoAscii(name)) {
      throw invalidUsername('it contains a character that case-folds or normalises onto an ASCII letter');
    }
    if (!pattern.test(name))
      throw invalidUsername(`it does not match the pattern ${policy.username.pattern}`);
  };
}

// The policy is frozen config: build its allow-set once, not once per identity.
const allowSets = new WeakMap<PolicyConfig, ReadonlySet<number>>();
function alwaysAllowed(policy: PolicyConfig): ReadonlySet<number> {
  let set = allowSets.get(policy);
  if (set === undefined) {
    set = new Set(policy.alwaysAllowGids);
    allowSets.set(policy, set);
  }
  return set;
}

/** Applies the uid/gid floors and ceilings. Throws POLICY_VIOLATION for the user's own ids. */
export function checkIdentity(identity: Identity, policy: PolicyConfig): CheckedIdentity {
  const { uid, gid } = identity;
  if (uid === 0)
    throw policyViolation(`The directory gives '${identity.name}' uid 0 (root), which is never allowed.`, {
      field: 'uid',
    });
  if (gid === 0)
    throw policyViolation(`The directory gives '${identity.name}' gid 0 (root), which is never allowed.`, {
      field: 'gid',
    });
  if (uid < policy.minUid || uid > policy.maxUid) {
    throw policyViolation(
      `The uid ${uid} of '${identity.name}' is outside the allowed range ${policy.minUid}-${policy.maxUid}.`,
      { field: 'uid', value: uid },
    );
  }
  if (gid < policy.minGid || gid > policy.maxGid) {
    throw policyViolation(
      `The primary gid ${gid} of '${identity.name}' is outside the allowed range ${policy.minGid}-${policy.maxGid}.`,
      { field: 'gid', value: gid },
    );
  }

  const allowed = alwaysAllowed(policy);
  const keptGroups: DirectoryGroup[] = [];
  const droppedGroups: DroppedGroup[] = [];
  const supplemental = new Set<number>();
  for (const group of identity.groups) {
    let reason: string | undefined;
    if (group.gid === 0) reason = 'gid 0 is never allowed';
    else if (!allowed.has(group.gid) && group.gid < policy.minGid) reason = `below minGid ${policy.minGid}`;
    else if (!allowed.has(group.gid) && group.gid > policy.maxGid) reason = `above maxGid ${policy.maxGid}`;
    if (reason !== undefined) {
      droppedGroups.push({ ...group, reason });
      continue;
    }
    keptGroups.push(group);
    if (group.gid !== gid) supplemental.add(group.gid);
  }
  // extraGids are granted to everyone even when the directory does not list them:
  // docker-stacks images need 'users' (100) for conda, whoever the user is.
  for (const extra of policy.extraGids) if (extra !== gid) supplemental.add(extra);

  return {
    identity,
    supplementalGids: [...supplemental].sort((a, b) => a - b),
    keptGroups,
    droppedGroups,
  };
}
