// The `ad` source: Active Directory through the shared LDAP pool and lookup (../ldap), with AD's
// defaults: sAMAccountName logins (or userPrincipalName), RFC2307 attributes (uidNumber, gidNumber,
// unixHomeDirectory, loginShell), nested groups from the user's tokenGroups (as SSSD) or through
// `member` resolved by the server (LDAP_MATCHING_RULE_IN_CHAIN), objectSid read as binary and shown
// in explain traces, SSSD-compatible ID mapping for entries without POSIX numbers, and a refusal
// of disabled accounts.
import { type Entry, EqualityFilter, ExtensibleFilter, type Filter, OrFilter } from 'ldapts';
import { directoryEntryInvalid, policyViolation } from '../../../errors.js';
import type { IdentitySource, SourceContext } from '../../types.js';
import { firstText, type RawValue, rawValues } from '../../values.js';
import {
  type GroupContext,
  type GroupEntry,
  type GroupResolution,
  type GroupResolver,
  type LdapFlavour,
  toSearchBases,
} from '../ldap/directory.js';
import { createLdapBackedSource } from '../ldap/source.js';
import type { AdSourceConfig } from './config.js';
import { IdMapError, type IdMapping, type SliceBook, SssdIdMapper } from './idmap.js';
import { decodeSid, encodeSid, splitObjectSid } from './sid.js';
import { createSliceBook, sliceScope } from './slices.js';

/** LDAP_MATCHING_RULE_IN_CHAIN: the DC walks nested `member` links itself, to any depth, cycle-safe. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';
/** Constructed on a base read of a user: the SIDs of every security group it is in, transitively. */
export const TOKEN_GROUPS = 'tokenGroups';
/** objectSid values per OR filter when tokenGroups are resolved (keeps each request small). */
const SID_BATCH = 50;
/** userAccountControl ACCOUNTDISABLE (MS-ADTS 2.2.16). */
const ACCOUNTDISABLE = 0x2;

/** One binary SID value in text form; an error names the entry and the attribute of a malformed one. */
function sidText(value: RawValue, attribute: string, source: string, who: string): string {
  try {
    return decodeSid(Buffer.isBuffer(value) ? value : Buffer.from(value, 'binary'));
  } catch (err) {
    throw directoryEntryInvalid(
      source,
      `The directory entry for '${who}' has a malformed ${attribute}: ${(err as Error).message}.`,
      { attribute, user: who },
    );
  }
}

