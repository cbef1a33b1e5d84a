// What the planner produces, as zod schemas (the plan's response schema embeds them): Kubernetes
// volumes and mounts in the camelCase KubeSpawner accepts, and the trace of each rule's decision.
import { z } from 'zod';

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

export const RuleTraceSchema = z.object({
  rule: z.string(),
  group: z.string().optional(),
  outcome: z.enum(['mounted', 'skipped']),
  reason: z.string(),
  path: z.string().optional(),
  mountPath: z.string().optional(),
});

export type Volume = z.infer<typeof VolumeSchema>;
export type VolumeMount = z.infer<typeof VolumeMountSchema>;
export type RuleTrace = z.infer<typeof RuleTraceSchema>;
