// Keycloak together with LDAP (the real slapd harness): per-field merge where LDAP gives the
// numbers and Keycloak the groups (and the reverse), with explain naming the source of each field;
// and Keycloak federating slapd (LDAP user federation with user-attribute mappers for uidNumber,
// gidNumber and homeDirectory) while idmount reads the POSIX identity through Keycloak only.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import type { ConfigInput } from '../../../src/settings.js';
import { type DirectoryFixture, type Slapd, startSlapd } from '../../harness/slapd.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';
import { createFacilityRealm, READER } from './realm.js';

const fixture: DirectoryFixture = {
  users: [
    {
      uid: 'alice',
      uidNumber: 2001,
      gidNumber: 2001,
      homeDirectory: '/home/alice-ldap',
      cn: 'Alice Liddell',
    },
    { uid: 'bob', uidNumber: 2002, gidNumber: 2002 },
    { uid: 'badnum', uidNumber: '20x8', gidNumber: 2008 },
  ],
  groups: [
    { cn: 'staff-ldap', gidNumber: 3000, users: ['alice'] },
    { cn: 'beamline-id11', gidNumber: 3100, users: ['alice'] },
  ],
};

const secretDir = mkdtempSync(join(tmpdir(), 'idmount-kc-'));
const readerSecretFile = join(secretDir, 'reader-secret');
writeFileSync(readerSecretFile, READER.clientSecret);

let slapd: Slapd;
beforeAll(async () => {
  slapd = await startSlapd({ schema: 'rfc2307', fixture });
});
afterAll(async () => {
  await slapd?.close();
});

const ldapSource = () => ({
  name: 'campus',
  type: 'ldap' as const,
  schema: 'rfc2307' as const,
  urls: [slapd.ldapsUrl],
  caFile: slapd.tls.caFile,
  bindDN: slapd.bindDN,
  bindPasswordFile: slapd.bindPasswordFile,
  users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
  groups: { bases: [{ base: `ou=groups,${slapd.suffix}` }] },
});

const keycloakSource = (issuer: string, extra: Record<string, unknown> = {}) => ({
  name: 'sso',
  type: 'keycloak' as const,
  issuer,
  clientId: READER.clientId,
  clientSecretFile: readerSecretFile,
  ...extra,
});

const planOf = async (app: App, name: string) => {
  const res = await app.inject({
    url: `/users/${name}/spawn-plan?explain=true`,
    // An explain trace needs users:read (the hub's token has spawn-plan:read only).
    headers: bearer(TOKENS.ops),
  });
  return { status: res.statusCode, body: res.json() };
};

describe('chaining LDAP and Keycloak with per-field merge', () => {
  let issuer: string;
  const apps: App[] = [];
  beforeAll(async () => {
    ({ issuer } = await createFacilityRealm('declared', 'chain'));
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
  });
  const appWith = async (config: Partial<ConfigInput>) => {
    const app = await testApp(demoConfig(config));
    apps.push(app);
    return app;
  };

  it('takes uid, gid and home from LDAP and the groups from Keycloak (a groups-only Keycloak source)', async () => {
    const app = await appWith({
      sources: [ldapSource(), keycloakSource(issuer, { attributes: { uid: null, gid: null, home: null } })],
      merge: { uid: 'campus', gid: 'campus', home: 'campus', groups: 'sso' },
    });
    const { status, body } = await planOf(app, 'alice');
    expect(status).toBe(200);
    expect(body).toMatchObject({ uid: 2001, gid: 2001 });
    expect(body.supplementalGids).toEqual(expect.arrayContaining([20001, 20002, 30000]));
    expect(body.supplementalGids).not.toContain(3000);
    expect(body.explain.origin).toEqual({
      uid: 'campus',
      gid: 'campus',
      home: 'campus',
      groups: 'sso',
      gecos: 'campus',
    });
  });

  it('takes the numbers from Keycloak and the groups from LDAP (the reverse)', async () => {
    const app = await appWith({
      sources: [ldapSource(), keycloakSource(issuer)],
      merge: { uid: 'sso', gid: 'sso', home: 'sso', groups: 'campus' },
    });
    const { status, body } = await planOf(app, 'alice');
    expect(status).toBe(200);
    expect(body).toMatchObject({ uid: 10001, gid: 10001 });
    expect(body.supplementalGids).toEqual(expect.arrayContaining([3000, 3100]));
    expect(body.supplementalGids).not.toContain(20001);
    expect(body.explain.origin).toMatchObject({ uid: 'sso', gid: 'sso', home: 'sso', groups: 'campus' });
  });

  it('refuses to guess when the source that must give the uid has a broken entry', async () => {
    const app = await appWith({
      sources: [ldapSource(), keycloakSource(issuer)],
      merge: { uid: 'sso', gid: 'sso', groups: 'campus' },
    });
    const { status, body } = await planOf(app, 'nouid');
    expect(status).toBe(422);
    expect(body).toMatchObject({ code: 'DIRECTORY_ENTRY_INVALID', source: 'sso', attribute: 'uidNumber' });
  });
});

