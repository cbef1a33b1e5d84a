// SSSD as the oracle (DESIGN.md, "Directory semantics": answers match SSSD's for the same
// directory and settings). One slapd per schema holds ./fixture.ts's ~300 users; SSSD
// (test/harness/sssd.ts: id_provider = ldap, settings matching idmount's config below) and
// idmount (the real app, GET /users/{name}) are asked about every name, and must agree.
//
// What is compared, for each name asked (every user's name, second uid values, case variants):
// - Whether there is an identity: SSSD has one when `getent passwd NAME` prints a line; idmount
//   when it answers 200. SSSD can only say "no such user", so idmount's 404 USER_NOT_FOUND and
//   422 DIRECTORY_ENTRY_INVALID both count as "no identity" (the report shows which).
// - When both have one: the login name, uid, gid and home (SSSD prints an empty field where the
//   entry has none; idmount leaves `home` out: both count as none), and the SET of gids the
//   user's processes get: SSSD's = the passwd gid plus the gids `getent initgroups NAME` prints;
//   idmount's = `gid` plus the gid of every entry of `groups`; each deduplicated (two groups
//   may share a gid). The primary gid is in both sets because initgroups(3) always adds it, so
//   whether a source also lists it as a group changes nothing for the process.
// Not compared: gecos and shell (not identity), group names (initgroups has only gids).
//
// Where SSSD itself is demonstrably wrong, the reference for that name is the fixture's model of
// SSSD's documented semantics (`expectedIdentity`), and the report shows SSSD's answer beside it.
// `sssdKnownWrong` names the cases, each seen in SSSD's own debug log:
// - a case-variant pair (`kim` and `Kim`, two entries), rfc2307bis: SSSD resolves Kim's
//   memberships on kim's entry;
// - a group with two gidNumber values among the user's groups: SSSD saves none of the user's
//   groups ("The GID attribute is malformed", "Could not save groups memberships");
// - rfc2307bis, a direct group that is also a parent of another direct group: SSSD meets it
//   first at the deeper level and cuts its parents there (a user in chain-a1 and chain-a3 does
//   not get chain-a5, a user in chain-a3 alone does).
// The second test keeps the model honest: on every other name SSSD and the model must agree.
//
// Deliberate differences (docs/04-ldap.md, "The same answers as SSSD"), asserted as such:
// - an entry with two homeDirectory values: SSSD takes the first the server sends; idmount refuses
//   the entry (422 naming homeDirectory), because the home decides which directory is mounted
//   read-write, and picking one by the server's order would be a guess at the user's data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { type LdapSchema, type Slapd, startSlapd } from '../../harness/slapd.js';
import {
  askSssd,
  assertSssdAvailable,
  machineFingerprint,
  type SssdAnswer,
  type SssdDomainOptions,
} from '../../harness/sssd.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';
import {
  type AskedName,
  buildOracleFixture,
  expectedIdentity,
  GROUP_BASES,
  groupsOf,
  NESTING_DEPTH,
  primaryParentGids,
  sssdKnownWrong,
  USER_BASES,
} from './fixture.js';

const fixture = buildOracleFixture();

/** An answer reduced to what is compared. */
interface Answer {
  known: boolean;
  /** idmount: the HTTP status, problem code and attribute when there is no identity. */
  refusal?: string;
  name?: string;
  uid?: number;
  gid?: number;
  home?: string;
  gids?: number[];
}

const sortedUnique = (gids: number[]) => [...new Set(gids)].sort((a, b) => a - b);

const fromSssd = (a: SssdAnswer): Answer =>
  a.passwd === null
    ? { known: false }
    : {
        known: true,
        name: a.passwd.name,
        uid: a.passwd.uid,
        gid: a.passwd.gid,
        home: a.passwd.home,
        gids: sortedUnique([a.passwd.gid, ...a.initgroups]),
      };

function fromModel(schema: LdapSchema, asked: AskedName): Answer {
  const expected = asked.user && expectedIdentity(fixture, schema, asked.user);
  return expected === undefined ? { known: false } : { known: true, ...expected };
}

interface IdmountIdentity {
  name: string;
  uid: number;
  gid: number;
  home?: string;
  groups: Array<{ name: string; gid: number }>;
}

function fromIdmount(status: number, body: Record<string, unknown>): Answer {
  if (status === 200) {
    const id = body as unknown as IdmountIdentity;
    return {
      known: true,
      name: id.name,
      uid: id.uid,
      gid: id.gid,
      home: id.home ?? '',
      gids: sortedUnique([id.gid, ...id.groups.map((g) => g.gid)]),
    };
  }
  const attribute = typeof body.attribute === 'string' ? ` (${body.attribute})` : '';
  return { known: false, refusal: `${status} ${String(body.code)}${attribute}` };
}

