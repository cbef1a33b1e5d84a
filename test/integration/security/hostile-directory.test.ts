// A hostile directory, property-based (fast-check), against a real slapd: whatever entries a
// directory holds, they cannot bend the answer. Each run writes its own generated entries (as the
// root DN, over LDAP) into a subtree of its own, ou=r<N>, and asks a source searching only that
// subtree, so one slapd per schema serves every run of every property, shrinking included
// (about 6 s for the file on two shared cores; most of it writes, which slapd syncs to disk).
//
// 1. Decoys: entries holding the asked name in other cases or under other RDNs, found before the
//    target, and a later `file` source holding another identity for the name. The chain answers
//    with the target (the name in its RDN, its own groups) or refuses: never the later source's
//    identity, never "not found". Past a server size limit it refuses, naming the limit.
// 2. Nesting fans: generated group graphs (fan-out, chains, cycles, non-POSIX groups, dangling
//    members) under `groups.maxGroups` N: never more than N groups; past N the explain note says
//    it cut; otherwise exactly the groups a small model reaches from member values. Two cases it
//    found are tried first (NON_POSIX_FIRST): both fail on rfc2307bis while the walk up nested
//    groups counts non-POSIX groups against the bound.
// 3. A flood of names the cache has not seen, through the real app: unknown names and other
//    spellings of the cached users. With slapd stopped afterwards, every cached user still gets a
//    stale plan, none a 503.
import fc from 'fast-check';
import { Client } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { IdmountError } from '../../../src/errors.js';
import { createChain } from '../../../src/identity/chain.js';
import { FileSourceConfigSchema } from '../../../src/identity/sources/file/config.js';
import { createFileSource } from '../../../src/identity/sources/file/source.js';
import { createLdapSource } from '../../../src/identity/sources/ldap/source.js';
import type { Identity } from '../../../src/identity/types.js';
import { type DirectoryFixture, type LdapSchema, type Slapd, startSlapd } from '../../harness/slapd.js';
import { bearer, demoConfig, TOKENS, testApp, writeDirectory } from '../../helpers/app.js';
import { ldapConfig, silentLog } from '../ldap/fixture.js';

const ctx = { log: silentLog, baseDir: '.' };

type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;

// ---------------------------------------------------------------------------------------------
// Writing generated entries into a subtree of their own

type Attributes = Record<string, string | string[]>;
interface LdapEntry {
  dn: string;
  attributes: Attributes;
}

/** A client bound as slapd's root DN, which may write anything the schema allows. */
async function rootClient(slapd: Slapd): Promise<Client> {
  const client = new Client({ url: slapd.url, timeout: 5000, connectTimeout: 2000 });
  await client.bind(slapd.rootDN, slapd.rootPassword);
  return client;
}

/**
 * One slapd per schema (and size limit), started on first use and shared by the properties: each
 * run writes into a subtree of its own, so runs never see each other's entries.
 */
const servers = new Map<string, Promise<{ slapd: Slapd; root: Client }>>();
function serverFor(schema: LdapSchema, sizeLimit?: number) {
  const key = `${schema}/${sizeLimit ?? 'default'}`;
  let server = servers.get(key);
  if (server === undefined) {
    server = startSlapd({ schema, ...(sizeLimit === undefined ? {} : { sizeLimit }) }).then(
      async (slapd) => ({
        slapd,
        root: await rootClient(slapd),
      }),
    );
    servers.set(key, server);
  }
  return server;
}
afterAll(async () => {
  for (const server of servers.values()) {
    const { slapd, root } = await server.catch(() => ({ slapd: undefined, root: undefined }));
    await root?.unbind().catch(() => {});
    await slapd?.close();
  }
});

let runs = 0;

/** A fresh ou=r<N> under the suffix with people, staff, groups and elsewhere below it. */
async function newSubtree(client: Client, suffix: string): Promise<string> {
  runs += 1;
  const base = `ou=r${runs},${suffix}`;
  await client.add(base, { objectClass: 'organizationalUnit', ou: `r${runs}` });
  for (const ou of ['people', 'staff', 'groups', 'elsewhere']) {
    await client.add(`ou=${ou},${base}`, { objectClass: 'organizationalUnit', ou });
  }
  return base;
}

