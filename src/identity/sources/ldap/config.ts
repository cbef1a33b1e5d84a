// The `ldap` source's config: connection keys (shared with `ad`), search bases, attribute names
// and group rules. Schemas only; secrets and the CA file are read here, at config load. ldapts is
// imported for one thing: parsing an admin's LDAP filter, so a bad one is a config error.
import { readFileSync } from 'node:fs';
import { FilterParser } from 'ldapts';
import { z } from 'zod';
import { Duration, readSecret, SourceName } from '../../../config/primitives.js';

export const LdapUrl = z
  .string()
  .regex(/^ldaps?:\/\/[^/?#\s]+\/?$/, 'expected ldap://host[:port] or ldaps://host[:port]')
  .describe('An LDAP server URL.');

/**
 * Connection keys every LDAP-based source accepts (spread into the source's strictObject).
 * Secrets are read by `resolveConnectionSecrets` in the source schema's transform.
 */
export const LdapConnectionShape = {
  urls: z
    .array(LdapUrl)
    .min(1)
    .describe('Servers tried in order; the next one is used when a server cannot be reached (failover).'),
  startTls: z
    .boolean()
    .default(false)
    .describe('Upgrade ldap:// connections with StartTLS before binding. Not used with ldaps:// URLs.'),
  caFile: z
    .string()
    .optional()
    .describe('PEM file with the CA certificate(s) that signed the server certificate (LDAPS / StartTLS).'),
  tlsVerify: z
    .boolean()
    .default(true)
    .describe(
      'Verify the server certificate and host name. Turn off only for a lab directory; never in production.',
    ),
  tlsServerName: z
    .string()
    .optional()
    .describe('Host name expected in the server certificate when it differs from the URL host.'),
  bindDN: z.string().min(1).optional().describe('DN to bind as. Without it the source binds anonymously.'),
  bindPasswordFile: z
    .string()
    .optional()
    .describe('File holding the bind password (a mounted Kubernetes Secret).'),
  bindPasswordEnv: z.string().optional().describe('Environment variable holding the bind password.'),
  poolSize: z
    .number()
    .int()
    .min(1)
    .max(32)
    .default(4)
    .describe(
      'Bound connections kept open. LDAP multiplexes requests, so a few connections carry many lookups.',
    ),
  connectTimeout: Duration.prefault('3s').describe(
    'Time allowed to open a connection (TCP + TLS + bind) to one server before the next URL is tried.',
  ),
  operationTimeout: Duration.prefault('5s').describe(
    'Time allowed for one search. Well under KubeSpawner start timeouts, so a stuck server fails a spawn quickly.',
  ),
  backoff: z
    .strictObject({
      initial: Duration.prefault('1s').describe('First wait after the directory is found down.'),
      max: Duration.prefault('60s').describe('Longest wait between attempts while the directory stays down.'),
    })
    .prefault({})
    .describe(
      'Jittered exponential backoff while the directory is down: lookups fail fast instead of hammering it.',
    ),
} as const;

const ConnectionKeysSchema = z.object(LdapConnectionShape);
type ConnectionKeys = z.output<typeof ConnectionKeysSchema>;

/** Connection settings after config load: the secret and the CA are read, never kept as paths. */
export interface LdapConnectionSettings
  extends Omit<ConnectionKeys, 'bindPasswordFile' | 'bindPasswordEnv' | 'caFile'> {
  bindPassword?: string;
  caFile?: string;
  ca?: string;
}

/**
 * Reads the bind password and the CA file at config load time, recording issues on the exact keys.
 * Call from the source schema's `.transform()`.
 */
export function resolveConnectionSecrets<
  T extends Pick<
    ConnectionKeys,
    'urls' | 'startTls' | 'caFile' | 'bindDN' | 'bindPasswordFile' | 'bindPasswordEnv'
  >,
>(
  config: T,
  ctx: z.RefinementCtx,
): Omit<T, 'bindPasswordFile' | 'bindPasswordEnv'> & { bindPassword?: string; ca?: string } {
  const { bindPasswordFile, bindPasswordEnv, ...rest } = config;
  const bindPassword = readSecret({ file: bindPasswordFile, env: bindPasswordEnv }, 'bindPassword', ctx);
  if (config.bindDN !== undefined && bindPasswordFile === undefined && bindPasswordEnv === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['bindPasswordFile'],
      message: 'bindDN needs bindPasswordFile or bindPasswordEnv',
    });
  }
  if (config.bindDN === undefined && (bindPasswordFile !== undefined || bindPasswordEnv !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['bindDN'], message: 'a bind password is set but no bindDN' });
  }
  if (config.startTls && config.urls.some((u) => u.startsWith('ldaps:'))) {
    ctx.addIssue({
      code: 'custom',
      path: ['startTls'],
      message: 'startTls applies to ldap:// URLs only; ldaps:// is already TLS',
    });
  }
  let ca: string | undefined;
  if (config.caFile !== undefined) {
    try {
      ca = readFileSync(config.caFile, 'utf8');
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in the file');
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        path: ['caFile'],
        message: `cannot read CA file ${config.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      });
    }
  }
  return {
    ...rest,
    ...(bindPassword !== undefined ? { bindPassword } : {}),
    ...(ca !== undefined ? { ca } : {}),
  };
}

/** An LDAP filter written by an admin in the config: validated (parsed) at config load. */
export const LdapFilterString = z.string().superRefine((value, ctx) => {
  try {
    FilterParser.parseString(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a valid LDAP filter: ${(err as Error).message}` });
  }
});

