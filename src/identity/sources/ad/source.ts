// The `ad` source: Active Directory through the shared LDAP pool and lookup (../ldap), with AD's
// defaults: sAMAccountName logins (or userPrincipalName), RFC2307 attributes (uidNumber, gidNumber,
// unixHomeDirectory, loginShell), group membership through `member` with nesting resolved by the
// server (LDAP_MATCHING_RULE_IN_CHAIN), objectSid read as binary and shown in explain traces,
// SSSD-compatible ID mapping for entries without POSIX numbers, and a refusal of disabled accounts.
import { type Entry, EqualityFilter, ExtensibleFilter, type Filter, OrFilter } from 'ldapts';
import { directoryEntryInvalid, policyViolation } from '../../../errors.js';
import type { IdentitySource, SourceContext } from '../../types.js';
import { firstText, rawValues } from '../../values.js';
import { type GroupEntry, type GroupResolver, type LdapFlavour, toSearchBases } from '../ldap/directory.js';
import { createLdapBackedSource } from '../ldap/source.js';
import type { AdSourceConfig } from './config.js';
import { IdMapError, type IdMapping, SssdIdMapper } from './idmap.js';
import { decodeSid, encodeSid, splitObjectSid } from './sid.js';

/** LDAP_MATCHING_RULE_IN_CHAIN: the DC walks nested `member` links itself, to any depth, cycle-safe. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';
/** userAccountControl ACCOUNTDISABLE (MS-ADTS 2.2.16). */
const ACCOUNTDISABLE = 0x2;

/** The entry's objectSid in text form; undefined when absent; an error names a malformed one. */
function objectSidOf(entry: Entry, source: string, who: string): string | undefined {
  const value = rawValues(entry, 'objectSid')[0];
  if (value === undefined) return undefined;
  try {
    return decodeSid(Buffer.isBuffer(value) ? value : Buffer.from(value, 'binary'));
  } catch (err) {
    throw directoryEntryInvalid(
      source,
      `The directory entry for '${who}' has a malformed objectSid: ${(err as Error).message}.`,
      {
        attribute: 'objectSid',
        user: who,
      },
    );
  }
}

/**
 * `user@REALM` and `DOMAIN\user` → `user` for the configured realms/domains; undefined for a
 * qualified name of another domain (it cannot be in this directory). Case is left to the server.
 */
export function normaliseAdName(
  username: string,
  names: { stripRealms: string[]; stripDomains: string[] },
  loginAttribute: 'sAMAccountName' | 'userPrincipalName',
): string | undefined {
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  const backslash = username.indexOf('\\');
  if (backslash !== -1) {
    const domain = username.slice(0, backslash);
    const user = username.slice(backslash + 1);
    if (user === '' || user.includes('\\') || !names.stripDomains.some((d) => same(d, domain)))
      return undefined;
    return user;
  }
  const at = username.lastIndexOf('@');
  if (loginAttribute === 'userPrincipalName') return username;
  if (at !== -1) {
    const realm = username.slice(at + 1);
    const user = username.slice(0, at);
    if (user === '' || user.includes('@') || !names.stripRealms.some((r) => same(r, realm))) return undefined;
    return user;
  }
  return username;
}

const describeMapping = (what: string, m: IdMapping) =>
  `${what} ${m.id} mapped from SID ${m.sid} (SSSD ID mapping: domain ${m.domainSid}, RID ${m.rid}, ${m.secondary ? 'secondary ' : ''}slice ${m.slice})`;

/** Groups through `member`: one in-chain search (nested) or a direct one, plus the primary group. */
function adGroups(config: AdSourceConfig, source: string, mapSid: (sid: string) => IdMapping): GroupResolver {
  const { mode } = config.idMapping;
  const membership = (dn: string): Filter =>
    config.groups.nested
      ? new ExtensibleFilter({ matchType: 'member', rule: IN_CHAIN_RULE, value: dn })
      : new EqualityFilter({ attribute: 'member', value: dn });

  return async ({ user, searchGroups, groupAttributes, notes }) => {
    const userSid = objectSidOf(user.entry, source, user.name);
    const primaryRid = firstText(user.entry, 'primaryGroupID');
    const userDomain = userSid === undefined ? undefined : splitObjectSid(userSid)?.domainSid;
    const primarySid =
      userDomain !== undefined && primaryRid !== undefined && /^\d{1,10}$/.test(primaryRid)
        ? `${userDomain}-${primaryRid}`
        : undefined;
    // The AD primary group (primaryGroupID) is never listed in `member`; the Unix primary group is
    // found by gidNumber, like SSSD does for RFC2307 entries.
    const filters: Filter[] = [membership(user.dn)];
    if (primarySid !== undefined) {
      filters.push(new EqualityFilter({ attribute: 'objectSid', value: encodeSid(primarySid) }));
    }
    if (mode !== 'always')
      filters.push(new EqualityFilter({ attribute: groupAttributes.gid, value: String(user.gid) }));
    const found = new Map<string, GroupEntry>();
    const add = (groups: GroupEntry[]) => {
      for (const g of groups) found.set(g.dn.toLowerCase(), g);
    };
    add(await searchGroups(new OrFilter({ filters })));
    if (config.groups.nested) {
      // Groups the primary group belongs to: in-chain on `member` does not follow primaryGroupID.
      const primary = [...found.values()].find((g) => objectSidOf(g.entry, source, g.name) === primarySid);
      if (primary !== undefined) add(await searchGroups(membership(primary.dn)));
    }

    const groups: GroupEntry[] = [];
    const skipped: string[] = [];
    for (const group of found.values()) {
      const sid = objectSidOf(group.entry, source, group.name);
      const useMapping = mode === 'always' || (mode === 'fallback' && group.gid === undefined);
      if (!useMapping || sid === undefined) {
        groups.push(group);
        continue;
      }
      try {
        groups.push({ ...group, gid: mapSid(sid).id });
      } catch (err) {
        if (!(err instanceof IdMapError)) throw err;
        skipped.push(`${group.name} (${sid}: ${err.reason === 'BUILTIN_SID' ? 'built-in' : err.message})`);
      }
    }
    if (skipped.length > 0) notes.push(`groups without a mapped id skipped: ${skipped.join(', ')}`);
    if (mode !== 'off' && config.idMapping.autoPrivateGroups && groups.every((g) => g.gid !== user.gid)) {
      // auto_private_groups: SSSD synthesises a group named after the user with gid = uid.
      groups.push({ dn: user.dn, name: user.name, gid: user.gid, entry: user.entry });
    }
    const primaryGroupName = groups.find((g) => g.gid === user.gid)?.name;
    return { groups, ...(primaryGroupName !== undefined ? { primaryGroupName } : {}) };
  };
}