describe('Keycloak federating slapd: POSIX attributes mapped by LDAP user-attribute mappers', () => {
  let app: App;

  beforeAll(async () => {
    const { admin, realm, issuer } = await createFacilityRealm('declared', 'federated', {
      localUsers: false,
    });
    const realmId = (await admin.request<{ id: string }>('GET', `/${realm}`)).id;
    await admin.request('POST', `/${realm}/components`, {
      name: 'campus-ldap',
      providerId: 'ldap',
      providerType: 'org.keycloak.storage.UserStorageProvider',
      parentId: realmId,
      config: {
        enabled: ['true'],
        vendor: ['other'],
        connectionUrl: [slapd.url],
        authType: ['simple'],
        bindDn: [slapd.bindDN],
        bindCredential: [readFileSync(slapd.bindPasswordFile, 'utf8').trim()],
        usersDn: [`ou=people,${slapd.suffix}`],
        usernameLDAPAttribute: ['uid'],
        rdnLDAPAttribute: ['uid'],
        uuidLDAPAttribute: ['entryUUID'],
        userObjectClasses: ['inetOrgPerson, posixAccount'],
        searchScope: ['1'],
        editMode: ['READ_ONLY'],
        importEnabled: ['true'],
        syncRegistrations: ['false'],
        pagination: ['false'],
        trustEmail: ['false'],
      },
    });
    const [ldap] = await admin.request<Array<{ id: string }>>(
      'GET',
      `/${realm}/components?${new URLSearchParams({ parent: realmId, name: 'campus-ldap' })}`,
    );
    for (const attribute of ['uidNumber', 'gidNumber', 'homeDirectory']) {
      await admin.request('POST', `/${realm}/components`, {
        name: attribute,
        providerId: 'user-attribute-ldap-mapper',
        providerType: 'org.keycloak.storage.ldap.mappers.LDAPStorageMapper',
        parentId: ldap?.id,
        config: {
          'user.model.attribute': [attribute],
          'ldap.attribute': [attribute],
          'read.only': ['true'],
          'always.read.value.from.ldap': ['true'],
          'is.mandatory.in.ldap': ['false'],
        },
      });
    }
    app = await testApp(demoConfig({ sources: [keycloakSource(issuer, { groups: { enabled: false } })] }));
  });
  afterAll(async () => {
    await app?.close();
  });

  it('reads uid, gid and home of an LDAP user through Keycloak', async () => {
    const { status, body } = await planOf(app, 'alice');
    expect(status).toBe(200);
    expect(body).toMatchObject({ username: 'alice', uid: 2001, gid: 2001, source: 'sso' });
    expect(body.explain.origin).toMatchObject({ uid: 'sso', gid: 'sso', home: 'sso' });
    expect(body.environment).toMatchObject({ NB_UID: '2001' });
  });

  it('answers a malformed uidNumber in LDAP, seen through Keycloak, with 422 naming the attribute', async () => {
    const { status, body } = await planOf(app, 'badnum');
    expect(status).toBe(422);
    expect(body).toMatchObject({ code: 'DIRECTORY_ENTRY_INVALID', attribute: 'uidNumber' });
    expect(body.detail).toMatch(/malformed uidNumber '20x8'/);
  });

  it('answers 404 for a name neither Keycloak nor the federated LDAP knows', async () => {
    const { status, body } = await planOf(app, 'nobody-at-all');
    expect(status).toBe(404);
    expect(body).toMatchObject({ code: 'USER_NOT_FOUND' });
  });
});
