// The directory the SSSD oracle reads: a deterministic (seeded) generator of ~300 users and their
// groups, written as raw LDIF for both schemas from one model, so the two trees hold the same
// people: rfc2307 (posixGroup + memberUid login names, no nesting) and rfc2307bis (groupOfNames
// + member DNs, posixGroup auxiliary for gidNumber, groups inside groups).
//
// What it holds, on purpose (each entry carries `tags` naming what it exercises):
// - nesting four parent levels deep above a user's direct group, cycles (three groups, two
//   groups, a group listing itself), a group without gidNumber in the middle of a chain and one
//   at its start;
// - primary groups (found by the user's gidNumber) that do not list their users, and that sit in
//   parent groups: SSSD grants membership only from member values, so those parents are NOT the
//   user's groups; primary groups that do list their users (their parents are granted);
// - multi-valued attributes of every kind: two mail, cn, uid (SSSD answers with the RDN's value
//   as the name), uidNumber, gidNumber, homeDirectory, loginShell on users; two cn and two
//   gidNumber on groups;
// - DNs with spaces, escaped `,` `+` `\` `#`, multi-valued RDNs (cn+uid, uid+cn, cn+gidNumber),
//   member values spelt with other escapes or another case than the entry's DN;
// - member values naming deleted users and groups, memberUid values in the wrong case;
// - case variants of names (`kim` and `Kim` are two entries; `Mixed` exists only capitalised),
//   shared uid and gid numbers;
// - two group bases with different scopes: ou=groups (subtree, with sub-OUs) and ou=projects
//   (one level: its ou=archive below is out of scope), ou=other outside every base, and a user in
//   ou=guests outside the user base.
// The suffix, ou=people, ou=groups, ou=services and the service account come from the slapd
// harness (`fixtureLdif` with an empty fixture); this file adds everything else as `extraLdif`.

export const SUFFIX = 'dc=example,dc=org';
export const PEOPLE = `ou=people,${SUFFIX}`;
export const GROUPS = `ou=groups,${SUFFIX}`;
export const PROJECTS = `ou=projects,${SUFFIX}`;

/** Where both SSSD and idmount look: the same bases, scopes and object classes. */
export const USER_BASES = [{ base: PEOPLE, scope: 'sub' as const }];
export const GROUP_BASES = [
  { base: GROUPS, scope: 'sub' as const },
  { base: PROJECTS, scope: 'one' as const },
];

/** Parent levels followed above a user's direct groups (idmount maxNestingDepth = SSSD ldap_group_nesting_level). */
export const NESTING_DEPTH = 3;

export const USER_COUNT = 300;
export const SEED = 0x5eed2307;

export interface OracleUser {
  /** The DN as written in the LDIF (escaped where needed). */
  dn: string;
  /** The login name SSSD answers with: the RDN's uid value, else the first uid value. */
  name: string;
  uid: string[];
  uidNumber: string[];
  gidNumber: string[];
  homeDirectory: string[];
  cn: string[];
  mail: string[];
  loginShell: string[];
  /** False for the entry placed outside the user base. */
  inUserBase: boolean;
  tags: string[];
}

export interface GroupMember {
  user: OracleUser;
  /** rfc2307: the memberUid value written (default: the user's name). */
  memberUid?: string;
  /** rfc2307bis: the member DN written (default: the user's DN), e.g. in another case. */
  memberDn?: string;
}

export interface OracleGroup {
  dn: string;
  cn: string[];
  /** Empty: no gidNumber (rfc2307bis: a plain groupOfNames, no posixGroup class). */
  gidNumber: string[];
  users: GroupMember[];
  /** rfc2307bis only: member groups, each with the DN spelling written. */
  groups: Array<{ group: OracleGroup; memberDn?: string }>;
  /** Member values pointing at entries that do not exist. */
  dangling: { memberUid: string[]; memberDn: string[] };
  /** In one of GROUP_BASES with its scope. */
  inGroupBase: boolean;
  tags: string[];
}

