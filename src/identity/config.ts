// The chain's config section: which source gives each field when several are merged.
import { z } from 'zod';

export const MergeSchema = z
  .strictObject({
    uid: z.string().optional(),
    gid: z.string().optional(),
    home: z.string().optional(),
    gecos: z.string().optional(),
    groups: z.string().optional(),
  })
  .describe(
    'Per-field source names, e.g. numbers from LDAP and groups from Keycloak. Unset: first source wins.',
  );

export type MergeConfig = z.output<typeof MergeSchema>;
