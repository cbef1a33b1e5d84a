// The flavour-neutral LDAP lookup: find one user entry, type-check its attributes, resolve its
// groups. What differs between directories is passed in as an `LdapFlavour`.
//
// EXTENSION POINTS (how `ad` plugs in, beside the `rfc2307` / `rfc2307bis` flavours of ./source.ts):
// - `userAttributes` / `groupAttributes`: attribute names (AD: sAMAccountName, ...).
// - `normaliseName(username)`: the name actually searched for (AD strips `user@REALM` and
//   `DOMAIN\user`); return undefined when the name can never be in this directory (→ null).
// - `caseSensitiveNames`: false = the directory's own spelling is returned even when the request
//   differs in case (AD); true = a case mismatch is "not this user" (SSSD's case_sensitive).
// - `binaryAttributes`: read as Buffers through ldapts `explicitBufferAttributes` (AD objectSid).
// - `extraUserAttributes` / `extraGroupAttributes`: more attributes to fetch for the hooks below.
// - `mapIds(entry)`: supplies uid/gid when the entry has no uidNumber/gidNumber (AD SID → id
//   mapping); receives the raw ldapts entry. `idsFromMapping`: use the mapping even when present.
// - `inspectUser(entry, name)`: explain notes from the raw entry; may throw (e.g. disabled account).
// - `resolveGroups(ctx)`: the group strategy. Built in: `memberUidGroups` (rfc2307) and
//   `memberDnGroups` (rfc2307bis, nested to a depth, cycle-safe). AD uses an in-chain
//   ExtensibleFilter (1.2.840.113556.1.4.1941) through `ctx.searchGroups(filter)`, or the user's
//   tokenGroups read with `ctx.readUserEntry(attributes)` (a base search, the only one AD answers
//   tokenGroups in) and resolved by objectSid.
// - `ignorableReference(url)`: continuation references the directory always sends that cannot
//   hold users or groups (AD's partitions); any other reference refuses the answer as incomplete.
// Connections, failover, TLS, timeouts and health live in ./connection.ts (`createLdapPool`).
import {
  AndFilter,
  type Entry,
  EqualityFilter,
  type Filter,
  FilterParser,
  OrFilter,
  PresenceFilter,
} from 'ldapts';
import { directoryEntryInvalid } from '../../../errors.js';
import type { DirectoryGroup, DirectoryRecord } from '../../types.js';
import {
  canonicalName,
  firstText,
  foldName,
  invalidId,
  parsePosixId,
  singleText,
  textValues,
} from '../../values.js';
import type { SearchBaseConfig } from './config.js';
import type { LdapPool, LdapSearchRequest } from './connection.js';

export interface SearchBase {
  base: string;
  scope: 'base' | 'one' | 'sub';
  filter: Filter;
}

/** Parses configured bases, putting in the flavour's default filter where none is given. */
export const toSearchBases = (bases: SearchBaseConfig[], defaultFilter: string): SearchBase[] =>
  bases.map((b) => ({
    base: b.base,
    scope: b.scope,
    filter: FilterParser.parseString(b.filter ?? defaultFilter),
  }));

export interface UserAttributeNames {
  name: string;
  uid: string;
  gid: string;
  home: string;
  gecos: string;
  shell: string;
  mail: string;
}

export interface GroupAttributeNames {
  name: string;
  gid: string;
}

/** A group entry as found, with its gid parsed when present (groupOfNames may have none). */
export interface GroupEntry {
  dn: string;
  name: string;
  /** undefined: no gid attribute; NaN: present but not a number. */
  gid: number | undefined;
  entry: Entry;
}

export interface GroupContext {
  user: { dn: string; name: string; gid: number; entry: Entry };
  /** Searches every configured group base (scope + filter ANDed with `filter`), paged, de-duplicated by DN. */
  searchGroups(filter: Filter): Promise<GroupEntry[]>;
  /**
   * The user's own entry read again (base scope on user.dn) with these attributes only, those in
   * `binaryAttributes` as Buffers: for constructed attributes a server gives only to a base search
   * (AD tokenGroups). Undefined when the server returns no entry.
   */
  readUserEntry(attributes: string[], binaryAttributes?: string[]): Promise<Entry | undefined>;
  groupAttributes: GroupAttributeNames;
  /** The most groups the user may get: a walk up nested groups stops once past it. */
  maxGroups: number;
  notes: string[];
}

export interface GroupResolution {
  /** Groups the user belongs to (the primary group included when found). */
  groups: GroupEntry[];
  primaryGroupName?: string;
}