/** Adds entries one by one, in order: slapd (mdb) returns matches in the order they were added. */
async function addAll(client: Client, entries: LdapEntry[]) {
  for (const { dn, attributes } of entries) {
    try {
      await client.add(dn, attributes);
    } catch (err) {
      throw new Error(`cannot add ${dn} ${JSON.stringify(attributes)}: ${(err as Error).message}`);
    }
  }
}

const person = (
  dn: string,
  uids: string[],
  number: number,
  cn: string[] = [uids[0] as string],
): LdapEntry => ({
  dn,
  attributes: {
    objectClass: ['inetOrgPerson', 'posixAccount'],
    uid: uids,
    cn,
    sn: uids[0] as string,
    uidNumber: String(number),
    gidNumber: String(number),
    homeDirectory: `/home/${(uids[0] as string).toLowerCase()}`,
  },
});

/** A group listing users (by name in rfc2307, by DN in rfc2307bis) and, in rfc2307bis, groups. */
function group(
  schema: LdapSchema,
  dn: string,
  cn: string,
  gid: number | undefined,
  members: { names: string[]; dns: string[] },
  dangling: string,
): LdapEntry {
  if (schema === 'rfc2307') {
    const attributes: Attributes = { objectClass: 'posixGroup', cn, gidNumber: String(gid) };
    if (members.names.length > 0) attributes.memberUid = [...new Set(members.names)];
    return { dn, attributes };
  }
  // groupOfNames needs a member: an empty group lists a DN that does not exist.
  const attributes: Attributes = {
    objectClass: gid === undefined ? 'groupOfNames' : ['groupOfNames', 'posixGroup'],
    cn,
    member: members.dns.length > 0 ? members.dns : [dangling],
  };
  if (gid !== undefined) attributes.gidNumber = String(gid);
  return { dn, attributes };
}

/** An ldap source over one run's subtree: users under people and staff, groups under groups. */
function sourceFor(
  slapd: Slapd,
  subtree: string,
  options: { caseSensitiveNames?: boolean; maxNestingDepth?: number; maxGroups?: number } = {},
) {
  const { caseSensitiveNames = true, maxNestingDepth = 2, maxGroups = 2000 } = options;
  return createLdapSource(
    ldapConfig(slapd, {
      caseSensitiveNames,
      users: { bases: [{ base: `ou=people,${subtree}` }, { base: `ou=staff,${subtree}` }] },
      groups: { bases: [{ base: `ou=groups,${subtree}` }], maxNestingDepth, maxGroups },
    }),
    ctx,
  );
}

/** What the chain answered: an identity, "not found" (null), or the error it refused with. */
async function ask(
  chain: ReturnType<typeof createChain>,
  name: string,
): Promise<Identity | null | IdmountError> {
  try {
    return (await chain.ask(name)).identity;
  } catch (err) {
    if (err instanceof IdmountError) return err;
    throw err;
  }
}

const describeAnswer = (answer: Identity | null | IdmountError) =>
  answer === null
    ? 'not found'
    : answer instanceof IdmountError
      ? `${answer.code}: ${answer.message}`
      : `${answer.name} uid ${answer.uid} from ${answer.origin.uid}, groups ${answer.groups.map((g) => g.name).join(',')}`;

// ---------------------------------------------------------------------------------------------
// 1. Decoys

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const loginName = fc
  .tuple(
    fc.constantFrom(...LOWER),
    fc.string({ unit: fc.constantFrom(...`${LOWER}0123456789`), minLength: 1, maxLength: 7 }),
  )
  .map(([first, rest]) => first + rest);

