// The `ldap` source: POSIX identities from an RFC2307 (posixGroup + memberUid) or RFC2307bis
// (groupOfNames / groupOfUniqueNames + member DNs, nested) directory. Config schema and factory;
// the lookup itself is ./directory.ts, the connections ./connection.ts (both shared with `ad`).
import type { Logger } from 'pino';
import { z } from 'zod';
import { ResourceName } from '../../../config/primitives.js';
import type { IdentitySource } from '../../types.js';
import type { SourceContext } from '../registry.js';
import {
  createLdapPool,
  type LdapConnectionSettings,
  LdapConnectionShape,
  resolveConnectionSecrets,
} from './connection.js';
import {
  createLdapDirectory,
  GroupPageSizeSchema,
  type LdapFlavour,
  MaxGroupsSchema,
  memberDnGroups,
  memberUidGroups,
  SearchBaseSchema,
  toSearchBases,
} from './directory.js';

const attr = (fallback: string, what: string) => z.string().min(1).default(fallback).describe(what);

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

const SCHEMA_DEFAULTS = {
  rfc2307: {
    userFilter: '(objectClass=posixAccount)',
    groupFilter: '(objectClass=posixGroup)',
    member: ['memberUid'],
  },
  rfc2307bis: {
    userFilter: '(objectClass=posixAccount)',
    groupFilter: '(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))',
    member: ['member', 'uniqueMember'],
  },
} as const;

export const LdapSourceConfigSchema = z
  .strictObject({
    name: ResourceName.describe('Source name, used in explain traces, metrics and merge.'),
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

export function ldapFlavour(config: LdapSourceConfig): LdapFlavour {
  const defaults = SCHEMA_DEFAULTS[config.schema];
  const member = config.groups.attributes.member ?? [...defaults.member];
  return {
    userBases: toSearchBases(config.users.bases, defaults.userFilter),
    userAttributes: config.users.attributes,
    groupBases: toSearchBases(config.groups.bases, defaults.groupFilter),
    groupAttributes: { name: config.groups.attributes.name, gid: config.groups.attributes.gid },
    resolveGroups:
      config.schema === 'rfc2307'
        ? memberUidGroups(member)
        : memberDnGroups(member, config.groups.maxNestingDepth),
    caseSensitiveNames: config.caseSensitiveNames,
    groupPageSize: config.groups.pageSize,
    maxGroups: config.groups.maxGroups,
  };
}

/** Builds any LDAP-based source from connection settings and a flavour (used by `ldap` and `ad`). */
export function createLdapBackedSource(
  name: string,
  type: string,
  settings: LdapConnectionSettings,
  flavour: LdapFlavour,
  log: Logger,
): IdentitySource {
  const pool = createLdapPool(name, settings, log.child({ source: name }));
  const directory = createLdapDirectory(name, pool, flavour);
  return {
    name,
    type,
    lookup: (username) => directory.lookup(username),
    health: () => pool.health(),
    close: () => pool.close(),
  };
}

export function createLdapSource(config: LdapSourceConfig, ctx: SourceContext): IdentitySource {
  return createLdapBackedSource(config.name, 'ldap', config, ldapFlavour(config), ctx.log);
}
