// The spawner section: what the plan asks of the container beyond identity and mounts.
import { z } from 'zod';

export const SpawnerSchema = z
  .strictObject({
    nss: z
      .enum(['initContainer', 'none'])
      .default('initContainer')
      .describe('Ship passwd/group lines in the plan so the spawner can fix "I have no name!".'),
    shell: z
      .string()
      .regex(/^\/[A-Za-z0-9._/-]+$/)
      .default('/bin/bash')
      .describe(
        "Login shell in the container's passwd line (the directory's shell may not exist in the image).",
      ),
  })
  .prefault({});

export type SpawnerConfig = z.output<typeof SpawnerSchema>;
