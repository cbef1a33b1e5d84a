// The spawn plan's schema: what KubeSpawner applies. Cached, fresh, stale and explained plans all
// leave through it (./guard.ts): runAsNonRoot true, no privilege escalation, every capability
// dropped, no id 0.
import { z } from 'zod';
import { RuleTraceSchema, VolumeMountSchema, VolumeSchema } from '../mounts/volumes.js';

export const ExplainSchema = z
  .object({
    cache: z
      .enum(['hit', 'miss', 'stale', 'refresh', 'shared'])
      .describe(
        "How the identity was obtained this time; shared: from the cache tier all replicas share (another replica's lookup).",
      ),
    sources: z
      .array(z.object({ source: z.string(), result: z.string() }))
      .describe('Each source asked, in order, and what it said.'),
    origin: z.record(z.string(), z.string()).describe('Which source gave each field.'),
    rules: z.array(RuleTraceSchema).describe('Each mount rule and what it produced.'),
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
        capabilities: z.strictObject({ drop: z.tuple([z.literal('ALL')]) }),
        seccompProfile: z.strictObject({ type: z.literal('RuntimeDefault') }),
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
