// The `keycloak` source's config: the realm and its service-account client, which user attributes
// hold the POSIX numbers, and which groups count.
import { z } from 'zod';
import { Duration, RegexString, readSecret, SourceName } from '../../../config/primitives.js';

const AttributeName = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'expected a Keycloak attribute name');

export const KeycloakSourceConfigSchema = z
  .strictObject({
    name: SourceName,
    type: z.literal('keycloak'),
    issuer: z
      .url({ protocol: /^https?$/ })
      .regex(/\/realms\/[^/]+\/?$/, 'expected a realm URL ending in /realms/NAME')
      .describe('The realm URL (its OIDC issuer), e.g. https://sso.example.org/realms/facility.'),
    clientId: z
      .string()
      .min(1)
      .describe(
        'A confidential client with service accounts enabled; its service account needs realm-management view-users.',
      ),
    clientSecretFile: z
      .string()
      .optional()
      .describe('File holding the client secret (a mounted Kubernetes Secret).'),
    clientSecretEnv: z.string().optional().describe('Environment variable holding the client secret.'),
    attributes: z
      .strictObject({
        uid: AttributeName.nullable()
          .default('uidNumber')
          .describe('User attribute holding the uid; null: this source gives no uid (e.g. groups only).'),
        gid: AttributeName.nullable()
          .default('gidNumber')
          .describe('User attribute holding the primary gid; null: this source gives no gid.'),
        home: AttributeName.nullable()
          .default('homeDirectory')
          .describe(
            'User attribute holding the home directory (an absolute path); null: not read. Optional on users.',
          ),
      })
      .prefault({})
      .describe(
        'User attributes read for the POSIX identity. Keycloak 24+ only returns attributes declared in the realm user profile (or all with unmanaged attributes enabled).',
      ),
    groups: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe('Read group memberships; false: this source gives no groups.'),
        gidAttribute: AttributeName.default('gidNumber').describe(
          'Group attribute holding the gid; groups without it are skipped (noted in explain).',
        ),
        nameFrom: z
          .enum(['name', 'path'])
          .default('name')
          .describe(
            "Group name reported: the group's own name (mx1234) or its path without the leading slash (proposals/mx1234).",
          ),
        include: z
          .array(RegexString)
          .default([])
          .describe(
            'Only groups whose path (e.g. /proposals/mx1234) matches one of these regexes; empty: all.',
          ),
        exclude: z
          .array(RegexString)
          .default([])
          .describe('Groups whose path matches one of these regexes are dropped.'),
      })
      .prefault({}),
    timeout: Duration.default(5000).describe(
      'Per request to Keycloak (token, users, groups); a spawn waits on it, so keep it well below the spawner timeout.',
    ),
    retryAfter: Duration.default(30_000).describe(
      'Retry-After sent with 503 while Keycloak cannot be asked.',
    ),
  })
  .transform((config, ctx) => {
    const clientSecret = readSecret(
      { file: config.clientSecretFile, env: config.clientSecretEnv },
      'clientSecret',
      ctx,
    );
    if (clientSecret === undefined) {
      if (config.clientSecretFile === undefined && config.clientSecretEnv === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['clientSecretFile'],
          message: 'set clientSecretFile or clientSecretEnv',
        });
      }
      return z.NEVER;
    }
    const { clientSecretFile: _file, clientSecretEnv: _env, ...rest } = config;
    return { ...rest, clientSecret };
  });

export type KeycloakSourceConfig = z.output<typeof KeycloakSourceConfigSchema>;
