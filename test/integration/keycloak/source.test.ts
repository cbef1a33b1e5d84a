// The keycloak source against a real Keycloak: POSIX identities from declared user-profile
// attributes, groups with gids and path filters, precise errors for broken entries, the
// user-profile setting a site needs, token caching and renewal, and what happens when the
// service account lacks rights or Keycloak cannot be reached.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { EXAMPLES_DIR } from '../../../src/config/load.js';
import type { SourceConfig } from '../../../src/identity/sources/config.js';
import {
  type KeycloakSourceConfig,
  KeycloakSourceConfigSchema,
} from '../../../src/identity/sources/keycloak/config.js';
import { createKeycloakSource } from '../../../src/identity/sources/keycloak/source.js';
import { createSource } from '../../../src/identity/sources/registry.js';
import type { IdentitySource } from '../../../src/identity/types.js';
import { parseConfig } from '../../../src/settings.js';
import { failure } from '../../helpers/errors.js';
import { createFacilityRealm, READER, READER_WITHOUT_ROLE, SHORT_LIVED_READER } from './realm.js';
import { type Relay, startRelay } from './relay.js';

const log = pino({ level: 'silent' });
const secretDir = mkdtempSync(join(tmpdir(), 'idmount-kc-'));

function secretFile(value: string): string {
  const file = join(secretDir, `secret-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, `${value}\n`);
  return file;
}

function source(issuer: string, overrides: Record<string, unknown> = {}): IdentitySource {
  const config: KeycloakSourceConfig = KeycloakSourceConfigSchema.parse({
    name: 'sso',
    type: 'keycloak',
    issuer,
    clientId: READER.clientId,
    clientSecretFile: secretFile(READER.clientSecret),
    timeout: '3s',
    ...overrides,
  });
  return createKeycloakSource(config, { log, baseDir: secretDir });
}

// Realm creation takes seconds on a busy Keycloak: this file makes one declared realm and shares it
// (the revocation test only revokes tokens, which every source here renews by itself).
let declared: Promise<Awaited<ReturnType<typeof createFacilityRealm>>> | undefined;
const declaredRealm = () => {
  declared ??= createFacilityRealm('declared');
  return declared;
};

describe('keycloak source on a realm that declares the POSIX attributes in its user profile', () => {
  let issuer: string;
  let sso: IdentitySource;

  beforeAll(async () => {
    ({ issuer } = await declaredRealm());
    sso = source(issuer);
  });
  afterAll(async () => {
    await sso?.close();
  });

  it('reads uid, gid, home and the groups that carry a gidNumber; the others are noted for explain', async () => {
    const alice = await sso.lookup('alice');
    expect(alice).toMatchObject({
      name: 'alice',
      uid: 10001,
      gid: 10001,
      home: '/home/alice',
      gecos: 'alice Tester',
    });
    expect(alice?.groups).toEqual(
      expect.arrayContaining([
        { name: 'mx1234', gid: 20001 },
        { name: 'mx5678', gid: 20002 },
        { name: 'staff', gid: 30000 },
        { name: 'users', gid: 100 },
      ]),
    );
    expect(alice?.groups).toHaveLength(4);
    expect(alice?.notes).toEqual(["group '/newsletter' skipped: it has no single gidNumber attribute"]);
    expect(sso.health()).toMatchObject({ up: true });
  });

  it.each([
    ['a name nobody has', 'nobody-here'],
    ['a prefix of an existing name (the search is exact)', 'ali'],
    ['a name smuggling query parameters (it is URL-encoded)', 'alice&exact=false'],
    ['a service-account user (never a person)', `service-account-${READER.clientId}`],
    ['a disabled account (it must not start notebooks)', 'disabled'],
  ])('answers "unknown" for %s', async (_case, username) => {
    expect(await sso.lookup(username)).toBeNull();
  });

  it('finds a username with URL-special characters (+ and @)', async () => {
    expect(await sso.lookup('a+b@lab')).toMatchObject({ name: 'a+b@lab', uid: 10011 });
  });

  it('leaves home undefined for a user without homeDirectory (the mount rules decide)', async () => {
    const user = await sso.lookup('nohome');
    expect(user).toMatchObject({ uid: 10003, gid: 10003 });
    expect(user?.home).toBeUndefined();
  });

  it('skips a group whose gidNumber is not a number, saying so', async () => {
    const bob = await sso.lookup('bob');
    expect(bob?.groups).toEqual([{ name: 'ih9999', gid: 20003 }]);
    expect(bob?.notes).toEqual(["group '/broken-gid' skipped: its gidNumber '12x' is not a number"]);
  });

  it.each([
    ['uidNumber is missing', 'nouid', 'uidNumber', /has no uidNumber attribute/],
    ['uidNumber is not a number', 'baduid', 'uidNumber', /malformed uidNumber '10O5'/],
    ['uidNumber is negative', 'negative', 'uidNumber', /malformed uidNumber '-5'/],
    ['homeDirectory is relative', 'relhome', 'homeDirectory', /malformed homeDirectory 'home\/relhome'/],
    ['homeDirectory climbs out with ..', 'dotdothome', 'homeDirectory', /malformed homeDirectory/],
  ])('refuses a user whose %s, naming the attribute', async (_case, username, attribute, message) => {
    const err = await failure(sso.lookup(username));
    expect(err).toMatchObject({
      code: 'DIRECTORY_ENTRY_INVALID',
      extras: { source: 'sso', user: username, attribute },
    });
    expect(err.message).toMatch(message);
  });

  it.each([
    [
      'include keeps only proposal groups, exclude drops one of them',
      { include: ['^/proposals/'], exclude: ['/mx5678$'] },
      [{ name: 'mx1234', gid: 20001 }],
    ],
    [
      'nameFrom: path reports the group path without its leading slash',
      { include: ['^/proposals/'], nameFrom: 'path' },
      [
        { name: 'proposals/mx1234', gid: 20001 },
        { name: 'proposals/mx5678', gid: 20002 },
      ],
    ],
    ['gidAttribute names another attribute (none has it: no groups)', { gidAttribute: 'posixGid' }, []],
  ])('group filters: %s', async (_case, groups, expected) => {
    const filtered = source(issuer, { groups });
    const alice = await filtered.lookup('alice');
    expect(alice?.groups).toEqual(expect.arrayContaining(expected));
    expect(alice?.groups).toHaveLength(expected.length);
    await filtered.close();
  });

  it('gives only the groups when configured as a groups-only source (uid and gid null)', async () => {
    const groupsOnly = source(issuer, { attributes: { uid: null, gid: null, home: null } });
    const user = await groupsOnly.lookup('nouid');
    expect(user).toMatchObject({ name: 'nouid', groups: [] });
    expect(user?.uid).toBeUndefined();
    expect(user?.gid).toBeUndefined();
    await groupsOnly.close();
  });
});

describe('the realm setting a site needs: Keycloak 24+ hides undeclared user attributes', () => {
  const issuers = { undeclared: '', unmanaged: '' };
  beforeAll(async () => {
    const [undeclared, unmanaged] = await Promise.all([
      createFacilityRealm('undeclared'),
      createFacilityRealm('unmanaged-enabled'),
    ]);
    issuers.undeclared = undeclared.issuer;
    issuers.unmanaged = unmanaged.issuer;
  });

  it('with the attributes undeclared, the error names the attribute and the fix', async () => {
    const sso = source(issuers.undeclared);
    const err = await failure(sso.lookup('alice'));
    expect(err).toMatchObject({ code: 'DIRECTORY_ENTRY_INVALID', extras: { attribute: 'uidNumber' } });
    expect(err.message).toMatch(/declare it in the realm's user profile/);
    await sso.close();
  });

  it('with unmanagedAttributePolicy ENABLED instead, the attributes are read', async () => {
    const sso = source(issuers.unmanaged);
    expect(await sso.lookup('alice')).toMatchObject({ uid: 10001, gid: 10001, home: '/home/alice' });
    await sso.close();
  });
});

describe('service-account token and Keycloak availability', () => {
  let issuer: string;
  let realmAdmin: Awaited<ReturnType<typeof createFacilityRealm>>['admin'];
  let realm: string;
  let relay: Relay;

  beforeAll(async () => {
    const created = await declaredRealm();
    ({ admin: realmAdmin, realm } = created);
    relay = await startRelay(new URL(created.issuer).origin);
    issuer = `${relay.url}/realms/${realm}`;
  });
  afterAll(async () => {
    await relay?.close();
  });

  const tokenRequests = () =>
    relay.requests.filter((p) => p.endsWith('/protocol/openid-connect/token')).length;

  it('asks for one token for 20 concurrent lookups and reuses it afterwards', async () => {
    const sso = source(issuer);
    const before = tokenRequests();
    const users = await Promise.all(Array.from({ length: 20 }, () => sso.lookup('alice')));
    expect(users.every((u) => u?.uid === 10001)).toBe(true);
    await sso.lookup('bob');
    expect(tokenRequests() - before).toBe(1);
    await sso.close();
  });

  it('renews a token before it expires (a four-second token is renewed after about two)', async () => {
    const sso = source(issuer, {
      clientId: SHORT_LIVED_READER.clientId,
      clientSecretFile: secretFile(SHORT_LIVED_READER.clientSecret),
    });
    await sso.lookup('alice');
    const before = tokenRequests();
    // Still valid for ~1.8 s more, but inside the renewal margin: idmount must not use it.
    await new Promise((r) => setTimeout(r, 2200));
    expect(await sso.lookup('alice')).toMatchObject({ uid: 10001 });
    expect(tokenRequests()).toBeGreaterThan(before);
    await sso.close();
  });

  it('gets a new token and retries once when Keycloak rejects the cached one (401)', async () => {
    const sso = source(issuer);
    await sso.lookup('alice');
    const before = tokenRequests();
    // Revoke every token issued so far (the realm's not-before), as an admin would.
    await new Promise((r) => setTimeout(r, 1100));
    await realmAdmin.request('PUT', `/${realm}`, { notBefore: Math.floor(Date.now() / 1000) });
    expect(await sso.lookup('alice')).toMatchObject({ uid: 10001 });
    expect(tokenRequests() - before).toBe(1);
    expect(sso.health()).toMatchObject({ up: true });
    await sso.close();
  });

  it('reports a service account without view-users as unavailable, telling the operator the missing role', async () => {
    const sso = source(issuer, {
      clientId: READER_WITHOUT_ROLE.clientId,
      clientSecretFile: secretFile(READER_WITHOUT_ROLE.clientSecret),
    });
    // The start-up probe finds out before any lookup.
    await expect.poll(() => sso.health().up, { timeout: 10_000, interval: 50 }).toBe(false);
    expect(sso.health().lastError).toMatch(/view-users/);
    const err = await failure(sso.lookup('alice'));
    expect(err).toMatchObject({ code: 'SOURCE_UNAVAILABLE', extras: { source: 'sso' } });
    await sso.close();
  });

  it('reports a wrong client secret as unavailable, without the secret in the health message', async () => {
    const sso = source(issuer, { clientSecretFile: secretFile('not-the-secret-42') });
    const err = await failure(sso.lookup('alice'));
    expect(err).toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    const health = sso.health();
    expect(health).toMatchObject({
      up: false,
      lastError: expect.stringMatching(/client-credentials grant .* failed/),
    });
    expect(health.lastError).not.toMatch(/not-the-secret-42/);
    await sso.close();
  });

  it('goes down while Keycloak is unreachable and comes back up by itself', async () => {
    const sso = source(issuer, { retryAfter: '7s' });
    expect(await sso.lookup('alice')).toMatchObject({ uid: 10001 });
    await relay.cut();
    const err = await failure(sso.lookup('bob'));
    expect(err).toMatchObject({ code: 'SOURCE_UNAVAILABLE', retryAfter: 7 });
    expect(sso.health()).toMatchObject({
      up: false,
      lastError: expect.stringMatching(/Admin API request failed/),
    });
    await relay.restore();
    expect(await sso.lookup('bob')).toMatchObject({ uid: 10002 });
    expect(sso.health()).toMatchObject({ up: true });
    await sso.close();
  });
});

describe('keycloak source configuration', () => {
  it.each([
    ['no client secret at all', {}, 'clientSecretFile', /set clientSecretFile or clientSecretEnv/],
    [
      'a secret file that does not exist',
      { clientSecretFile: '/nonexistent/secret' },
      'clientSecretFile',
      /cannot read/,
    ],
    [
      'an unset secret variable',
      { clientSecretEnv: 'IDMOUNT_TEST_UNSET_SECRET' },
      'clientSecretEnv',
      /not set/,
    ],
    [
      'an issuer that is not a realm URL',
      { issuer: 'https://sso.example.org/auth', clientSecretEnv: 'HOME' },
      'issuer',
      /realm URL/,
    ],
    [
      'an invalid include regex',
      { clientSecretEnv: 'HOME', groups: { include: ['(['] } },
      'groups',
      /regular expression/,
    ],
  ])('refuses %s, naming the key', (_case, overrides, key, message) => {
    const result = KeycloakSourceConfigSchema.safeParse({
      name: 'sso',
      type: 'keycloak',
      issuer: 'https://sso.example.org/realms/facility',
      clientId: 'idmount-reader',
      ...overrides,
    });
    expect(result.success).toBe(false);
    const issue = result.error?.issues[0];
    expect(issue?.path[0]).toBe(key);
    expect(issue?.message).toMatch(message);
  });
});

describe('examples/keycloak.yaml', () => {
  it('is a complete config whose keycloak source reads the real realm once pointed at it', async () => {
    const text = readFileSync(join(EXAMPLES_DIR, 'keycloak.yaml'), 'utf8');
    expect(text).not.toMatch(/clientSecret:|secret:\s*\S/i);
    const { issuer } = await declaredRealm();
    const document = YAML.parse(text);
    const [sourceDoc] = document.sources;
    // The mounted Secrets: the hub token digest and the client secret.
    document.auth.tokens[0].sha256File = secretFile('0'.repeat(64));
    Object.assign(sourceDoc, { issuer, clientSecretFile: secretFile(READER.clientSecret) });
    const config = parseConfig(document, 'keycloak.yaml');
    expect(config.auth.oidc).toMatchObject({
      audience: 'idmount',
      role: 'idmount-admin',
      algorithms: ['RS256'],
    });
    const sso = createSource(config.sources[0] as SourceConfig, { log, baseDir: EXAMPLES_DIR });
    // The example's include filter keeps proposals, staff and users; newsletter is left out unnoted.
    const alice = await sso.lookup('alice');
    expect(alice?.groups?.map((g) => g.name).sort()).toEqual(['mx1234', 'mx5678', 'staff', 'users']);
    await sso.close();
  });
});