/** `name` with the letters `mask` marks in upper case; never `name` itself (it starts with a letter). */
function otherCase(name: string, mask: boolean[]): string {
  const variant = [...name].map((c, i) => (mask[i % mask.length] ? c.toUpperCase() : c)).join('');
  return variant === name ? name[0]?.toUpperCase() + name.slice(1) : variant;
}

const decoyArb = fc.record({
  mask: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
  /**
   * cn: cn=decoy<i> in people; cn+uid: a two-valued RDN cn=decoy<i>+uid=<variant> in people;
   * uid-staff: uid=<variant> in staff (the other user base); elsewhere: the asked name itself,
   * exactly, outside the searched bases.
   */
  rdn: fc.constantFrom('cn', 'cn+uid', 'uid-staff', 'elsewhere'),
  /** A second uid value beside the variant (another name, in no RDN). */
  secondUid: fc.option(loginName, { nil: undefined }),
});
type Decoy = ValueOf<typeof decoyArb>;

const targetArb = fc.record({
  name: loginName,
  /** A second uid value of the target (with '-a' added, so never its name): asked by it, the answer is the name in the RDN. */
  alias: fc.option(loginName, { nil: undefined }),
  askAlias: fc.boolean(),
  caseSensitiveNames: fc.boolean(),
});

const TARGET_UID = 4100;
const IMPOSTOR_UID = 7777;

interface DecoyCase {
  target: ValueOf<typeof targetArb>;
  decoys: Decoy[];
}

/**
 * The run's entries: the decoys first (so slapd finds them first), then the target, then a group
 * listing the target and one listing every decoy. Returns the name asked and how many entries
 * the people base holds under that name in any case.
 */
function decoyEntries(schema: LdapSchema, subtree: string, { target, decoys }: DecoyCase) {
  const alias = target.alias === undefined ? undefined : `${target.alias}-a`;
  const asked = target.askAlias && alias !== undefined ? alias : target.name;
  const targetDn = `uid=${target.name},ou=people,${subtree}`;
  const usedDns = new Set([targetDn.toLowerCase()]);
  const entries: LdapEntry[] = [];
  const decoyNames: string[] = [];
  const decoyDns: string[] = [];
  let inPeople = 1;
  let inBases = 0;
  decoys.forEach((decoy, i) => {
    const number = 4200 + i;
    if (decoy.rdn === 'elsewhere') {
      entries.push(person(`cn=decoy${i},ou=elsewhere,${subtree}`, [asked], number, [`decoy${i}`]));
      return;
    }
    const variant = otherCase(asked, decoy.mask);
    // A '-' no generated login name holds: the second name is never the asked one.
    const uids = decoy.secondUid === undefined ? [variant] : [variant, `${decoy.secondUid}-d${i}`];
    let dn =
      decoy.rdn === 'cn'
        ? `cn=decoy${i},ou=people,${subtree}`
        : decoy.rdn === 'cn+uid'
          ? `cn=decoy${i}+uid=${variant},ou=people,${subtree}`
          : `uid=${variant},ou=staff,${subtree}`;
    // Two decoys spelling the name alike under uid= in staff would be one DN: the later one is a cn.
    if (usedDns.has(dn.toLowerCase())) dn = `cn=decoy${i},ou=people,${subtree}`;
    usedDns.add(dn.toLowerCase());
    if (dn.includes('ou=people')) inPeople += 1;
    inBases += 1;
    entries.push(person(dn, uids, number, dn.startsWith('cn=') ? [`decoy${i}`] : [variant]));
    decoyNames.push(variant);
    decoyDns.push(dn);
  });
  const targetUids = alias === undefined ? [target.name] : [target.name, alias];
  const targetEntry = person(targetDn, targetUids, TARGET_UID);
  // The target's primary gid is one no group has: its groups are exactly those listing it.
  targetEntry.attributes.gidNumber = '4199';
  entries.push(targetEntry);
  const dangling = `cn=nobody,${subtree}`;
  entries.push(
    group(
      schema,
      `cn=own,ou=groups,${subtree}`,
      'own',
      4300,
      { names: [target.name], dns: [targetDn] },
      dangling,
    ),
    group(
      schema,
      `cn=decoys,ou=groups,${subtree}`,
      'decoys',
      4301,
      { names: decoyNames, dns: decoyDns },
      dangling,
    ),
  );
  return { asked, entries, inPeople, inBases };
}