export type GroupResolver = (ctx: GroupContext) => Promise<GroupResolution>;

export interface LdapFlavour {
  userBases: SearchBase[];
  userAttributes: UserAttributeNames;
  /** Empty: this source does not provide groups (the record's `groups` stays undefined). */
  groupBases: SearchBase[];
  groupAttributes: GroupAttributeNames;
  resolveGroups: GroupResolver;
  caseSensitiveNames: boolean;
  normaliseName?: (username: string) => string | undefined;
  binaryAttributes?: string[];
  extraUserAttributes?: string[];
  mapIds?: (entry: Entry) => { uid?: number; gid?: number; note?: string } | undefined;
  /** Ids come from `mapIds` even when the entry has uid/gid attributes (SSSD `ldap_id_mapping`). */
  idsFromMapping?: boolean;
  /** Sees the one matching user entry before its ids are read; may throw (AD: disabled account); returns explain notes. */
  inspectUser?: (entry: Entry, name: string) => string[] | undefined;
  /** More attributes read on group entries for `resolveGroups` (AD: objectSid); `binaryAttributes` apply. */
  extraGroupAttributes?: string[];
  /** Continuation references this directory always sends that cannot hold users or groups. */
  ignorableReference?: (url: string) => boolean;
  /** Page size for group searches (RFC 2696) and the most groups one user may have. */
  groupPageSize: number;
  maxGroups: number;
}

