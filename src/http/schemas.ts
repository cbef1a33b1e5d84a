// The HTTP contract: every request and response body as a zod schema with a registered id, so
// the generated OpenAPI document uses $refs. openapi/openapi.json is generated from these.
import { z } from 'zod';

export const UsernameParams = z.object({
  name: z.string().describe('The JupyterHub username (URL-encoded).'),
});

export const ExplainQuery = z.object({
  explain: z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .describe('Include a trace of how the answer was reached.'),
});

export const ProblemSchema = z
  .object({
    type: z.string().describe('A URI naming the problem type.'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe('Stable machine-readable error code, e.g. USER_NOT_FOUND.'),
    instance: z.string().optional(),
  })
  .catchall(z.unknown())
  .meta({ id: 'Problem', description: 'RFC 9457 problem details.' });

export const GroupSchema = z.object({ name: z.string(), gid: z.number().int() }).meta({ id: 'Group' });

export const IdentitySchema = z
  .object({
    name: z.string().describe('Canonical login name from the directory.'),
    uid: z.number().int(),
    gid: z.number().int(),
    home: z.string().optional().describe('Home directory as the directory states it (before rewrites).'),
    gecos: z.string().optional(),
    groups: z.array(GroupSchema).describe('Supplementary groups the directory reports (before policy).'),
    source: z.string().describe('Source that answered (first in the chain, or the uid source when merging).'),
    origin: z.record(z.string(), z.string()).describe('Which source gave each field.'),
    stale: z.boolean().describe('True when served from cache past its TTL because the source is down.'),
  })
  .meta({ id: 'Identity' });

export const VolumeSchema = z
  .object({
    name: z.string(),
    nfs: z.object({ server: z.string(), path: z.string(), readOnly: z.boolean() }).optional(),
    hostPath: z.object({ path: z.string(), type: z.string() }).optional(),
    persistentVolumeClaim: z.object({ claimName: z.string(), readOnly: z.boolean() }).optional(),
  })
  .meta({ id: 'Volume', description: 'A Kubernetes V1Volume (camelCase, as KubeSpawner accepts).' });

export const VolumeMountSchema = z
  .object({
    name: z.string(),
    mountPath: z.string(),
    readOnly: z.boolean(),
    subPath: z.string().optional(),
  })
  .meta({ id: 'VolumeMount' });

export const ExplainSchema = z
  .object({
    cache: z.enum(['hit', 'miss', 'stale', 'refresh']).describe('How the identity was obtained this time.'),
    sources: z
      .array(z.object({ source: z.string(), result: z.string() }))
      .describe('Each source asked, in order, and what it said.'),
    origin: z.record(z.string(), z.string()).describe('Which source gave each field.'),
    rules: z
      .array(
        z.object({
          rule: z.string(),
          group: z.string().optional(),
          outcome: z.enum(['mounted', 'skipped']),
          reason: z.string(),
          path: z.string().optional(),
          mountPath: z.string().optional(),
        }),
      )
      .describe('Each mount rule and what it produced.'),
    droppedGroups: z
      .array(z.object({ name: z.string(), gid: z.number().int(), reason: z.string() }))
      .describe('Groups left out of supplementalGids and why.'),
    notes: z.array(z.string()).describe('Other decisions worth knowing (sanitised fields, sources skipped).'),
  })
  .meta({ id: 'Explain' });

export const SpawnPlanSchema = z
  .object({
    username: z.string().describe('Canonical login name; what NB_USER and the passwd line carry.'),
    uid: z.number().int().min(1),
    gid: z.number().int().min(1),
    supplementalGids: z.array(z.number().int().min(1)),
    fsGid: z.null().describe('Always null: NFS ownership comes from uid/gid, not an fsGroup chown.'),
    containerSecurityContext: z
      .object({
        runAsUser: z.number().int(),
        runAsGroup: z.number().int(),
        runAsNonRoot: z.literal(true),
        allowPrivilegeEscalation: z.literal(false),
        capabilities: z.object({ drop: z.array(z.literal('ALL')) }),
      })
      .describe('What the spawner enforces over any profile override.'),
    environment: z.record(z.string(), z.string()),
    volumes: z.array(VolumeSchema),
    volumeMounts: z.array(VolumeMountSchema),
    nss: z
      .object({
        passwd: z.array(z.string()).describe('Lines to append to the image /etc/passwd.'),
        group: z.array(z.string()).describe('Lines to append to the image /etc/group.'),
      })
      .nullable()
      .describe('null when the site turned the NSS init container off.'),
    source: z.string(),
    stale: z.boolean(),
    explain: ExplainSchema.optional(),
  })
  .meta({ id: 'SpawnPlan' });

export type SpawnPlan = z.infer<typeof SpawnPlanSchema>;
export type Explain = z.infer<typeof ExplainSchema>;
export type Volume = z.infer<typeof VolumeSchema>;
export type VolumeMount = z.infer<typeof VolumeMountSchema>;

export const SourceStateSchema = z
  .object({
    name: z.string(),
    type: z.string(),
    up: z.boolean(),
    since: z.string(),
    lastError: z.string().optional(),
  })
  .meta({ id: 'SourceState' });

export const ReadySchema = z
  .object({ status: z.literal('ready'), sources: z.array(SourceStateSchema) })
  .meta({ id: 'Readiness' });

export const HealthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Liveness' });

export const CacheEvictedSchema = z
  .object({ name: z.string(), evicted: z.boolean() })
  .meta({ id: 'CacheEviction' });
