// What the planner produces, as zod schemas (the plan's response schema embeds them): Kubernetes
// volumes and mounts in the camelCase KubeSpawner accepts, and the trace of each rule's decision.
import { z } from 'zod';

export const VolumeSchema = z
  .object({
    name: z.string(),
    nfs: z.object({ server: z.string(), path: z.string(), readOnly: z.boolean() }).optional(),
    hostPath: z.object({ path: z.string(), type: z.string() }).optional(),
    persistentVolumeClaim: z.object({ claimName: z.string(), readOnly: z.boolean() }).optional(),
    csi: z
      .object({
        driver: z.string(),
        readOnly: z.boolean(),
        volumeAttributes: z.record(z.string(), z.string()),
      })
      .optional(),
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

export const RuleTraceSchema = z.object({
  rule: z.string(),
  group: z.string().optional(),
  outcome: z.enum(['mounted', 'skipped']),
  reason: z.string(),
  path: z.string().optional(),
  mountPath: z.string().optional(),
  podSecurity: z
    .enum(['restricted', 'baseline', 'privileged'])
    .optional()
    .describe('The Pod Security level a namespace needs to admit this volume kind.'),
});

export type Volume = z.infer<typeof VolumeSchema>;
export type VolumeMount = z.infer<typeof VolumeMountSchema>;
export type RuleTrace = z.infer<typeof RuleTraceSchema>;