/** Entries found under several bases, each once (bases may overlap; one search never repeats an entry). */
const distinct = (entries: Entry[], bases: SearchBase[]): Entry[] => {
  if (bases.length < 2) return entries;
  const seen = new Set<string>();
  return entries.filter((entry) => {
    const key = entry.dn.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
};

const sameDn = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export function createLdapDirectory(source: string, pool: LdapPool, flavour: LdapFlavour) {
  const ua = flavour.userAttributes;
  const ga = flavour.groupAttributes;
  const userAttributeList = [
    ...new Set([
      ua.name,
      ua.uid,
      ua.gid,
      ua.home,
      ua.gecos,
      ua.shell,
      ua.mail,
      ...(flavour.extraUserAttributes ?? []),
    ]),
  ];

  const nameMatches = (candidate: string, wanted: string) =>
    flavour.caseSensitiveNames ? candidate === wanted : foldName(candidate) === foldName(wanted);

  /** One search per base, all at once; a single base (the usual case) is searched directly. */
  const searchBases = (
    bases: SearchBase[],
    request: (base: SearchBase) => LdapSearchRequest,
  ): Promise<Entry[]> =>
    bases.length === 1
      ? pool.search(request(bases[0] as SearchBase))
      : Promise.all(bases.map((b) => pool.search(request(b)))).then((found) => found.flat());

  // Only names and gids: member lists of big groups (thousands of DNs) are never fetched.
  const groupAttributeList = [ga.name, ga.gid, ...(flavour.extraGroupAttributes ?? [])];
  const searchGroups = async (filter: Filter): Promise<GroupEntry[]> => {
    const found = await searchBases(flavour.groupBases, (b) => ({
      base: b.base,
      scope: b.scope,
      filter: new AndFilter({ filters: [b.filter, filter] }),
      attributes: groupAttributeList,
      explicitBufferAttributes: flavour.binaryAttributes,
      ignorableReference: flavour.ignorableReference,
      pageSize: flavour.groupPageSize,
    }));
    const groups: GroupEntry[] = [];
    for (const entry of distinct(found, flavour.groupBases)) {
      const name = firstText(entry, ga.name);
      if (name === undefined) continue;
      // Two gid values are no gid: granting either would be a guess (SSSD refuses such a group too).
      const gidTexts = textValues(entry, ga.gid);
      const gid =
        gidTexts.length === 0
          ? undefined
          : gidTexts.length === 1
            ? (parsePosixId(gidTexts[0] as string) ?? Number.NaN)
            : Number.NaN;
      groups.push({ dn: entry.dn, name, gid, entry });
    }
    return groups;
  };

  /** The one entry the name denotes, with its name as the directory spells it; null when none. */
  const findUser = async (wanted: string): Promise<{ entry: Entry; name: string } | null> => {
    const found = await searchBases(flavour.userBases, (b) => ({
      base: b.base,
      scope: b.scope,
      // The name travels only inside an EqualityFilter: ldapts BER-encodes it as a value,
      // so `*`, `(`, `)`, `\` and NUL can never become filter syntax.
      filter: new AndFilter({
        filters: [b.filter, new EqualityFilter({ attribute: ua.name, value: wanted })],
      }),
      attributes: userAttributeList,
      explicitBufferAttributes: flavour.binaryAttributes,
      ignorableReference: flavour.ignorableReference,
    }));
    const entries = distinct(found, flavour.userBases).filter((entry) =>
      textValues(entry, ua.name).some((n) => nameMatches(n, wanted)),
    );
    if (entries.length === 0) return null;
    if (entries.length > 1) {
      throw directoryEntryInvalid(
        source,
        `The directory has ${entries.length} entries for '${wanted}'; refusing to guess.`,
        { user: wanted },
        // The DNs are for the log, not for the user's spawn page.
        new Error(`entries: ${entries.map((e) => e.dn).join('; ')}`),
      );
    }
    const entry = entries[0] as Entry;
    // One entry is one identity under any of its names: with several, the one in its RDN (SSSD).
    const name = canonicalName(entry.dn, ua.name, textValues(entry, ua.name));
    if (name === undefined) {
      throw directoryEntryInvalid(
        source,
        `The directory entry for '${wanted}' has several ${ua.name} values and none of them in its DN; refusing to guess which is the login name.`,
        { attribute: ua.name, user: wanted },
      );
    }
    return { entry, name };
  };

  /** One entry by its DN (base scope), with just these attributes. */
  const readEntry = async (dn: string, attributes: string[], binaryAttributes: string[] = []) => {
    const [entry] = await pool.search({
      base: dn,
      scope: 'base',
      filter: new PresenceFilter({ attribute: 'objectClass' }),
      attributes,
      explicitBufferAttributes: binaryAttributes,
    });
    return entry;
  };

  /** uid and gid: from the entry's attributes, or from the flavour's ID mapping. */
  const readIds = (entry: Entry, name: string, notes: string[]) => {
    const needsMapping =
      flavour.idsFromMapping === true ||
      firstText(entry, ua.uid) === undefined ||
      firstText(entry, ua.gid) === undefined;
    const mapped = needsMapping ? flavour.mapIds?.(entry) : undefined;
    if (mapped?.note) notes.push(mapped.note);
    const readId = (attribute: string, fromMapping: number | undefined): number => {
      if (flavour.idsFromMapping && fromMapping !== undefined) return fromMapping;
      const text = singleText(entry, attribute, source, name);
      if (text === undefined && fromMapping !== undefined) return fromMapping;
      const id = text === undefined ? undefined : parsePosixId(text);
      if (id === undefined) throw invalidId(source, name, attribute, text);
      return id;
    };
    return { uid: readId(ua.uid, mapped?.uid), gid: readId(ua.gid, mapped?.gid) };
  };

  /** The POSIX groups among those resolved: each (name, gid) once; groups without a gid only nest. */
  const posixGroups = (resolution: GroupResolution, notes: string[]): DirectoryGroup[] => {
    const groups: DirectoryGroup[] = [];
    const seenGids = new Set<number>();
    for (const group of resolution.groups) {
      if (group.gid === undefined) continue; // a non-POSIX group (e.g. plain groupOfNames): nesting only
      if (Number.isNaN(group.gid)) {
        notes.push(`group '${group.name}' skipped: its ${ga.gid} is not one POSIX id`);
        continue;
      }
      if (seenGids.has(group.gid) && groups.some((g) => g.name === group.name)) continue;
      seenGids.add(group.gid);
      groups.push({ name: group.name, gid: group.gid });
    }
    // The bound holds for the total, after nesting and de-duplication.
    if (groups.length > flavour.maxGroups) {
      notes.push(`group list cut from ${groups.length} to ${flavour.maxGroups} (groups.maxGroups)`);
      groups.length = flavour.maxGroups;
    }
    return groups;
  };

  return {
    async lookup(username: string): Promise<DirectoryRecord | null> {
      const wanted = flavour.normaliseName ? flavour.normaliseName(username) : username;
      if (wanted === undefined || wanted === '') return null;
      const user = await findUser(wanted);
      if (user === null) return null;
      const { entry, name } = user;
      const notes: string[] = [...(flavour.inspectUser?.(entry, name) ?? [])];
      const { uid, gid } = readIds(entry, name, notes);
      // Shown in a note only: an attribute outside the identity never makes an identity invalid.
      const mail = textValues(entry, ua.mail);
      if (mail.length > 0) notes.push(`mail: ${mail.join(', ')}`);

      let groups: DirectoryGroup[] | undefined;
      let primaryGroupName: string | undefined;
      if (flavour.groupBases.length > 0) {
        const resolution = await flavour.resolveGroups({
          user: { dn: entry.dn, name, gid, entry },
          searchGroups,
          readUserEntry: (attributes, binary) => readEntry(entry.dn, attributes, binary),
          groupAttributes: ga,
          maxGroups: flavour.maxGroups,
          notes,
        });
        primaryGroupName = resolution.primaryGroupName;
        groups = posixGroups(resolution, notes);
      }

      return {
        name,
        uid,
        gid,
        home: singleText(entry, ua.home, source, name),
        gecos: firstText(entry, ua.gecos) || undefined,
        // The shell is not part of what a notebook runs as (spawner.shell is): the first value, as SSSD.
        shell: firstText(entry, ua.shell) || undefined,
        ...(groups !== undefined ? { groups } : {}),
        ...(primaryGroupName !== undefined ? { primaryGroupName } : {}),
        notes,
      };
    },
  };
}

const or = (filters: Filter[]): Filter =>
  filters.length === 1 ? (filters[0] as Filter) : new OrFilter({ filters });

const primaryOf = (groups: GroupEntry[], gid: number) => groups.find((g) => g.gid === gid)?.name;

/**
 * rfc2307: posixGroup lists login names in memberUid. One search finds the user's groups and
 * the primary group by gidNumber (a user-private group usually lists no members).
 */
export const memberUidGroups =
  (memberAttributes: string[]): GroupResolver =>
  async ({ user, searchGroups, groupAttributes }) => {
    const groups = await searchGroups(
      or([
        ...memberAttributes.map((attribute) => new EqualityFilter({ attribute, value: user.name })),
        new EqualityFilter({ attribute: groupAttributes.gid, value: String(user.gid) }),
      ]),
    );
    return { groups, primaryGroupName: primaryOf(groups, user.gid) };
  };

/** Group DNs per OR filter when walking up nested groups (keeps each request small). */
const NESTED_BATCH = 50;

/**
 * rfc2307bis: groupOfNames / groupOfUniqueNames list member DNs. The groups listing the user, then
 * their parents level by level up to `maxDepth` levels (a DN seen once is never searched again, so
 * cycles terminate), and beside them the primary group by gidNumber. As in SSSD, membership comes
 * from member values only: the primary group's own parents are not the user's groups (a gid is not
 * a member value), unless the primary group also lists the user.
 */
export const memberDnGroups =
  (memberAttributes: string[], maxDepth: number): GroupResolver =>
  async ({ user, searchGroups, groupAttributes, maxGroups, notes }) => {
    const memberOf = (dns: string[]) =>
      dns.flatMap((dn) => memberAttributes.map((attribute) => new EqualityFilter({ attribute, value: dn })));
    // Both searches leave in one write (the pool's coalescing) and are answered together.
    const [direct, primary] = await Promise.all([
      searchGroups(or(memberOf([user.dn]))),
      searchGroups(new EqualityFilter({ attribute: groupAttributes.gid, value: String(user.gid) })),
    ]);
    const found = new Map<string, GroupEntry>(direct.map((g) => [g.dn.toLowerCase(), g]));
    // The walk stops once past maxGroups groups that give a gid (those without one only nest).
    const givesGid = (g: GroupEntry) => g.gid !== undefined && !Number.isNaN(g.gid);
    let withGid = direct.filter(givesGid).length;
    let frontier = direct;
    for (let depth = 1; depth <= maxDepth && frontier.length > 0 && withGid <= maxGroups; depth += 1) {
      const next: GroupEntry[] = [];
      for (let i = 0; i < frontier.length; i += NESTED_BATCH) {
        const batch = frontier.slice(i, i + NESTED_BATCH).map((g) => g.dn);
        for (const parent of await searchGroups(or(memberOf(batch)))) {
          const key = parent.dn.toLowerCase();
          if (found.has(key) || sameDn(parent.dn, user.dn)) continue; // cycle or already known
          found.set(key, parent);
          if (givesGid(parent)) withGid += 1;
          next.push(parent);
        }
      }
      frontier = next;
      if (depth === maxDepth && frontier.length > 0) {
        notes.push(`group nesting deeper than ${maxDepth} levels not followed (groups.maxNestingDepth)`);
      }
    }
    const groups = [...found.values()];
    for (const group of primary) if (!found.has(group.dn.toLowerCase())) groups.push(group);
    return { groups, primaryGroupName: primaryOf(groups, user.gid) };
  };
