// Builds the SpawnPlan KubeSpawner applies: identity numbers after policy, environment, the planned
// mounts, and the NSS lines. A plan is built as an object; its body for the cache is made once per
// cache fill through the response schema's guard (./guard.ts), so every answer passes the same check.
import { IdmountError, policyViolation } from '../errors.js';
import type { Identity } from '../identity/types.js';
import type { MountsConfig } from '../mounts/planner.js';
import { planMounts } from '../mounts/planner.js';
import type { RuleTrace } from '../mounts/volumes.js';
import type { PolicyConfig } from '../policy/config.js';
import { checkIdentity, type DroppedGroup } from '../policy/policy.js';
import type { SpawnerConfig } from './config.js';
import { planBody } from './guard.js';
import { nssLines, nssName } from './nss.js';
import type { SpawnPlan } from './schema.js';

/** What an explain request collects while a plan is built. */
export interface PlanTrace {
  rules: RuleTrace[];
  droppedGroups: DroppedGroup[];
  notes: string[];
}

export interface PlanConfig extends MountsConfig {
  policy: PolicyConfig;
  spawner: SpawnerConfig;
}

/**
 * What the resolver caches per identity: the plan's body (a cached spawn writes these bytes as they
 * are), or the policy error that refuses it. Only the string is kept — an object graph per plan
 * would triple the memory of a 100 000-user cache.
 */
export type PlanOutcome = { ok: true; body: string } | { ok: false; error: IdmountError };

/** Shows a hostile value in a message without letting it break the message. */
const printable = (value: string) => JSON.stringify(value).slice(1, -1).slice(0, 80);

/** Where HOME points when the site mounts no home directory: the one path every image can write. */
const FALLBACK_HOME = '/tmp';

export const newTrace = (): PlanTrace => ({ rules: [], droppedGroups: [], notes: [] });

/** The plan for an identity; with `trace`, how it was reached. Throws the IdmountError that refuses it. */
export function buildPlan(identity: Identity, config: PlanConfig, trace?: PlanTrace): SpawnPlan {
  const checked = checkIdentity(identity, config.policy);
  // Whatever policy.username.pattern allows, a name that would forge passwd or group fields never
  // reaches an NSS line.
  if (config.spawner.nss === 'initContainer' && !nssName(identity.name)) {
    throw policyViolation(
      `The username '${printable(identity.name)}' cannot stand in a passwd line (it holds ':', ',' or a control character).`,
      { field: 'username' },
    );
  }
  const mounts = planMounts(checked, config, trace?.rules);
  const home = mounts.containerHome ?? FALLBACK_HOME;
  let nss: SpawnPlan['nss'] = null;
  let nssNotes: string[] = [];
  if (config.spawner.nss === 'initContainer') {
    const lines = nssLines(
      {
        name: identity.name,
        uid: identity.uid,
        gid: identity.gid,
        gecos: identity.gecos,
        home,
        shell: config.spawner.shell,
      },
      checked.keptGroups,
    );
    nss = { passwd: lines.passwd, group: lines.group };
    nssNotes = lines.notes;
  }
  if (trace !== undefined) {
    trace.droppedGroups.push(...checked.droppedGroups);
    trace.notes.push(...identity.notes);
    if (mounts.containerHome === undefined) trace.notes.push(`no home rule: HOME is ${FALLBACK_HOME}`);
    trace.notes.push(...nssNotes);
  }
  return {
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
      // Pod Security "restricted" requires it; a site's own profile replaces it in the spawner.
      seccompProfile: { type: 'RuntimeDefault' },
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
}

/** For the cache: the plan's body, or the error that refuses it. */
export function derivePlan(identity: Identity, config: PlanConfig): PlanOutcome {
  let plan: SpawnPlan;
  try {
    plan = buildPlan(identity, config);
  } catch (err) {
    if (err instanceof IdmountError) return { ok: false, error: err };
    throw err;
  }
  return { ok: true, body: planBody(plan) };
}

/** The plan with the trace of how it was reached (explain requests, the CLI). */
export function explainPlan(identity: Identity, config: PlanConfig) {
  const trace = newTrace();
  const plan = buildPlan(identity, config, trace);
  const origin: Record<string, string> = {};
  for (const [field, source] of Object.entries(identity.origin))
    if (source !== undefined) origin[field] = source;
  return { plan, explain: { origin, ...trace } };
}
