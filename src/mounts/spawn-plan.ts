// Assembles the SpawnPlan KubeSpawner applies: identity numbers after policy, environment, the
// planned mounts, and the passwd/group lines that end "I have no name!" in the container.
import type { Config } from '../config/schema.js';
import { IdmountError } from '../errors.js';
import type { Explain, SpawnPlan } from '../http/schemas.js';
import type { Identity } from '../identity/types.js';
import { checkIdentity } from '../policy/policy.js';
import { type MountJson, planMounts } from './planner.js';

export interface FullPlan {
  plan: SpawnPlan;
  explain: Omit<Explain, 'cache' | 'sources'>;
}

/**
 * What the resolver caches per identity: the plan serialised once per cache fill (a cached spawn
 * writes these bytes as they are), or the policy error. Only the string is kept — an object graph
 * per plan would triple the memory of a 100 000-user cache; explain and stale answers rebuild the
 * plan from the cached identity, which is deterministic.
 */
export type PlanOutcome = { ok: true; json: string } | { ok: false; error: IdmountError };

// Fields of passwd/group lines: ':' separates fields, ',' separates members, newlines separate
// entries. A value with any of them (or a control character) would forge a second entry. Braces
// are left out too: KubeSpawner str.format()s what it is given, and a directory value is never
// worth a format field in the init container's command.
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const NSS_UNSAFE = /[:,{}\n\r\u0000-\u001f\u007f]/;

/** Where HOME points when the site mounts no home directory: the one path every image can write. */
const FALLBACK_HOME = '/tmp';

type PlanConfig = Pick<Config, 'policy' | 'home' | 'data' | 'spawner'>;

export function createPlanDeriver(config: PlanConfig) {
  return {
    /** For the cache: the plan's JSON, or the error that refuses it. */
    derive(identity: Identity): PlanOutcome {
      try {
        const { plan, mountJson } = buildPlan(identity, config, false);
        return { ok: true, json: planJson(plan, mountJson as MountJson) };
      } catch (err) {
        if (err instanceof IdmountError) return { ok: false, error: err };
        throw err;
      }
    },
    /** The plan with its explanation; throws the IdmountError that refuses it. */
    full: (identity: Identity): FullPlan => buildPlan(identity, config, true),
  };
}

export type PlanDeriver = ReturnType<typeof createPlanDeriver>;

/**
 * `JSON.stringify(plan)`, with the volumes and mounts as the planner wrote them: a group's volume
 * is shared by its members and its JSON is written once, so a plan's body is mostly spliced text.
 * The keys come out in the plan's order; a test holds this to JSON.stringify for every rule kind.
 */
function planJson(plan: SpawnPlan, mounts: MountJson): string {
  const head = JSON.stringify({
    username: plan.username,
    uid: plan.uid,
    gid: plan.gid,
    supplementalGids: plan.supplementalGids,
    fsGid: plan.fsGid,
    containerSecurityContext: plan.containerSecurityContext,
    environment: plan.environment,
  });
  const tail = JSON.stringify({ nss: plan.nss, source: plan.source, stale: plan.stale });
  return `${head.slice(0, -1)},"volumes":[${mounts.volumes.join(',')}],"volumeMounts":[${mounts.volumeMounts.join(',')}],${tail.slice(1)}`;
}

/**
 * The plan; with `explain`, also the trace of how it was reached, without it the JSON the planner
 * wrote for each volume and mount (for the cache).
 */
function buildPlan(
  identity: Identity,
  config: PlanConfig,
  explain: boolean,
): FullPlan & { mountJson?: MountJson } {
  const checked = checkIdentity(identity, config.policy);
  const mounts = planMounts(checked, { home: config.home, data: config.data }, explain);
  const notes = [...identity.notes];
  const home = mounts.containerHome ?? FALLBACK_HOME;
  if (mounts.containerHome === undefined) notes.push(`no home rule: HOME is ${FALLBACK_HOME}`);

  let gecos = identity.gecos ?? '';
  if (NSS_UNSAFE.test(gecos.replaceAll(',', ''))) {
    notes.push('gecos left out of the passwd line: it holds a separator, brace or control character');
    gecos = '';
  }
  let nss: SpawnPlan['nss'] = null;
  if (config.spawner.nss === 'initContainer') {
    const group: string[] = [];
    for (const g of checked.keptGroups) {
      if (NSS_UNSAFE.test(g.name) || g.name.length === 0) {
        notes.push(`group gid ${g.gid} has a name unusable in /etc/group; its gid is still granted`);
        continue;
      }
      group.push(`${g.name}:x:${g.gid}:${g.gid === identity.gid ? '' : identity.name}`);
    }
    nss = {
      passwd: [`${identity.name}:x:${identity.uid}:${identity.gid}:${gecos}:${home}:${config.spawner.shell}`],
      group,
    };
  }

  const plan: SpawnPlan = {
    username: identity.name,
    uid: identity.uid,
    gid: identity.gid,
    supplementalGids: checked.supplementalGids,
    fsGid: null,
    containerSecurityContext: {
      runAsUser: identity.uid,
      runAsGroup: identity.gid,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    },
    environment: {
      NB_USER: identity.name,
      NB_UID: String(identity.uid),
      NB_GID: String(identity.gid),
      USER: identity.name,
      LOGNAME: identity.name,
      HOME: home,
    },
    volumes: mounts.volumes,
    volumeMounts: mounts.volumeMounts,
    nss,
    source: identity.origin.uid ?? 'unknown',
    stale: false,
  };
  if (!explain) {
    return {
      plan,
      explain: { origin: {}, rules: [], droppedGroups: [], notes: [] },
      mountJson: mounts.json,
    };
  }
  const origin = Object.fromEntries(
    Object.entries(identity.origin).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  return {
    plan,
    explain: {
      origin,
      rules: mounts.rules,
      droppedGroups: checked.droppedGroups,
      notes,
    },
  };
}
