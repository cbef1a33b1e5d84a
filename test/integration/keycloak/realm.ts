// The realm the Keycloak tests run against, as a Keycloak realm representation: POSIX users
// (attributes declared in the user profile), groups with gidNumber, a service-account client with
// realm-management view-users, the idmount admin client with an audience mapper and roles, and the
// broken entries the bad-input cases need.
import { inject } from 'vitest';
import { KeycloakAdmin, type KeycloakEndpoint, type UserProfileConfig } from '../../harness/keycloak.js';

export const PASSWORD = 'test-password-1';
export const READER = { clientId: 'idmount-reader', clientSecret: 'reader-secret-0123456789' };
/** Like READER, but its access tokens live four seconds (to watch idmount renew them). */
export const SHORT_LIVED_READER = {
  clientId: 'idmount-reader-short',
  clientSecret: 'short-reader-secret-0123456789',
};
export const READER_WITHOUT_ROLE = { clientId: 'idmount-noroles', clientSecret: 'noroles-secret-0123456789' };
/** The client admins log in to; access tokens carry `aud: idmount` through an audience mapper. */
export const ADMIN_CLIENT = { clientId: 'idmount', clientSecret: 'idmount-secret-0123456789' };
/** Another application of the realm: its tokens are not meant for idmount. */
export const OTHER_CLIENT = { clientId: 'wiki', clientSecret: 'wiki-secret-0123456789' };
/** Like ADMIN_CLIENT, but its access tokens live one second. */
export const SHORT_LIVED_CLIENT = { clientId: 'idmount-short', clientSecret: 'short-secret-0123456789' };

export const POSIX_ATTRIBUTES = ['uidNumber', 'gidNumber', 'homeDirectory'];

interface UserSpec {
  username: string;
  attributes?: Record<string, string[]>;
  groups?: string[];
  realmRoles?: string[];
  clientRoles?: Record<string, string[]>;
  enabled?: boolean;
}

const user = (spec: UserSpec) => ({
  username: spec.username,
  enabled: spec.enabled ?? true,
  email: `${spec.username.replace(/[^a-z0-9]/g, '')}@example.org`,
  emailVerified: true,
  firstName: spec.username,
  lastName: 'Tester',
  attributes: spec.attributes ?? {},
  groups: spec.groups ?? [],
  realmRoles: spec.realmRoles ?? [],
  clientRoles: spec.clientRoles ?? {},
  credentials: [{ type: 'password', value: PASSWORD, temporary: false }],
});

const posix = (uid: string, gid: string, home?: string) => ({
  uidNumber: [uid],
  gidNumber: [gid],
  ...(home === undefined ? {} : { homeDirectory: [home] }),
});

const confidential = (
  client: { clientId: string; clientSecret: string },
  extra: Record<string, unknown> = {},
) => ({
  clientId: client.clientId,
  secret: client.clientSecret,
  enabled: true,
  publicClient: false,
  standardFlowEnabled: false,
  directAccessGrantsEnabled: true,
  serviceAccountsEnabled: false,
  ...extra,
});