const show = (a: Answer) =>
  a.known
    ? `${a.name} uid=${a.uid} gid=${a.gid} home=${a.home === '' ? '(none)' : a.home} gids=[${a.gids?.join(',')}]`
    : `no identity${a.refusal ? ` (${a.refusal})` : ''}`;

/** The fields in which `answer` differs from `reference`, each with a label for the report. */
function differences(schema: LdapSchema, asked: AskedName, reference: Answer, answer: Answer): string[] {
  if (!reference.known || !answer.known) {
    if (reference.known === answer.known) return [];
    return [
      reference.known ? `refuses: ${answer.refusal ?? 'no such user'}` : 'answers a name with no identity',
    ];
  }
  const out: string[] = [];
  if (reference.name !== answer.name) {
    out.push(
      asked.tags.includes('second-uid')
        ? 'name: asked by a second uid value, answers with that value (reference: the RDN value)'
        : 'name differs',
    );
  }
  for (const field of ['uid', 'gid', 'home'] as const) {
    if (reference[field] !== answer[field]) out.push(`${field} differs`);
  }
  const extra = (answer.gids ?? []).filter((g) => !reference.gids?.includes(g));
  const missing = (reference.gids ?? []).filter((g) => !answer.gids?.includes(g));
  if (extra.length > 0) {
    const user = asked.user;
    const primaryParents = user === undefined ? [] : primaryParentGids(fixture, user);
    const firstOfTwo =
      user === undefined
        ? []
        : groupsOf(fixture, schema, user)
            .filter((g) => g.gidNumber.length > 1)
            .map((g) => Number(g.gidNumber[0]));
    const why = (g: number) =>
      primaryParents.includes(g)
        ? 'a parent of the primary group (which does not list the user)'
        : firstOfTwo.includes(g)
          ? 'the first gid of a group with two gidNumber values'
          : asked.tags.includes('second-uid')
            ? 'a group listing the second uid value (memberUid)'
            : 'other';
    for (const reason of new Set(extra.map(why))) out.push(`grants extra groups: ${reason}`);
  }
  if (missing.length > 0) out.push('misses groups');
  return out;
}

interface Disagreement {
  name: string;
  tags: string[];
  labels: string[];
  reference: Answer;
  /** Set when the reference is the model because SSSD is wrong here: SSSD's answer and why. */
  sssdWrong?: { answer: Answer; why: string };
  idmount: Answer;
}

function report(schema: LdapSchema, disagreements: Disagreement[]): string {
  const byLabel = new Map<string, Disagreement[]>();
  for (const d of disagreements) {
    const key = d.labels.join('; ');
    byLabel.set(key, [...(byLabel.get(key) ?? []), d]);
  }
  const lines: string[] = [];
  for (const [label, list] of byLabel) {
    lines.push(`  [${schema}] idmount ${label}: ${list.length} (${list.map((d) => d.name).join(', ')})`);
    for (const d of list.slice(0, 3)) {
      lines.push(`    ${d.name} {${d.tags.join(',')}}`);
      if (d.sssdWrong) {
        lines.push(`      model  : ${show(d.reference)}`);
        lines.push(`      SSSD   : ${show(d.sssdWrong.answer)} (wrong: ${d.sssdWrong.why})`);
      } else {
        lines.push(`      SSSD   : ${show(d.reference)}`);
      }
      lines.push(`      idmount: ${show(d.idmount)}`);
    }
  }
  return lines.join('\n');
}

let before: string;
beforeAll(() => {
  // No skip: on a machine without SSSD this fails, saying how to install it.
  assertSssdAvailable();
  before = machineFingerprint();
});

