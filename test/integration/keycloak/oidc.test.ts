// Admin access with Keycloak access tokens, through the real app (app.inject): tokens come from a
// real Keycloak realm (password grant of test users); every forged, foreign or mistyped token is
// refused with 401/403 problem+json, and static tokens keep working beside OIDC.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { ConfigError } from '../../../src/config/load.js';
import type { ConfigInput } from '../../../src/settings.js';
import { parseConfig } from '../../../src/settings.js';
import { passwordGrant } from '../../harness/keycloak.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';
import { ADMIN_CLIENT, createFacilityRealm, OTHER_CLIENT, PASSWORD, SHORT_LIVED_CLIENT } from './realm.js';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const parts = (jwt: string) => jwt.split('.') as [string, string, string];
const payloadOf = (jwt: string) =>
  JSON.parse(Buffer.from(parts(jwt)[1], 'base64url').toString()) as Record<string, unknown>;

describe('admin access with Keycloak access tokens', () => {
  let issuer: string;
  let app: App;
  let clientRoleApp: App;
  const tokenOf = async (username: string, client = ADMIN_CLIENT, at = issuer) =>
    (await passwordGrant(at, client, username, PASSWORD)).access_token;

  beforeAll(async () => {
    ({ issuer } = await createFacilityRealm('declared', 'oidc'));
    const oidc = { issuer, audience: 'idmount', role: 'idmount-admin', clockTolerance: '0s' };
    app = await testApp(demoConfig({ auth: { ...demoConfig().auth, oidc } }));
    clientRoleApp = await testApp(
      demoConfig({ auth: { ...demoConfig().auth, oidc: { ...oidc, role: 'idmount:admin' } } }),
    );
  });
  afterAll(async () => {
    await app?.close();
    await clientRoleApp?.close();
  });

  const getAlice = (target: App, token: string) =>
    target.inject({ url: '/users/alice', headers: bearer(token) });

  it('lets in a user holding the realm role, with the admin scopes', async () => {
    const res = await getAlice(app, await tokenOf('opsadmin'));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'alice', uid: 20001 });
    const plan = await app.inject({
      url: '/users/alice/spawn-plan',
      headers: bearer(await tokenOf('opsadmin')),
    });
    expect(plan.statusCode).toBe(200);
  });

  it('lets in a user holding the client role when the role is configured as client:role', async () => {
    expect((await getAlice(clientRoleApp, await tokenOf('clientadmin'))).statusCode).toBe(200);
    expect((await getAlice(clientRoleApp, await tokenOf('opsadmin'))).statusCode).toBe(403);
  });

  it('keeps the static tokens working beside OIDC', async () => {
    expect((await getAlice(app, TOKENS.ops)).statusCode).toBe(200);
    expect((await getAlice(app, 'not-a-known-token')).statusCode).toBe(401);
  });

  const cases: Array<[string, () => Promise<string>, number, string, RegExp]> = [
    [
      'a token without the role',
      () => tokenOf('plainuser'),
      403,
      'FORBIDDEN',
      /does not carry the role 'idmount-admin'/,
    ],
    [
      'a token of another client (no idmount audience)',
      () => tokenOf('opsadmin', OTHER_CLIENT),
      401,
      'UNAUTHENTICATED',
      /audience/,
    ],
    [
      'an ID token (typ ID) even though its audience is idmount',
      async () => (await passwordGrant(issuer, ADMIN_CLIENT, 'opsadmin', PASSWORD)).id_token as string,
      401,
      'UNAUTHENTICATED',
      /not an access token \(typ 'ID'\)/,
    ],
    [
      'a refresh token (HMAC-signed, an algorithm never accepted)',
      async () => (await passwordGrant(issuer, ADMIN_CLIENT, 'opsadmin', PASSWORD)).refresh_token as string,
      401,
      'UNAUTHENTICATED',
      /signing algorithm 'HS\d+' is not accepted/,
    ],
    [
      'a token issued under another issuer name (localhost instead of 127.0.0.1)',
      () => tokenOf('opsadmin', ADMIN_CLIENT, issuer.replace('127.0.0.1', 'localhost')),
      401,
      'UNAUTHENTICATED',
      /issued by another issuer/,
    ],
    [
      'an expired token',
      async () => {
        const token = await tokenOf('opsadmin', SHORT_LIVED_CLIENT);
        const exp = payloadOf(token).exp as number;
        await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 1100));
        return token;
      },
      401,
      'UNAUTHENTICATED',
      /expired/,
    ],
    [
      "an unsigned token (alg 'none') carrying the role",
      async () => {
        const [, payload] = parts(await tokenOf('opsadmin'));
        return `${b64url({ alg: 'none', typ: 'JWT' })}.${payload}.`;
      },
      401,
      'UNAUTHENTICATED',
      /signing algorithm 'none' is not accepted/,
    ],
    [
      'a token whose payload was edited to add the role (signature no longer matches)',
      async () => {
        const [header, payload, signature] = parts(await tokenOf('plainuser'));
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
        claims.realm_access = { roles: ['idmount-admin'] };
        return `${header}.${b64url(claims)}.${signature}`;
      },
      401,
      'UNAUTHENTICATED',
      /signature does not verify/,
    ],
    [
      'a token whose signature was altered',
      async () => {
        const [header, payload, signature] = parts(await tokenOf('opsadmin'));
        const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
        return `${header}.${payload}.${flipped}`;
      },
      401,
      'UNAUTHENTICATED',
      /signature does not verify/,
    ],
  ];

  it.each(cases)('refuses %s with problem+json', async (_case, makeToken, status, code, detail) => {
    const res = await getAlice(app, await makeToken());
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status, code, detail: expect.stringMatching(detail) });
  });

  it('answers 503 (not 401) when the issuer cannot be reached to fetch its keys', async () => {
    const unreachable = await testApp(
      demoConfig({
        auth: {
          ...demoConfig().auth,
          oidc: { issuer: 'http://127.0.0.1:9/realms/gone', audience: 'idmount', role: 'idmount-admin' },
        },
      }),
    );
    const res = await getAlice(unreachable, await tokenOf('opsadmin'));
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    await unreachable.close();
  });
});

describe('auth.oidc and keycloak source configuration errors name the key', () => {
  const oidc = {
    issuer: 'https://sso.example.org/realms/facility',
    audience: 'idmount',
    role: 'idmount-admin',
  };
  it.each([
    [
      'an HMAC algorithm',
      { auth: { oidc: { ...oidc, algorithms: ['HS256'] } } },
      /^auth\.oidc\.algorithms\[0\]/,
    ],
    [
      "the 'none' algorithm",
      { auth: { oidc: { ...oidc, algorithms: ['none'] } } },
      /^auth\.oidc\.algorithms\[0\]/,
    ],
    [
      'an issuer that is not a URL',
      { auth: { oidc: { ...oidc, issuer: 'sso.example.org' } } },
      /^auth\.oidc\.issuer/,
    ],
    ['no audience', { auth: { oidc: { issuer: oidc.issuer, role: oidc.role } } }, /^auth\.oidc\.audience/],
    [
      'a client secret written inline in a keycloak source',
      {
        sources: [
          {
            name: 'sso',
            type: 'keycloak',
            issuer: oidc.issuer,
            clientId: 'idmount-reader',
            clientSecret: 'inline',
          },
        ],
      },
      /^sources\[0\].*unknown key 'clientSecret'/,
    ],
  ])('refuses %s', (_case, overrides, problem) => {
    const document = demoConfig(overrides as Partial<ConfigInput>);
    let error: unknown;
    try {
      parseConfig(document, 'test');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });
});
