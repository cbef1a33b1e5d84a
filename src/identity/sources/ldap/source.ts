// The `ldap` source: POSIX identities from an RFC2307 (posixGroup + memberUid) or RFC2307bis
// (groupOfNames / groupOfUniqueNames + member DNs, nested) directory. Config schema and factory;
// the lookup itself is ./directory.ts, the connections ./connection.ts (both shared with `ad`).
import type { Logger } from 'pino';
import type { IdentitySource, SourceContext } from '../../types.js';
import type { LdapConnectionSettings, LdapSourceConfig } from './config.js';
import { createLdapPool } from './connection.js';
import {
  createLdapDirectory,
  type LdapFlavour,
  memberDnGroups,
  memberUidGroups,
  toSearchBases,
} from './directory.js';

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
    foldsCase: !flavour.caseSensitiveNames,
    lookup: (username) => directory.lookup(username),
    health: () => pool.health(),
    close: () => pool.close(),
  };
}

export function createLdapSource(config: LdapSourceConfig, ctx: SourceContext): IdentitySource {
  return createLdapBackedSource(config.name, 'ldap', config, ldapFlavour(config), ctx.log);
}