const decoyCaseArb = fc.record({ target: targetArb, decoys: fc.array(decoyArb, { maxLength: 8 }) });

/** The chain over the run's ldap source and a file source with another identity for `asked`. */
function decoyChain(slapd: Slapd, subtree: string, asked: string, caseSensitiveNames: boolean) {
  const ldap = sourceFor(slapd, subtree, { caseSensitiveNames });
  const impostor = createFileSource(
    FileSourceConfigSchema.parse({
      name: 'visitors',
      type: 'file',
      path: writeDirectory({
        users: [{ name: asked, uid: String(IMPOSTOR_UID), gid: String(IMPOSTOR_UID) }],
      }),
    }),
    ctx,
  );
  return createChain([ldap, impostor]);
}

describe.each<LdapSchema>(['rfc2307', 'rfc2307bis'])('decoys, %s', (schema) => {
  let slapd: Slapd;
  let limited: Slapd;
  let root: Client;
  let limitedRoot: Client;
  const SIZE_LIMIT = 3;
  beforeAll(async () => {
    ({ slapd, root } = await serverFor(schema));
    ({ slapd: limited, root: limitedRoot } = await serverFor(schema, SIZE_LIMIT));
  });

  it('answer with the target (the name in its RDN, its own groups) or refuse, never a later source, never "not found"', async () => {
    await fc.assert(
      fc.asyncProperty(decoyCaseArb, async (testCase) => {
        const subtree = await newSubtree(root, slapd.suffix);
        const { asked, entries, inBases } = decoyEntries(schema, subtree, testCase);
        await addAll(root, entries);
        const chain = decoyChain(slapd, subtree, asked, testCase.target.caseSensitiveNames);
        try {
          const answer = await ask(chain, asked);
          const seen = describeAnswer(answer);
          expect(answer, seen).not.toBeNull();
          if (answer instanceof IdmountError) {
            // Refusing is right only where the name is truly ambiguous: a case-insensitive source
            // sees every spelling of it as the name.
            expect(testCase.target.caseSensitiveNames, seen).toBe(false);
            expect(inBases, seen).toBeGreaterThan(0);
            expect(answer.code, seen).toBe('DIRECTORY_ENTRY_INVALID');
            return;
          }
          const identity = answer as Identity;
          expect(identity.uid, seen).not.toBe(IMPOSTOR_UID);
          expect({ name: identity.name, uid: identity.uid, source: identity.origin.uid }, seen).toEqual({
            name: testCase.target.name,
            uid: TARGET_UID,
            source: 'campus',
          });
          expect(
            identity.groups.map((g) => g.name),
            seen,
          ).toEqual(['own']);
          // A case-insensitive source answers only when nothing else in its bases holds the name.
          if (!testCase.target.caseSensitiveNames) expect(inBases, seen).toBe(0);
        } finally {
          await chain.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it('refuse past a server size limit, naming it, never a later source, never "not found"', async () => {
    const overLimit = fc.record({
      target: targetArb,
      // At least SIZE_LIMIT decoys beside the target in the people base: one search returns more.
      crowd: fc.array(
        decoyArb.map((d): Decoy => ({ ...d, rdn: d.rdn === 'cn+uid' ? 'cn+uid' : 'cn' })),
        { minLength: SIZE_LIMIT, maxLength: SIZE_LIMIT + 4 },
      ),
      others: fc.array(decoyArb, { maxLength: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(overLimit, async ({ target, crowd, others }) => {
        const subtree = await newSubtree(limitedRoot, limited.suffix);
        const { asked, entries, inPeople } = decoyEntries(schema, subtree, {
          target: { ...target, alias: undefined },
          decoys: [...crowd, ...others],
        });
        expect(inPeople).toBeGreaterThan(SIZE_LIMIT);
        await addAll(limitedRoot, entries);
        const chain = decoyChain(limited, subtree, asked, target.caseSensitiveNames);
        try {
          const answer = await ask(chain, asked);
          const seen = describeAnswer(answer);
          expect(answer, seen).toBeInstanceOf(IdmountError);
          expect((answer as IdmountError).code, seen).toBe('SOURCE_UNAVAILABLE');
          expect((answer as IdmountError).message, seen).toMatch(/size limit/);
        } finally {
          await chain.close();
        }
      }),
      { numRuns: 15 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Nesting fans

interface TreeGroup {
  /** Has a gidNumber (rfc2307: always; rfc2307bis: otherwise a plain groupOfNames, nesting only). */
  posix: boolean;
  /** Lists the user among its member values. */
  hasUser: boolean;
  /** Indices of the groups it lists as members (rfc2307bis only); itself and cycles allowed. */
  members: number[];
  /** Also lists the previous group: long chains, to reach past the nesting level. */
  chain: boolean;
}

interface Tree {
  groups: TreeGroup[];
  /** The user's primary gid is group[primary]'s (a gid no group has when it is past the end). */
  primary: number;
  depth: number;
  maxGroups: number;
}

const treeArb = (schema: LdapSchema): fc.Arbitrary<Tree> =>
  fc.integer({ min: 1, max: 16 }).chain((m) =>
    fc.record({
      groups: fc.array(
        fc.record({
          posix: schema === 'rfc2307' ? fc.constant(true) : fc.constantFrom(true, true, false),
          hasUser: fc.constantFrom(true, false, false),
          members: fc.uniqueArray(fc.nat(m - 1), { maxLength: m < 4 ? m : 6 }),
          chain: fc.boolean(),
        }),
        { minLength: m, maxLength: m },
      ),
      primary: fc.nat(m),
      depth: fc.nat(4),
      maxGroups: fc.integer({ min: 1, max: m + 1 }),
    }),
  );

const gidOf = (i: number) => 5000 + i;

/**
 * The model: groups whose member values name the user, their parents level by level up to
 * `depth` levels (rfc2307: none), the POSIX ones among them, plus every POSIX group holding the
 * user's primary gid, whose own parents are not followed (a gid is not a member value).
 */
function expectedGroups(schema: LdapSchema, tree: Tree): Set<string> {
  const parentsOf = (child: number) =>
    tree.groups.flatMap((g, i) => (g.members.includes(child) || (g.chain && i - 1 === child) ? [i] : []));
  const direct = tree.groups.flatMap((g, i) => (g.hasUser ? [i] : []));
  const found = new Set(direct);
  let frontier = direct;
  for (let level = 1; schema === 'rfc2307bis' && level <= tree.depth && frontier.length > 0; level += 1) {
    const next: number[] = [];
    for (const child of frontier) {
      for (const parent of parentsOf(child)) {
        if (!found.has(parent)) {
          found.add(parent);
          next.push(parent);
        }
      }
    }
    frontier = next;
  }
  const primary = tree.groups[tree.primary]?.posix === true ? [tree.primary] : [];
  return new Set([...found, ...primary].filter((i) => tree.groups[i]?.posix).map((i) => `g${i}`));
}

function treeEntries(schema: LdapSchema, subtree: string, tree: Tree): LdapEntry[] {
  const userDn = `uid=fan,ou=people,${subtree}`;
  const user = person(userDn, ['fan'], 4500);
  user.attributes.gidNumber = String(
    tree.primary < tree.groups.length && tree.groups[tree.primary]?.posix ? gidOf(tree.primary) : 4999,
  );
  const groupDn = (i: number) => `cn=g${i},ou=groups,${subtree}`;
  return [
    user,
    ...tree.groups.map((g, i) => {
      const children = [...new Set([...g.members, ...(g.chain && i > 0 ? [i - 1] : [])])];
      return group(
        schema,
        groupDn(i),
        `g${i}`,
        g.posix ? gidOf(i) : undefined,
        {
          names: g.hasUser ? ['fan'] : [],
          dns: [...(g.hasUser ? [userDn] : []), ...children.map(groupDn)],
        },
        `cn=nobody,${subtree}`,
      );
    }),
  ];
}

const nesting = (posix: boolean, hasUser: boolean, members: number[] = []): TreeGroup => ({
  posix,
  hasUser,
  members,
  chain: false,
});

/**
 * Found by this property, tried first on every run: the user is a member of two non-POSIX groups
 * (g0, g1) and g2 lists g0. With maxGroups 1 the walk up stops before it starts (two groups found,
 * counting the non-POSIX ones), so g2 is never reached: the user gets no group at all, and no note.
 * In the second, g0 is POSIX too: the list is cut to g0 without the note saying so.
 */
const NON_POSIX_FIRST: Tree[] = [
  {
    groups: [nesting(false, true), nesting(false, true), nesting(true, false, [0])],
    primary: 3,
    depth: 1,
    maxGroups: 1,
  },
  {
    groups: [nesting(true, true), nesting(false, true), nesting(true, false, [0])],
    primary: 3,
    depth: 1,
    maxGroups: 1,
  },
];

describe.each<LdapSchema>(['rfc2307', 'rfc2307bis'])('nesting fans, %s', (schema) => {
  let slapd: Slapd;
  let root: Client;
  beforeAll(async () => {
    ({ slapd, root } = await serverFor(schema));
  });

  it('at most groups.maxGroups groups; past it a note says so; within it exactly the groups member values reach', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb(schema), async (tree) => {
        const subtree = await newSubtree(root, slapd.suffix);
        await addAll(root, treeEntries(schema, subtree, tree));
        const source = sourceFor(slapd, subtree, { maxNestingDepth: tree.depth, maxGroups: tree.maxGroups });
        try {
          const answer = await ask(createChain([source]), 'fan');
          const seen = describeAnswer(answer);
          expect(answer, seen).not.toBeNull();
          expect(answer, seen).not.toBeInstanceOf(IdmountError);
          const identity = answer as Identity;
          const names = identity.groups.map((g) => g.name);
          const notes = identity.notes.join('\n');
          const expected = expectedGroups(schema, tree);
          const context = `${seen}; expected ${[...expected].sort().join(',')}; notes: ${notes}`;
          expect(names.length, context).toBeLessThanOrEqual(tree.maxGroups);
          expect(new Set(names).size, context).toBe(names.length);
          for (const name of names) expect(expected, context).toContain(name);
          if (expected.size > tree.maxGroups) {
            expect(notes, context).toMatch(/group list cut .*\(groups\.maxGroups\)/);
          } else {
            expect(names.sort(), context).toEqual([...expected].sort());
            expect(notes, context).not.toMatch(/groups\.maxGroups/);
          }
        } finally {
          await source.close();
        }
      }),
      { numRuns: 40, examples: schema === 'rfc2307bis' ? NON_POSIX_FIRST.map((tree) => [tree]) : [] },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// 3. A flood of names the cache has not seen

const KNOWN = ['ann', 'Bea', 'cy3', 'dee.x', 'eve_1', 'fay', 'Gus', 'hal', 'ivy', 'jo-2'];
const KNOWN_FOLDED = new Set(KNOWN.map((n) => n.toLowerCase()));
const knownUid = (i: number) => 6000 + i;

const floodFixture: DirectoryFixture = {
  users: KNOWN.map((uid, i) => ({ uid, uidNumber: knownUid(i), gidNumber: knownUid(i) })),
  groups: [{ cn: 'everyone', gidNumber: 3000, users: KNOWN }],
};

const unknownName = fc
  .stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,20}$/)
  // Not a directory user in any case, and no '..' (refused before any lookup).
  .filter((n) => !KNOWN_FOLDED.has(n.toLowerCase()) && !n.includes('..'));

const floodArb = fc
  .record({
    caseSensitiveNames: fc.boolean(),
    known: fc.uniqueArray(fc.nat(KNOWN.length - 1), { minLength: 1, maxLength: 8 }),
    /** cache.maxEntries = the number of known users + slack: a full cache, or nearly. */
    slack: fc.nat(2),
    maxNegativeEntries: fc.integer({ min: 1, max: 4 }),
    flood: fc.array(
      fc.oneof(
        unknownName.map((name) => ({ kind: 'unknown' as const, name })),
        // Another spelling of the k-th cached user: that same user where the source folds case.
        fc.record({
          kind: fc.constant('spelling' as const),
          k: fc.nat(7),
          mask: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
        }),
      ),
      { minLength: 10, maxLength: 120 },
    ),
  })
  .map(({ flood, ...rest }) => ({
    ...rest,
    flood: flood.map((item): { name: string; of?: number } => {
      if (item.kind === 'unknown') return { name: item.name };
      const of = rest.known[item.k % rest.known.length] as number;
      const known = KNOWN[of] as string;
      const spelling = [...known]
        .map((ch, i) => (item.mask[i % item.mask.length] ? ch.toUpperCase() : ch.toLowerCase()))
        .join('');
      // Every known name has a lower-case letter, so its upper-case spelling differs from it.
      return { name: spelling !== known ? spelling : known.toUpperCase(), of };
    }),
  }));

describe('a flood of names the cache has not seen', () => {
  let slapd: Slapd;
  beforeAll(async () => {
    slapd = await startSlapd({ schema: 'rfc2307', fixture: floodFixture });
  });
  afterAll(async () => slapd?.close());

  it('never pushes a cached user out: with slapd stopped, every cached user gets a stale plan, none a 503', async () => {
    await fc.assert(
      fc.asyncProperty(floodArb, async ({ caseSensitiveNames, known, slack, maxNegativeEntries, flood }) => {
        if (!slapd.running) await slapd.start();
        let clock = Date.now();
        const app: App = await testApp(
          demoConfig({
            auth: { ...demoConfig().auth, rateLimit: { max: 1_000_000, window: '1m' } },
            sources: [
              {
                name: 'campus',
                type: 'ldap',
                schema: 'rfc2307',
                urls: [slapd.url],
                bindDN: slapd.bindDN,
                bindPasswordFile: slapd.bindPasswordFile,
                caseSensitiveNames,
                backoff: { initial: '100ms', max: '400ms' },
                connectTimeout: '2s',
                users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
                groups: { bases: [{ base: `ou=groups,${slapd.suffix}` }] },
              },
            ],
            cache: {
              ttl: '1m',
              negativeTtl: '1m',
              staleIfError: '1h',
              maxEntries: known.length + slack,
              maxNegativeEntries,
            },
          }),
          { now: () => clock },
        );
        const plan = (name: string) =>
          app.inject({ url: `/users/${encodeURIComponent(name)}/spawn-plan`, headers: bearer(TOKENS.hub) });
        try {
          for (const i of known) {
            const res = await plan(KNOWN[i] as string);
            expect(res.statusCode, res.body).toBe(200);
            expect(res.json()).toMatchObject({ uid: knownUid(i), stale: false });
          }
          for (const { name, of } of flood) {
            const res = await plan(name);
            if (of !== undefined && !caseSensitiveNames) {
              expect(res.statusCode, `${name}: ${res.body}`).toBe(200);
              expect(res.json()).toMatchObject({ uid: knownUid(of) });
            } else {
              expect(res.statusCode, `${name}: ${res.body}`).toBe(404);
            }
          }
          await slapd.stop();
          clock += 2 * 60_000; // past the TTL: each cached user must be asked for again
          for (const i of known) {
            const res = await plan(KNOWN[i] as string);
            expect(res.statusCode, `${KNOWN[i]} after the flood: ${res.body}`).toBe(200);
            expect(res.json()).toMatchObject({ uid: knownUid(i), stale: true });
          }
        } finally {
          await app.close();
        }
      }),
      { numRuns: 15 },
    );
  });
});