export function adFlavour(config: AdSourceConfig): LdapFlavour {
  const source = config.name;
  const mode = config.idMapping.mode;
  const mapper =
    mode === 'off'
      ? undefined
      : new SssdIdMapper({
          rangeMin: config.idMapping.rangeMin,
          rangeMax: config.idMapping.rangeMax,
          rangeSize: config.idMapping.rangeSize,
          autoridCompat: config.idMapping.autoridCompat,
          helperTableSize: config.idMapping.helperTableSize,
          defaultDomainSid: config.idMapping.defaultDomainSid,
        });
  const mapSid = (sid: string): IdMapping => {
    if (mapper === undefined) throw new IdMapError('NO_RANGE', 'ID mapping is off');
    return mapper.map(sid);
  };
  const loginAttribute = config.loginAttribute;
  const ua = config.users.attributes;

  return {
    userBases: toSearchBases(
      config.users.bases ?? [{ base: config.baseDN, scope: 'sub' }],
      '(&(objectCategory=person)(objectClass=user))',
    ),
    userAttributes: { name: loginAttribute, ...ua },
    groupBases: config.groups.enabled
      ? toSearchBases(config.groups.bases ?? [{ base: config.baseDN, scope: 'sub' }], '(objectClass=group)')
      : [],
    groupAttributes: config.groups.attributes,
    resolveGroups: adGroups(config, source, mapSid),
    caseSensitiveNames: false,
    normaliseName: (username) => normaliseAdName(username, config.names, loginAttribute),
    binaryAttributes: ['objectSid'],
    extraUserAttributes: ['objectSid', 'primaryGroupID', 'userAccountControl', 'sAMAccountName'],
    extraGroupAttributes: ['objectSid'],
    groupPageSize: config.groups.pageSize,
    maxGroups: config.groups.maxGroups,
    // The domain partition refers to the Configuration (and DNS) partitions, which hold no users
    // or groups; SSSD's AD provider does not follow them either (ldap_referrals = false).
    references: 'ignore',
    idsFromMapping: mode === 'always',
    inspectUser: (entry, name) => {
      const control = firstText(entry, 'userAccountControl');
      if (
        config.disabledAccounts === 'refuse' &&
        control !== undefined &&
        (Number(control) & ACCOUNTDISABLE) !== 0
      ) {
        throw policyViolation(
          `The account '${name}' is disabled in Active Directory (userAccountControl ACCOUNTDISABLE).`,
          {
            source,
            reason: 'account-disabled',
            user: name,
          },
        );
      }
      const sid = objectSidOf(entry, source, name);
      return sid === undefined ? [] : [`objectSid: ${sid}`];
    },
    ...(mapper === undefined
      ? {}
      : {
          mapIds: (entry: Entry) => {
            const name = firstText(entry, loginAttribute) ?? entry.dn;
            const sid = objectSidOf(entry, source, name);
            if (sid === undefined) {
              throw directoryEntryInvalid(
                source,
                `The directory entry for '${name}' has no objectSid to map ids from.`,
                {
                  attribute: 'objectSid',
                  user: name,
                },
              );
            }
            try {
              const uid = mapSid(sid);
              const notes = [describeMapping('uid', uid)];
              let gid: number;
              if (config.idMapping.autoPrivateGroups) {
                gid = uid.id;
                notes.push(`gid ${gid} = uid (auto_private_groups)`);
              } else {
                const rid = firstText(entry, 'primaryGroupID');
                if (rid === undefined || !/^\d{1,10}$/.test(rid)) {
                  throw directoryEntryInvalid(
                    source,
                    `The directory entry for '${name}' has no numeric primaryGroupID.`,
                    {
                      attribute: 'primaryGroupID',
                      user: name,
                    },
                  );
                }
                const primary = mapSid(`${uid.domainSid}-${rid}`);
                gid = primary.id;
                notes.push(describeMapping('gid', primary));
              }
              return { uid: uid.id, gid, note: notes.join('; ') };
            } catch (err) {
              if (!(err instanceof IdMapError)) throw err;
              throw directoryEntryInvalid(
                source,
                `The ids of '${name}' cannot be mapped from ${sid}: ${err.message}.`,
                {
                  attribute: 'objectSid',
                  user: name,
                },
              );
            }
          },
        }),
  };
}

export function createAdSource(config: AdSourceConfig, ctx: SourceContext): IdentitySource {
  return createLdapBackedSource(config.name, 'ad', config, adFlavour(config), ctx.log);
}