describe.each<LdapSchema>(['rfc2307', 'rfc2307bis'])('SSSD oracle, %s directory', (schema) => {
  const bis = schema === 'rfc2307bis';
  let slapd: Slapd;
  let app: App;
  let sssd: Map<string, SssdAnswer> | undefined;

  beforeAll(async () => {
    slapd = await startSlapd({ schema, extraLdif: fixture.ldif(schema) });
    // The same directory view as the SSSD domain below: bases and scopes, object classes,
    // member attribute, nesting depth, case-sensitive names.
    app = await testApp(
      demoConfig({
        sources: [
          {
            name: 'campus',
            type: 'ldap',
            schema,
            urls: [slapd.url],
            bindDN: slapd.bindDN,
            bindPasswordFile: slapd.bindPasswordFile,
            caseSensitiveNames: true,
            backoff: { initial: '100ms', max: '400ms' },
            users: {
              bases: USER_BASES.map((b) => ({ ...b, filter: '(objectClass=posixAccount)' })),
            },
            groups: {
              bases: GROUP_BASES.map((b) => ({
                ...b,
                filter: bis ? '(objectClass=groupOfNames)' : '(objectClass=posixGroup)',
              })),
              attributes: { member: [bis ? 'member' : 'memberUid'] },
              maxNestingDepth: NESTING_DEPTH,
            },
          },
        ],
      }),
    );
  });
  afterAll(async () => {
    await app?.close();
    await slapd?.close();
  });

  it('answers every name of the fixture as SSSD does', { timeout: 420_000 }, async () => {
    const domain: SssdDomainOptions = {
      slapd,
      schema,
      userBases: USER_BASES,
      groupBases: GROUP_BASES,
      nestingLevel: NESTING_DEPTH,
      caseSensitive: true,
    };
    const names = fixture.asked.map((a) => a.name);
    const started = Date.now();
    // rfc2307bis: a fresh SSSD cache per name, or nested answers depend on lookup order (on
    // this fixture 140 of 306 names gain groups beyond the nesting level when one SSSD answers
    // them all). rfc2307 has no nesting: one SSSD answers all (identical, measured, to a fresh
    // cache per name, at a tenth of the time).
    sssd = await askSssd(domain, names, {
      freshCache: bis,
      instances: bis ? 4 : 1,
      probe: fixture.probe,
    });
    const sssdSeconds = (Date.now() - started) / 1000;

    const idmount = new Map<string, Answer>();
    for (let i = 0; i < names.length; i += 32) {
      await Promise.all(
        names.slice(i, i + 32).map(async (name) => {
          const res = await app.inject({
            url: `/users/${encodeURIComponent(name)}`,
            headers: bearer(TOKENS.reader),
          });
          idmount.set(name, fromIdmount(res.statusCode, res.json() as Record<string, unknown>));
        }),
      );
    }

    // A guard for the oracle itself: with settings that did not fit the directory SSSD would
    // know nobody, and every refusal of idmount's would "agree".
    const knownBySssd = names.filter((n) => sssd?.get(n)?.passwd !== null).length;
    expect(knownBySssd).toBeGreaterThan(fixture.users.length * 0.9);

    const disagreements: Disagreement[] = [];
    let modelAnswered = 0;
    let deliberate = 0;
    for (const asked of fixture.asked) {
      if (asked.tags.includes('multi-home')) {
        // SSSD answers with one of the two homes; idmount refuses, naming the attribute.
        expect(sssd.get(asked.name)?.passwd, asked.name).not.toBeNull();
        expect(idmount.get(asked.name)?.refusal, asked.name).toBe(
          '422 DIRECTORY_ENTRY_INVALID (homeDirectory)',
        );
        deliberate += 1;
        continue;
      }
      const oracle = fromSssd(sssd.get(asked.name) as SssdAnswer);
      const why = asked.user && sssdKnownWrong(fixture, schema, asked.user);
      const reference = why ? fromModel(schema, asked) : oracle;
      if (why) modelAnswered += 1;
      const answer = idmount.get(asked.name) as Answer;
      const labels = differences(schema, asked, reference, answer);
      if (labels.length === 0) continue;
      disagreements.push({
        name: asked.name,
        tags: asked.tags,
        labels,
        reference,
        ...(why ? { sssdWrong: { answer: oracle, why } } : {}),
        idmount: answer,
      });
    }

    console.log(
      `sssd oracle (${schema}): ${names.length} names, ${names.length - disagreements.length - deliberate} agree ` +
        `(${modelAnswered} checked against the model where SSSD is wrong, ${deliberate} deliberate differences; SSSD took ${sssdSeconds.toFixed(1)} s, ` +
        `${bis ? 'a fresh cache per name, 4 instances' : 'one instance'})` +
        (disagreements.length > 0 ? `\n${report(schema, disagreements)}` : ''),
    );
    expect(
      disagreements.map((d) => ({
        name: d.name,
        differs: d.labels,
        [d.sssdWrong ? 'model' : 'sssd']: show(d.reference),
        idmount: show(d.idmount),
      })),
    ).toEqual([]);
  });

  it('has a model that agrees with SSSD wherever SSSD is not known to be wrong', () => {
    // The model stands in for SSSD where SSSD is wrong; this is what makes it trustworthy there.
    expect(sssd, 'the first test did not get as far as asking SSSD').toBeDefined();
    const differ: string[] = [];
    let compared = 0;
    for (const asked of fixture.asked) {
      if (asked.user && sssdKnownWrong(fixture, schema, asked.user)) continue;
      compared += 1;
      const oracle = fromSssd(sssd?.get(asked.name) as SssdAnswer);
      const labels = differences(schema, asked, oracle, fromModel(schema, asked));
      if (labels.length > 0)
        differ.push(`${asked.name}: SSSD ${show(oracle)}; model ${show(fromModel(schema, asked))}`);
    }
    console.log(
      `sssd oracle (${schema}): the model agrees with SSSD on ${compared - differ.length} of ${compared} names`,
    );
    expect(differ).toEqual([]);
  });
});

describe('the machine running the oracle', () => {
  it('keeps its own /etc/nsswitch.conf, /etc/sssd, /var/lib/sss and /var/log/sssd untouched', () => {
    expect(machineFingerprint()).toBe(before);
  });
});