export function facilityRealm(realm: string) {
  return {
    realm,
    enabled: true,
    accessTokenLifespan: 300,
    roles: {
      realm: [{ name: 'idmount-admin', description: 'May call the idmount admin API.' }],
      client: { idmount: [{ name: 'admin', description: 'May call the idmount admin API.' }] },
    },
    groups: [
      {
        name: 'proposals',
        attributes: {},
        subGroups: [
          { name: 'mx1234', attributes: { gidNumber: ['20001'] } },
          { name: 'mx5678', attributes: { gidNumber: ['20002'] } },
          { name: 'ih9999', attributes: { gidNumber: ['20003'] } },
        ],
      },
      { name: 'staff', attributes: { gidNumber: ['30000'] } },
      { name: 'users', attributes: { gidNumber: ['100'] } },
      { name: 'newsletter', attributes: {} },
      { name: 'broken-gid', attributes: { gidNumber: ['12x'] } },
    ],
    clients: [
      confidential(READER, { serviceAccountsEnabled: true, directAccessGrantsEnabled: false }),
      confidential(READER_WITHOUT_ROLE, { serviceAccountsEnabled: true, directAccessGrantsEnabled: false }),
      confidential(SHORT_LIVED_READER, {
        serviceAccountsEnabled: true,
        directAccessGrantsEnabled: false,
        attributes: { 'access.token.lifespan': '4' },
      }),
      confidential(ADMIN_CLIENT, {
        protocolMappers: [
          {
            name: 'idmount-audience',
            protocol: 'openid-connect',
            protocolMapper: 'oidc-audience-mapper',
            config: {
              'included.client.audience': 'idmount',
              'access.token.claim': 'true',
              'id.token.claim': 'false',
            },
          },
        ],
      }),
      confidential(OTHER_CLIENT),
      confidential(SHORT_LIVED_CLIENT, {
        attributes: { 'access.token.lifespan': '1' },
        protocolMappers: [
          {
            name: 'idmount-audience',
            protocol: 'openid-connect',
            protocolMapper: 'oidc-audience-mapper',
            config: { 'included.client.audience': 'idmount', 'access.token.claim': 'true' },
          },
        ],
      }),
    ],
    users: [
      {
        username: `service-account-${READER.clientId}`,
        enabled: true,
        serviceAccountClientId: READER.clientId,
        clientRoles: { 'realm-management': ['view-users'] },
      },
      {
        username: `service-account-${SHORT_LIVED_READER.clientId}`,
        enabled: true,
        serviceAccountClientId: SHORT_LIVED_READER.clientId,
        clientRoles: { 'realm-management': ['view-users'] },
      },
      {
        username: `service-account-${READER_WITHOUT_ROLE.clientId}`,
        enabled: true,
        serviceAccountClientId: READER_WITHOUT_ROLE.clientId,
      },
      user({
        username: 'alice',
        attributes: posix('10001', '10001', '/home/alice'),
        groups: ['/proposals/mx1234', '/proposals/mx5678', '/staff', '/users', '/newsletter'],
      }),
      user({
        username: 'bob',
        attributes: posix('10002', '10002', '/home/bob'),
        groups: ['/proposals/ih9999', '/broken-gid'],
      }),
      user({ username: 'nohome', attributes: posix('10003', '10003') }),
      user({ username: 'nouid', attributes: { gidNumber: ['10004'], homeDirectory: ['/home/nouid'] } }),
      user({ username: 'baduid', attributes: posix('10O5', '10005', '/home/baduid') }),
      user({ username: 'negative', attributes: posix('-5', '10006', '/home/negative') }),
      user({
        username: 'twouids',
        attributes: { ...posix('10007', '10007', '/home/twouids'), uidNumber: ['10007', '10008'] },
      }),
      user({ username: 'relhome', attributes: posix('10009', '10009', 'home/relhome') }),
      user({ username: 'dotdothome', attributes: posix('10010', '10010', '/home/../etc') }),
      user({ username: 'a+b@lab', attributes: posix('10011', '10011', '/home/ab') }),
      user({ username: 'alice2', attributes: posix('10012', '10012', '/home/alice2') }),
      user({ username: 'disabled', attributes: posix('10013', '10013', '/home/disabled'), enabled: false }),
      user({
        username: 'opsadmin',
        attributes: posix('10020', '10020', '/home/opsadmin'),
        realmRoles: ['idmount-admin'],
      }),
      user({
        username: 'clientadmin',
        attributes: posix('10021', '10021', '/home/clientadmin'),
        clientRoles: { idmount: ['admin'] },
      }),
      user({ username: 'plainuser', attributes: posix('10022', '10022', '/home/plainuser') }),
    ],
  };
}

/** Declares the POSIX attributes in the realm's user profile: visible to admins (and view-users), editable by admins. */
export function declarePosixAttributes(profile: UserProfileConfig): UserProfileConfig {
  const declared = new Set(profile.attributes.map((a) => a.name));
  return {
    ...profile,
    attributes: [
      ...profile.attributes,
      ...POSIX_ATTRIBUTES.filter((name) => !declared.has(name)).map((name) => ({
        name,
        displayName: name,
        permissions: { view: ['admin'], edit: ['admin'] },
        multivalued: false,
      })),
    ],
  };
}

/** The endpoint the global setup started (vitest `provide`). */
export function keycloakEndpoint(): KeycloakEndpoint {
  return inject('keycloak');
}

let realmCounter = 0;

/** Creates a fresh facility realm; `profile` chooses how the POSIX attributes become visible. */
export async function createFacilityRealm(
  profile: 'declared' | 'unmanaged-enabled' | 'undeclared',
  prefix = 'facility',
  options: { localUsers?: boolean } = {},
): Promise<{ admin: KeycloakAdmin; realm: string; issuer: string }> {
  const endpoint = keycloakEndpoint();
  const admin = new KeycloakAdmin(endpoint);
  realmCounter += 1;
  const realm = `${prefix}-${process.pid}-${realmCounter}`;
  // Attributes must be declared (or unmanaged attributes enabled) before users get them: Keycloak
  // 24+ drops undeclared attributes on import and hides them from the Admin API.
  const { users, ...rest } = facilityRealm(realm);
  await admin.createRealm({ ...rest, users: users.filter((u) => 'serviceAccountClientId' in u) });
  if (profile === 'declared') await admin.updateUserProfile(realm, declarePosixAttributes);
  if (profile === 'unmanaged-enabled') {
    await admin.updateUserProfile(realm, (p) => ({ ...p, unmanagedAttributePolicy: 'ENABLED' }));
  }
  if (options.localUsers === false) return { admin, realm, issuer: `${endpoint.url}/realms/${realm}` };
  await admin.request('POST', `/${realm}/partialImport`, {
    ifResourceExists: 'OVERWRITE',
    users: users.filter((u) => !('serviceAccountClientId' in u)),
  });
  return { admin, realm, issuer: `${endpoint.url}/realms/${realm}` };
}

declare module 'vitest' {
  export interface ProvidedContext {
    keycloak: KeycloakEndpoint;
  }
}