export interface AskedName {
  /** The name sent to both SSSD and idmount. */
  name: string;
  /** The entry the name belongs to, when exactly one in the user base does. */
  user?: OracleUser;
  /** Why this name is asked (the user's tags, plus e.g. `second-uid`, `case-variant`). */
  tags: string[];
}

export interface OracleFixture {
  users: OracleUser[];
  groups: OracleGroup[];
  /** Every name the oracle asks: each user's name, second uid values, case variants. */
  asked: AskedName[];
  /** A user with no groups, asked by the SSSD harness to know the daemon answers. */
  probe: string;
  ldif(schema: 'rfc2307' | 'rfc2307bis'): string;
}

/** mulberry32: a small seeded PRNG, so the fixture is the same on every run. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number) => String(n).padStart(3, '0');

export function buildOracleFixture(seed = SEED, userCount = USER_COUNT): OracleFixture {
  const random = prng(seed);
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)] as T;

  const users: OracleUser[] = [];
  const groups: OracleGroup[] = [];

  const user = (
    name: string,
    n: number,
    extra: Partial<OracleUser> & { ou?: string; rdn?: string } = {},
  ): OracleUser => {
    const ou = extra.ou ?? PEOPLE;
    const u: OracleUser = {
      dn: `${extra.rdn ?? `uid=${name}`},${ou}`,
      name,
      uid: extra.uid ?? [name],
      uidNumber: extra.uidNumber ?? [String(10_000 + n)],
      gidNumber: extra.gidNumber ?? [String(10_000 + n)],
      homeDirectory: extra.homeDirectory ?? [`/home/${name}`],
      cn: extra.cn ?? [`User ${name}`],
      mail: extra.mail ?? [`${name}@example.org`],
      loginShell: extra.loginShell ?? ['/bin/bash'],
      inUserBase: extra.inUserBase ?? true,
      tags: extra.tags ?? [],
    };
    users.push(u);
    return u;
  };

  const group = (
    cn: string,
    gid: number | number[] | undefined,
    extra: Partial<OracleGroup> & { ou?: string; rdn?: string } = {},
  ): OracleGroup => {
    const g: OracleGroup = {
      dn: `${extra.rdn ?? `cn=${cn}`},${extra.ou ?? GROUPS}`,
      cn: extra.cn ?? [cn],
      gidNumber: gid === undefined ? [] : (Array.isArray(gid) ? gid : [gid]).map(String),
      users: [],
      groups: [],
      dangling: { memberUid: [], memberDn: [] },
      inGroupBase: extra.inGroupBase ?? true,
      tags: extra.tags ?? [],
    };
    groups.push(g);
    return g;
  };
  const nest = (child: OracleGroup, parent: OracleGroup, memberDn?: string) => {
    parent.groups.push(memberDn === undefined ? { group: child } : { group: child, memberDn });
  };
  const join = (u: OracleUser, g: OracleGroup, spelling: Omit<GroupMember, 'user'> = {}) => {
    if (!g.users.some((m) => m.user === u)) g.users.push({ user: u, ...spelling });
  };

  // --- groups ----------------------------------------------------------------------------------
  // A chain four parent levels above its first group: a1 ⊂ a2 ⊂ a3 ⊂ a4 ⊂ a5.
  const chainA = [1, 2, 3, 4, 5].map((k) => group(`chain-a${k}`, 20_000 + k, { tags: ['nesting'] }));
  for (let k = 0; k < 4; k++) nest(chainA[k] as OracleGroup, chainA[k + 1] as OracleGroup);
  // A group without gidNumber in the middle: b1 ⊂ b2 (no gid) ⊂ b3 ⊂ b4.
  const chainB = [1, 2, 3, 4].map((k) =>
    group(`chain-b${k}`, k === 2 ? undefined : 20_010 + k, {
      tags: k === 2 ? ['nesting', 'no-gid-in-chain'] : ['nesting'],
    }),
  );
  for (let k = 0; k < 3; k++) nest(chainB[k] as OracleGroup, chainB[k + 1] as OracleGroup);
  // A group without gidNumber at the start (users listed in it) inside a POSIX parent.
  const nogidLeaf = group('nogid-leaf', undefined, { tags: ['no-gid-in-chain'] });
  const nogidParent = group('nogid-parent', 20_061, { tags: ['no-gid-in-chain'] });
  nest(nogidLeaf, nogidParent);
  // Cycles: c1 ⊂ c2 ⊂ c3 ⊂ c1 with c2 ⊂ c-top; x ⊂ y ⊂ x; a group listing itself.
  const cyc = [1, 2, 3].map((k) => group(`cycle-${k}`, 20_020 + k, { tags: ['cycle'] }));
  const cycTop = group('cycle-top', 20_024, { tags: ['cycle'] });
  nest(cyc[0] as OracleGroup, cyc[1] as OracleGroup);
  nest(cyc[1] as OracleGroup, cyc[2] as OracleGroup);
  nest(cyc[2] as OracleGroup, cyc[0] as OracleGroup);
  nest(cyc[1] as OracleGroup, cycTop);
  const pairX = group('pair-x', 20_031, { tags: ['cycle'] });
  const pairY = group('pair-y', 20_032, { tags: ['cycle'] });
  nest(pairX, pairY);
  nest(pairY, pairX);
  const selfLoop = group('self-loop', 20_041, { tags: ['cycle'] });
  nest(selfLoop, selfLoop);
  // Parents of user-private groups: a private group lists nobody, so these are nobody's groups.
  const allPrivate = group('all-private', 20_050, { tags: ['primary-parent'] });
  const privateTop = group('private-top', 20_051, { tags: ['primary-parent'] });
  nest(allPrivate, privateTop);
  // Teams (shared primary groups, some in a sub-OU) ⊂ departments ⊂ divisions ⊂ org ⊂ holding.
  const holding = group('holding', 23_998, { tags: ['nesting'] });
  const org = group('org', 23_999, { tags: ['nesting'] });
  nest(org, holding);
  const divisions = [0, 1].map((k) => group(`division-${k}`, 23_000 + k, { tags: ['nesting'] }));
  for (const d of divisions) nest(d, org);
  const depts = [0, 1, 2, 3, 4].map((k) => group(`dept-${k}`, 22_000 + k, { tags: ['nesting'] }));
  depts.forEach((d, k) => {
    nest(d, divisions[k % 2] as OracleGroup);
  });
  const teams = Array.from({ length: 20 }, (_, k) =>
    group(`team-${k}`, 21_000 + k, {
      ou: k % 4 === 3 ? `ou=nested,${GROUPS}` : GROUPS,
      tags: k % 4 === 3 ? ['team', 'sub-ou'] : ['team'],
    }),
  );
  teams.forEach((t, k) => {
    nest(t, depts[k % 5] as OracleGroup);
  });
  // Teams that list their primary members; the others list nobody by gid.
  const listingTeams = new Set(teams.filter((_, k) => k % 2 === 0));
  // Projects: a one-level base; its ou=archive is out of scope, ou=other is in no base.
  const projects = Array.from({ length: 10 }, (_, k) =>
    group(`proj-${k}`, 24_000 + k, { ou: PROJECTS, tags: ['second-base'] }),
  );
  projects.forEach((p, k) => {
    if (k % 3 === 0) nest(p, depts[k % 5] as OracleGroup); // a group of one base inside one of the other
  });
  const archived = Array.from({ length: 3 }, (_, k) =>
    group(`arch-${k}`, 24_500 + k, {
      ou: `ou=archive,${PROJECTS}`,
      inGroupBase: false,
      tags: ['out-of-scope'],
    }),
  );
  for (const a of archived) nest(a, teams[0] as OracleGroup); // out of scope: not a way into team-0 either
  const otherGroup = group('other-0', 24_900, {
    ou: `ou=other,${SUFFIX}`,
    inGroupBase: false,
    tags: ['out-of-scope'],
  });
  // DNs with escapes, spaces and multi-valued RDNs; member values spelt differently.
  const opsWest = group('ops, west', 25_001, { rdn: 'cn=ops\\, west', tags: ['dn-escape'] });
  const rPlusD = group('R+D', 25_002, { rdn: 'cn=R\\+D', tags: ['dn-escape'] });
  const backslash = group('back\\slash', 25_003, { rdn: 'cn=back\\\\slash', tags: ['dn-escape'] });
  const hashGroup = group('#hash', 25_004, { rdn: 'cn=\\#hash', tags: ['dn-escape'] });
  const labRdn = group('lab', 25_005, { rdn: 'cn=lab+gidNumber=25005', tags: ['multi-rdn'] });
  const dataScience = group('Data Science Team', 25_006, {
    ou: `ou=Research Units,${GROUPS}`,
    tags: ['dn-space'],
  });
  // ops, west inside R+D (member value written with a hex escape); the lab inside Data Science.
  nest(opsWest, rPlusD, `cn=ops\\2C west,${GROUPS}`);
  nest(labRdn, dataScience, `gidNumber=25005+cn=lab,${GROUPS}`);
  nest(hashGroup, backslash);
  // Shared gid numbers, two cn values, two gidNumber values.
  const aliasGroups = [1, 2].map((k) => group(`alias-gid-${k}`, 25_100, { tags: ['shared-gid'] }));
  const twoCnGroup = group('twocn-group', 25_200, {
    cn: ['twocn-group', 'twocn-group-alias'],
    tags: ['multi-cn-group'],
  });
  const twoGidGroup = group('twogid-group', [25_300, 25_301], { tags: ['multi-gid-group'] });
  // Member values of deleted entries; member DNs in another case; memberUid in another case.
  const dangling = group('dangling', 25_500, { tags: ['dangling'] });
  dangling.dangling.memberUid.push('deleted-user-1', 'deleted-user-2');
  dangling.dangling.memberDn.push(
    `uid=deleted-user-1,${PEOPLE}`,
    `cn=deleted-group,${GROUPS}`,
    `uid=deleted-user-2,ou=Staff Members,${PEOPLE}`,
  );
  const danglingParent = group('dangling-parent', 25_501, { tags: ['dangling'] });
  nest(dangling, danglingParent);
  danglingParent.dangling.memberDn.push(`cn=deleted-group,${GROUPS}`);
  const caseDn = group('case-dn', 25_600, { tags: ['case-variant'] });
  const caseUid = group('case-memberuid', 25_700, { tags: ['case-variant'] });
  // Groups a second uid value is listed in (rfc2307 memberUid).
  const aliasMember = group('alias-member', 25_800, { tags: ['second-uid'] });

  const pool: OracleGroup[] = [
    ...chainA,
    ...chainB,
    nogidLeaf,
    ...cyc,
    pairX,
    selfLoop,
    ...teams,
    ...depts,
    ...projects,
    ...archived,
    otherGroup,
    opsWest,
    rPlusD,
    hashGroup,
    labRdn,
    dataScience,
    ...aliasGroups,
    twoCnGroup,
    twoGidGroup,
    dangling,
    danglingParent,
  ];

  // --- users -----------------------------------------------------------------------------------
  let n = 0;
  const next = () => n++;
  const specials: OracleUser[] = [
    user('twomail', next(), {
      mail: ['twomail@example.org', 'twomail.alt@example.org'],
      tags: ['multi-mail'],
    }),
    user('twocn', next(), { cn: ['Two Cn', 'Second Cn'], tags: ['multi-cn'] }),
    user('twouid', next(), { uid: ['twouid', 'twouid-alias'], tags: ['multi-uid'] }),
    // The RDN names the second value: SSSD's name is the RDN's.
    user('aliasfirst', next(), {
      uid: ['aliasfirst-old', 'aliasfirst'],
      tags: ['multi-uid', 'rdn-is-second-value'],
    }),
    user('twouidnum', next(), { uidNumber: ['10900', '10901'], tags: ['multi-uidnumber'] }),
    user('twogidnum', next(), { gidNumber: ['21001', '21002'], tags: ['multi-gidnumber'] }),
    user('twohome', next(), { homeDirectory: ['/home/twohome', '/srv/twohome'], tags: ['multi-home'] }),
    user('twoshell', next(), { loginShell: ['/bin/bash', '/bin/zsh'], tags: ['multi-shell'] }),
    user('nohome', next(), { homeDirectory: [], tags: ['no-home'] }),
    user('nouidnum', next(), { uidNumber: [], tags: ['no-uidnumber'] }),
    user('badnum', next(), { uidNumber: ['12x4'], tags: ['non-numeric-uidnumber'] }),
    user('jdoe', next(), { rdn: 'cn=Doe\\, Jane', cn: ['Doe, Jane'], tags: ['dn-escape'] }),
    user('rplus', next(), { rdn: 'cn=R\\+Plus', cn: ['R+Plus'], tags: ['dn-escape'] }),
    user('bslash', next(), { rdn: 'cn=Back\\\\Slash', cn: ['Back\\Slash'], tags: ['dn-escape'] }),
    user('hash', next(), { rdn: 'cn=\\#Hash', cn: ['#Hash'], tags: ['dn-escape'] }),
    user('joann', next(), { rdn: 'cn=Jo Ann+uid=joann', cn: ['Jo Ann'], tags: ['multi-rdn'] }),
    user('multi', next(), { rdn: 'uid=multi+cn=Multi Valued', cn: ['Multi Valued'], tags: ['multi-rdn'] }),
    user('spacey', next(), {
      ou: `ou=Staff Members,${PEOPLE}`,
      homeDirectory: ['/home/staff/spacey'],
      tags: ['dn-space'],
    }),
    user('kim', next(), { tags: ['case-variant', 'case-pair'] }),
    // Not uid=Kim beside uid=kim: DNs compare case-insensitively, so that would be the same entry.
    user('Kim', next(), {
      ou: `ou=Staff Members,${PEOPLE}`,
      homeDirectory: ['/home/staff/Kim'],
      tags: ['case-variant', 'case-pair'],
    }),
    user('Mixed', next(), { tags: ['case-variant'] }),
    user('share-a', next(), { uidNumber: ['15000'], gidNumber: ['25100'], tags: ['shared-uid'] }),
    user('share-b', next(), { uidNumber: ['15000'], gidNumber: ['25100'], tags: ['shared-uid'] }),
    user('guest1', next(), { ou: `ou=guests,${SUFFIX}`, inUserBase: false, tags: ['out-of-scope'] }),
    user('sssd-probe', next(), { gidNumber: ['29999'], tags: ['probe'] }),
  ];
  const byName = (name: string) => specials.find((u) => u.name === name) as OracleUser;
  // twouid: listed by its second value in alias-member, by its first in chain-a1.
  join(byName('twouid'), aliasMember, { memberUid: 'twouid-alias' });
  join(byName('twouid'), chainA[0] as OracleGroup);
  join(byName('aliasfirst'), aliasMember, { memberUid: 'aliasfirst-old' });
  join(byName('aliasfirst'), teams[2] as OracleGroup);
  join(byName('kim'), teams[4] as OracleGroup);
  join(byName('Kim'), teams[6] as OracleGroup, { memberUid: 'Kim' });
  join(byName('Kim'), chainA[1] as OracleGroup);
  join(byName('Mixed'), chainB[0] as OracleGroup);
  join(byName('share-a'), aliasGroups[0] as OracleGroup);
  join(byName('share-b'), aliasGroups[1] as OracleGroup);
  join(byName('twomail'), chainA[0] as OracleGroup);
  join(byName('twogidnum'), projects[1] as OracleGroup);
  join(byName('jdoe'), opsWest);
  join(byName('rplus'), rPlusD, { memberDn: `cn=r\\2Bplus,${PEOPLE}` });
  join(byName('bslash'), hashGroup, { memberDn: `CN=Back\\5CSlash,${PEOPLE.toUpperCase()}` });
  join(byName('hash'), labRdn, { memberDn: `cn=\\23Hash,${PEOPLE}` });
  join(byName('joann'), dataScience, { memberDn: `uid=joann+cn=Jo Ann,${PEOPLE}` });
  join(byName('multi'), labRdn);
  join(byName('spacey'), dangling, { memberDn: `uid=spacey,ou=staff members,${PEOPLE}` });
  join(byName('guest1'), teams[1] as OracleGroup);

  const regular = userCount - specials.length;
  for (let i = 0; i < regular; i++) {
    const name = `user${pad(i)}`;
    const staff = i % 17 === 5;
    const number = next();
    const privateGroup = random() < 0.5;
    const team = pick(teams);
    const u = user(name, number, {
      ...(staff ? { ou: `ou=Staff Members,${PEOPLE}`, homeDirectory: [`/home/staff/${name}`] } : {}),
      gidNumber: [privateGroup ? String(10_000 + number) : (team.gidNumber[0] as string)],
      tags: [privateGroup ? 'private-primary' : 'team-primary', ...(staff ? ['dn-space'] : [])],
    });
    if (privateGroup) {
      // A user-private group: lists nobody; a third of them sit in all-private.
      const own = group(name, 10_000 + number, { tags: ['private'] });
      if (i % 3 === 0) {
        nest(own, allPrivate);
        u.tags.push('primary-in-parent');
      }
    } else {
      u.tags.push(listingTeams.has(team) ? 'primary-lists-user' : 'primary-in-parent');
      if (listingTeams.has(team)) join(u, team);
    }
    const memberships = Math.floor(random() * 5);
    for (let k = 0; k < memberships; k++) join(u, pick(pool));
    if (i % 23 === 7) join(u, caseDn, { memberDn: u.dn.toUpperCase() });
    if (i % 29 === 11) join(u, caseUid, { memberUid: name.toUpperCase() });
  }

  // --- names asked -----------------------------------------------------------------------------
  const inBase = (name: string, caseSensitive = true) =>
    users.filter(
      (u) => u.inUserBase && u.uid.some((v) => (caseSensitive ? v === name : v.toLowerCase() === name)),
    );
  const asked: AskedName[] = [];
  const ask = (name: string, tags: string[]) => {
    if (asked.some((a) => a.name === name)) return;
    const found = inBase(name);
    asked.push(found.length === 1 ? { name, user: found[0] as OracleUser, tags } : { name, tags });
  };
  for (const u of users) ask(u.name, u.tags);
  for (const u of users) {
    for (const v of u.uid) if (v !== u.name) ask(v, [...u.tags, 'second-uid']);
  }
  ask('mixed', ['case-variant', 'no-such-spelling']);
  ask('KIM', ['case-variant', 'no-such-spelling']);
  ask('USER001', ['case-variant', 'no-such-spelling']);
  ask('deleted-user-1', ['dangling', 'no-entry']);

  return {
    users,
    groups,
    asked,
    probe: 'sssd-probe',
    ldif: (schema) => renderLdif(schema, users, groups),
  };
}

// ---------------------------------------------------------------------------------------------
// LDIF

/** An LDIF line: base64 where LDIF needs it (leading space, colon, '<', non-ASCII or trailing space). */
const line = (attribute: string, value: string) =>
  /^[ :<]|[^\x20-\x7e]| $/.test(value)
    ? `${attribute}:: ${Buffer.from(value, 'utf8').toString('base64')}`
    : `${attribute}: ${value}`;