/** The entry's objectSid in text form; undefined when absent; an error names a malformed one. */
function objectSidOf(entry: Entry, source: string, who: string): string | undefined {
  const value = rawValues(entry, 'objectSid')[0];
  return value === undefined ? undefined : sidText(value, 'objectSid', source, who);
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

/** What every way of finding a user's groups shares. */
interface GroupSearch {
  ctx: GroupContext;
  source: string;
  /** The AD primary group's SID (primaryGroupID is never a `member` value). */
  primarySid: string | undefined;
  /** The Unix primary group by gidNumber, as SSSD finds it for RFC2307 entries; none when ids are mapped. */
  unixPrimary: Filter | undefined;
}

/** The SID of the user's AD primary group: the user's domain SID and primaryGroupID. */
function primarySidOf(user: GroupContext['user'], source: string): string | undefined {
  const userSid = objectSidOf(user.entry, source, user.name);
  const domainSid = userSid === undefined ? undefined : splitObjectSid(userSid)?.domainSid;
  const rid = firstText(user.entry, 'primaryGroupID');
  return domainSid !== undefined && rid !== undefined && /^\d{1,10}$/.test(rid)
    ? `${domainSid}-${rid}`
    : undefined;
}

const sidFilter = (sid: string): Filter =>
  new EqualityFilter({ attribute: 'objectSid', value: encodeSid(sid) });

const or = (filters: Filter[]): Filter =>
  filters.length === 1 ? (filters[0] as Filter) : new OrFilter({ filters });

/** Groups found by several searches, each once (keyed by DN, case-insensitively). */
const byDn = (lists: GroupEntry[][]): GroupEntry[] => {
  const found = new Map<string, GroupEntry>();
  for (const list of lists) for (const group of list) found.set(group.dn.toLowerCase(), group);
  return [...found.values()];
};

/**
 * Groups through `member`: the groups listing the user (in-chain when nested, direct otherwise),
 * the AD and Unix primary groups, and when nested the groups the AD primary group belongs to
 * (in-chain on `member` does not follow primaryGroupID).
 */
async function memberGroups(search: GroupSearch, nested: boolean): Promise<GroupEntry[]> {
  const { ctx, source, primarySid, unixPrimary } = search;
  const membership = (dn: string): Filter =>
    nested
      ? new ExtensibleFilter({ matchType: 'member', rule: IN_CHAIN_RULE, value: dn })
      : new EqualityFilter({ attribute: 'member', value: dn });
  const filters = [membership(ctx.user.dn)];
  if (primarySid !== undefined) filters.push(sidFilter(primarySid));
  if (unixPrimary !== undefined) filters.push(unixPrimary);
  const found = await ctx.searchGroups(or(filters));
  if (!nested || primarySid === undefined) return found;
  const primary = found.find((g) => objectSidOf(g.entry, source, g.name) === primarySid);
  if (primary === undefined) return found;
  return byDn([found, await ctx.searchGroups(membership(primary.dn))]);
}

/** The user's tokenGroups SIDs, read from its own entry; empty when the DC or bind account gives none. */
async function tokenGroupSids(ctx: GroupContext, source: string): Promise<string[]> {
  const entry = await ctx.readUserEntry([TOKEN_GROUPS], [TOKEN_GROUPS]);
  if (entry === undefined) return [];
  return rawValues(entry, TOKEN_GROUPS).map((value) => sidText(value, TOKEN_GROUPS, source, ctx.user.name));
}

/**
 * Groups from tokenGroups: the entries of those SIDs under the group bases (SID_BATCH per OR
 * filter, all batches at once) and the Unix primary group; undefined when there are no SIDs.
 */
async function tokenGroups(search: GroupSearch): Promise<GroupEntry[] | undefined> {
  const { ctx, source, unixPrimary } = search;
  const sids = await tokenGroupSids(ctx, source);
  if (sids.length === 0) return undefined;
  const batches: Filter[][] = [];
  for (let i = 0; i < sids.length; i += SID_BATCH) batches.push(sids.slice(i, i + SID_BATCH).map(sidFilter));
  if (unixPrimary !== undefined) (batches[0] as Filter[]).push(unixPrimary);
  const groups = byDn(await Promise.all(batches.map((filters) => ctx.searchGroups(or(filters)))));
  ctx.notes.push(`groups: nested groups from the user's tokenGroups (${sids.length} SIDs)`);
  noteUnmatched(search, sids, groups);
  return groups;
}

/** A note naming (the first few) tokenGroups SIDs no group under the group bases has: groups kept elsewhere. */
function noteUnmatched({ ctx, source }: GroupSearch, sids: string[], groups: GroupEntry[]): void {
  const seen = new Set(groups.map((g) => objectSidOf(g.entry, source, g.name)));
  const unmatched = sids.filter((sid) => !seen.has(sid));
  if (unmatched.length === 0) return;
  const shown = unmatched.slice(0, 5).join(', ') + (unmatched.length > 5 ? ', …' : '');
  ctx.notes.push(`${unmatched.length} tokenGroups SIDs match no group under groups.bases: ${shown}`);
}

/** The groups by the configured way: direct, tokenGroups (in-chain when it gives no SIDs), or in-chain. */
async function findGroups(config: AdSourceConfig, search: GroupSearch): Promise<GroupEntry[]> {
  const { notes } = search.ctx;
  if (!config.groups.nested) {
    notes.push('groups: direct memberships only (groups.nested: false)');
    return memberGroups(search, false);
  }
  if (config.groups.nestedWith === 'tokenGroups') {
    const found = await tokenGroups(search);
    if (found !== undefined) return found;
    notes.push(
      `groups: the user's entry gives no tokenGroups (the DC or the bind account does not give them); nested groups through the in-chain rule ${IN_CHAIN_RULE} instead`,
    );
  } else {
    notes.push(
      `groups: nested groups through the in-chain rule ${IN_CHAIN_RULE} (groups.nestedWith: inChain)`,
    );
  }
  return memberGroups(search, true);
}

/**
 * Gids as configured: mapped from objectSid (mode always, or fallback for a group without
 * gidNumber), a group SSSD cannot map skipped with a note (BUILTIN SIDs among them), and the
 * user-private group of auto_private_groups; the primary group named by the user's gid.
 */
function numbered(
  config: AdSourceConfig,
  search: GroupSearch,
  found: GroupEntry[],
  mapSid: (sid: string) => IdMapping,
): GroupResolution {
  const { mode } = config.idMapping;
  const { user, notes } = search.ctx;
  const groups: GroupEntry[] = [];
  const skipped: string[] = [];
  for (const group of found) {
    const sid = objectSidOf(group.entry, search.source, group.name);
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
}

/** The AD group resolver: find the groups (see findGroups), then number them (see numbered). */
function adGroups(config: AdSourceConfig, source: string, mapSid: (sid: string) => IdMapping): GroupResolver {
  return async (ctx) => {
    const search: GroupSearch = {
      ctx,
      source,
      primarySid: primarySidOf(ctx.user, source),
      unixPrimary:
        config.idMapping.mode === 'always'
          ? undefined
          : new EqualityFilter({ attribute: ctx.groupAttributes.gid, value: String(ctx.user.gid) }),
    };
    return numbered(config, search, await findGroups(config, search), mapSid);
  };
}

// A subtree search from a domain root always returns continuation references to the forest's
// DNS and configuration partitions (DC=DomainDnsZones, DC=ForestDnsZones, CN=Configuration): they
// hold no user or group of the domain, so they do not make an answer incomplete (SSSD's AD
// provider does not chase them either). Any other reference does.
const AD_PARTITIONS = /^(dc=domaindnszones|dc=forestdnszones|cn=configuration),/i;

export function isAdPartitionReference(url: string): boolean {
  try {
    return AD_PARTITIONS.test(decodeURIComponent(new URL(url).pathname.replace(/^\//, '')));
  } catch {
    return false;
  }
}

export function adFlavour(config: AdSourceConfig, slices?: SliceBook): LdapFlavour {
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
          placement: slices,
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
    ignorableReference: isAdPartitionReference,
    normaliseName: (username) => normaliseAdName(username, config.names, loginAttribute),
    binaryAttributes: ['objectSid'],
    extraUserAttributes: ['objectSid', 'primaryGroupID', 'userAccountControl', 'sAMAccountName'],
    extraGroupAttributes: ['objectSid'],
    groupPageSize: config.groups.pageSize,
    maxGroups: config.groups.maxGroups,
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
  const idMapping = config.idMapping;
  const pins = new Map(Object.entries(idMapping.slices));
  if (idMapping.defaultDomainSid !== undefined) pins.set(idMapping.defaultDomainSid, 0);
  const slices = createSliceBook({
    pins,
    agreement: idMapping.mode === 'off' ? undefined : ctx.slices,
    scope: sliceScope(config.name, idMapping),
    maxSlices: Math.floor((idMapping.rangeMax - idMapping.rangeMin) / idMapping.rangeSize),
  });
  const source = createLdapBackedSource(config.name, 'ad', config, adFlavour(config, slices.book), ctx.log);
  if (!slices.book.shared) return source;
  return {
    ...source,
    lookup: (username) => slices.withAgreedSlices(config.name, () => source.lookup(username)),
  };
}