export const SearchBaseSchema = z.strictObject({
  base: z.string().min(1).describe('Search base DN, e.g. ou=People,dc=example,dc=org.'),
  scope: z.enum(['base', 'one', 'sub']).default('sub').describe('Search scope below the base.'),
  filter: LdapFilterString.optional().describe(
    'Extra LDAP filter ANDed with the lookup, e.g. (objectClass=posixAccount). Defaults depend on the schema.',
  ),
});
export type SearchBaseConfig = z.infer<typeof SearchBaseSchema>;

/** Page size of group searches (ldap and ad alike); each source says why in its description. */
export const GroupPageSizeSchema = z.number().int().min(1).max(10_000).default(500);

/** How many groups one lookup may read (ldap and ad alike). */
export const MaxGroupsSchema = z
  .number()
  .int()
  .min(1)
  .default(2000)
  .describe('Most groups read for one user; more are cut and the cut noted in explain traces.');

export const attr = (fallback: string, what: string) => z.string().min(1).default(fallback).describe(what);

export const LdapUserAttributesSchema = z
  .strictObject({
    name: attr('uid', 'Login name attribute (what JupyterHub calls the username).'),
    uid: attr('uidNumber', 'Numeric user id attribute.'),
    gid: attr('gidNumber', 'Numeric primary group id attribute.'),
    home: attr('homeDirectory', 'Home directory attribute (used by home.from: attribute).'),
    gecos: attr('cn', 'Full name attribute, written to the passwd GECOS field.'),
    shell: attr('loginShell', 'Login shell attribute.'),
    mail: attr('mail', 'Mail attribute, shown in explain traces.'),
  })
  .prefault({});

export const LdapSourceConfigSchema = z
  .strictObject({
    name: SourceName,
    type: z.literal('ldap'),
    schema: z
      .enum(['rfc2307', 'rfc2307bis'])
      .default('rfc2307')
      .describe(
        'rfc2307: posixGroup lists login names in memberUid. rfc2307bis: groupOfNames / groupOfUniqueNames list member DNs and may nest.',
      ),
    ...LdapConnectionShape,
    caseSensitiveNames: z
      .boolean()
      .default(true)
      .describe(
        "LDAP matches uid case-insensitively. true: a request whose case differs from the directory's spelling is not this user (like SSSD). false: answer with the directory's spelling.",
      ),
    users: z
      .strictObject({
        bases: z
          .array(SearchBaseSchema)
          .min(1)
          .describe(
            'Where users are searched, in order; an entry found under two bases is an error, not a guess.',
          ),
        attributes: LdapUserAttributesSchema.describe('Attribute names of user entries.'),
      })
      .describe('User search.'),
    groups: z
      .strictObject({
        bases: z
          .array(SearchBaseSchema)
          .default([])
          .describe(
            'Where groups are searched. Empty: this source provides no groups (merge them from another source).',
          ),
        attributes: z
          .strictObject({
            name: attr('cn', 'Group name attribute.'),
            gid: attr('gidNumber', 'Numeric group id attribute.'),
            member: z
              .array(z.string().min(1))
              .min(1)
              .optional()
              .describe(
                'Member attributes. Default: [memberUid] for rfc2307 (login names), [member, uniqueMember] for rfc2307bis (DNs).',
              ),
          })
          .prefault({})
          .describe('Attribute names of group entries.'),
        maxNestingDepth: z
          .number()
          .int()
          .min(0)
          .max(10)
          .default(2)
          .describe(
            'rfc2307bis: levels of parent groups followed above direct groups (0 = direct only). Cycles are safe.',
          ),
        pageSize: GroupPageSizeSchema.describe(
          'Group searches are paged (RFC 2696) with this page size, so big results never hit server limits.',
        ),
        maxGroups: MaxGroupsSchema,
      })
      .prefault({})
      .describe('Group search.'),
  })
  .transform((config, ctx) => resolveConnectionSecrets(config, ctx));

export type LdapSourceConfig = z.output<typeof LdapSourceConfigSchema>;