function renderLdif(schema: 'rfc2307' | 'rfc2307bis', users: OracleUser[], groups: OracleGroup[]): string {
  const out: string[] = [];
  const entry = (lines: string[]) => out.push(`${lines.join('\n')}\n`);
  // The OUs the harness does not write (it writes people, groups and services).
  for (const dn of [
    `ou=Staff Members,${PEOPLE}`,
    `ou=guests,${SUFFIX}`,
    `ou=nested,${GROUPS}`,
    `ou=Research Units,${GROUPS}`,
    PROJECTS,
    `ou=archive,${PROJECTS}`,
    `ou=other,${SUFFIX}`,
  ]) {
    const ou = /^ou=([^,]+)/.exec(dn)?.[1] as string;
    entry([line('dn', dn), 'objectClass: organizationalUnit', line('ou', ou)]);
  }
  for (const u of users) {
    const lines = [line('dn', u.dn), 'objectClass: inetOrgPerson', 'objectClass: posixAccount'];
    for (const v of u.uid) lines.push(line('uid', v));
    for (const v of u.cn) lines.push(line('cn', v));
    lines.push(line('sn', u.name));
    for (const v of u.uidNumber) lines.push(line('uidNumber', v));
    for (const v of u.gidNumber) lines.push(line('gidNumber', v));
    for (const v of u.homeDirectory) lines.push(line('homeDirectory', v));
    for (const v of u.mail) lines.push(line('mail', v));
    for (const v of u.loginShell) lines.push(line('loginShell', v));
    entry(lines);
  }
  for (const g of groups) {
    const lines = [line('dn', g.dn)];
    if (schema === 'rfc2307') {
      lines.push('objectClass: posixGroup');
      for (const v of g.cn) lines.push(line('cn', v));
      for (const v of g.gidNumber) lines.push(line('gidNumber', v));
      for (const m of g.users) lines.push(line('memberUid', m.memberUid ?? m.user.name));
      for (const v of g.dangling.memberUid) lines.push(line('memberUid', v));
    } else {
      lines.push('objectClass: groupOfNames');
      if (g.gidNumber.length > 0) lines.push('objectClass: posixGroup');
      for (const v of g.cn) lines.push(line('cn', v));
      for (const v of g.gidNumber) lines.push(line('gidNumber', v));
      for (const m of g.users) lines.push(line('member', m.memberDn ?? m.user.dn));
      for (const m of g.groups) lines.push(line('member', m.memberDn ?? m.group.dn));
      for (const v of g.dangling.memberDn) lines.push(line('member', v));
    }
    // The RDN's attribute values must be in the entry (cn+gidNumber: gidNumber is there already).
    entry(lines);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The documented semantics, computed from the model

export interface ExpectedIdentity {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** The primary gid plus the gid of every group granted by member values (see groupsOf). */
  gids: number[];
}

type Schema = 'rfc2307' | 'rfc2307bis';

const posixId = (values: string[]) =>
  values.length === 1 && /^[0-9]{1,10}$/.test(values[0] as string) ? Number(values[0]) : undefined;

/** The user's direct groups: in-scope groups whose member values name it (memberUid case-exact, as nis.schema compares). */
function directGroups(fixture: OracleFixture, schema: Schema, user: OracleUser): OracleGroup[] {
  return fixture.groups.filter(
    (g) =>
      g.inGroupBase &&
      g.users.some((m) =>
        schema === 'rfc2307' ? (m.memberUid ?? m.user.name) === user.name : m.user === user,
      ),
  );
}

/** In-scope groups listing `group` as a member (rfc2307bis nesting). */
const parentsOf = (fixture: OracleFixture, group: OracleGroup) =>
  fixture.groups.filter((p) => p.inGroupBase && p.groups.some((m) => m.group === group));

/** Groups reachable from `start` (included), breadth first, `depth` parent levels at most, each with its level. */
function upwards(fixture: OracleFixture, start: OracleGroup[], depth: number): Map<OracleGroup, number> {
  const level = new Map<OracleGroup, number>(start.map((g) => [g, 0]));
  let frontier = start;
  for (let d = 1; d <= depth && frontier.length > 0; d++) {
    const next = [...new Set(frontier.flatMap((g) => parentsOf(fixture, g)))].filter((p) => !level.has(p));
    for (const p of next) level.set(p, d);
    frontier = next;
  }
  return level;
}

/**
 * Every group the user is granted: its direct groups and, for rfc2307bis, their parents up to
 * `depth` levels (each at its shortest distance), through groups without gidNumber too.
 */
export function groupsOf(fixture: OracleFixture, schema: Schema, user: OracleUser, depth = NESTING_DEPTH) {
  const direct = directGroups(fixture, schema, user);
  return schema === 'rfc2307' ? direct : [...upwards(fixture, direct, depth).keys()];
}

/**
 * What a directory says about `user` under SSSD's documented rules (sssd-ldap(5)): no identity
 * unless uidNumber and gidNumber each have one numeric value; the name is the RDN's uid value
 * (else the only one); the home the first homeDirectory value, as SSSD takes it; membership from
 * member values only, groups only from GROUP_BASES, nested `depth` levels above the direct
 * groups; a group counts with exactly one gidNumber (POSIX groups have one gid; SSSD cannot
 * store one with two); the primary gid always.
 * Checked against SSSD itself by the oracle test on every name SSSD answers right.
 */
export function expectedIdentity(
  fixture: OracleFixture,
  schema: Schema,
  user: OracleUser,
  depth = NESTING_DEPTH,
): ExpectedIdentity | undefined {
  const uid = posixId(user.uidNumber);
  const gid = posixId(user.gidNumber);
  if (uid === undefined || gid === undefined) return undefined;
  const gids = new Set([gid]);
  for (const g of groupsOf(fixture, schema, user, depth)) {
    const groupGid = posixId(g.gidNumber);
    if (groupGid !== undefined) gids.add(groupGid);
  }
  return {
    name: user.name,
    uid,
    gid,
    home: user.homeDirectory[0] ?? '',
    gids: [...gids].sort((a, b) => a - b),
  };
}

/**
 * Why SSSD's answer for `user` is known to be wrong, or undefined. Each reason was seen in
 * SSSD 2.8's own debug log on this fixture; the oracle then compares idmount with the model.
 */
export function sssdKnownWrong(fixture: OracleFixture, schema: Schema, user: OracleUser): string | undefined {
  if (schema === 'rfc2307bis' && user.tags.includes('case-pair')) {
    // Its initgroups searches (uid=Kim), which slapd answers with uid=kim and uid=Kim (uid is
    // caseIgnoreMatch); "The search returned 2 entries, need to match the correct one", then it
    // stores and resolves the other entry: Kim gets kim's groups (or none).
    return 'case-variant pair: SSSD resolves the groups of the other entry';
  }
  if (groupsOf(fixture, schema, user).some((g) => g.gidNumber.length > 1)) {
    // "The GID attribute is malformed", then "Could not save groups memberships": every group
    // of the user is lost, not only the malformed one.
    return 'a group with two gidNumber values: SSSD saves none of the user groups';
  }
  if (schema === 'rfc2307bis') {
    // SSSD walks up from each direct group in turn and never visits a group twice: a direct
    // group first met as the parent of another direct group is followed only from that deeper
    // level, so its own parents may be cut (user in chain-a1 and chain-a3 does not get chain-a5,
    // a user in chain-a3 alone does). Flagged where that cut would change the answer: the
    // user's groups differ once such a group is reached only through the other one.
    const direct = directGroups(fixture, schema, user);
    const full = upwards(fixture, direct, NESTING_DEPTH).size;
    const cut = direct.some(
      (g) =>
        direct.some((other) => other !== g && upwards(fixture, [other], NESTING_DEPTH).has(g)) &&
        upwards(
          fixture,
          direct.filter((d) => d !== g),
          NESTING_DEPTH,
        ).size < full,
    );
    if (cut) return 'a direct group is also a parent of another direct group: SSSD cuts its parents';
  }
  return undefined;
}

/** Gids of the parents of the user's primary group(s) (by gidNumber) that do not list the user. */
export function primaryParentGids(fixture: OracleFixture, user: OracleUser, depth = NESTING_DEPTH): number[] {
  const primary = fixture.groups.filter(
    (g) =>
      g.inGroupBase && g.gidNumber.includes(user.gidNumber[0] ?? '') && !g.users.some((m) => m.user === user),
  );
  return [...upwards(fixture, primary, depth).keys()]
    .filter((g) => !primary.includes(g))
    .flatMap((g) => g.gidNumber.map(Number));
}
