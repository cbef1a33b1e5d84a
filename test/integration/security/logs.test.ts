// Secrets never reach the log, and every admin lookup leaves exactly one audit line naming the
// caller. The real `idmount serve` runs at log level trace with stdout captured, configured with
// every kind of secret: an LDAP bind password (file), a wrong one for a second directory (a bind
// that fails), a Keycloak client secret (file) for an unreachable realm, static tokens from a file
// and from the environment, and OIDC admin tokens signed by a key whose JWKS this test serves.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, SERVICE_ACCOUNT, type Slapd, startSlapd } from '../../harness/slapd.js';
import { type RunningService, scratchDir, serveIdmount, writeYaml } from '../../helpers/serve.js';

const secret = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;
const SECRETS = {
  hubToken: secret('hub-token'),
  opsToken: secret('ops-token'),
  wrongToken: secret('wrong-token'),
  wrongBindPassword: secret('wrong-bind-password'),
  clientSecret: secret('kc-client-secret'),
};

interface LogLine {
  level: number;
  msg: string;
  audit?: boolean;
  caller?: string;
  user?: string;
  [key: string]: unknown;
}

describe('logs of a real run with every kind of secret configured', () => {
  let slapd: Slapd;
  let jwks: Server;
  let service: RunningService;
  let issuer: string;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  const jwts: Record<string, string> = {};
  const responses: Array<{ what: string; status: number }> = [];

  const adminJwt = (claims: Record<string, unknown>, expiresIn = '5m') =>
    new SignJWT({ typ: 'Bearer', azp: 'idmount', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
      .setIssuer(issuer)
      .setAudience('idmount')
      .setSubject('0b1c')
      .setIssuedAt()
      .setExpirationTime(expiresIn)
      .sign(privateKey);

  beforeAll(async () => {
    slapd = await startSlapd({
      schema: 'rfc2307',
      fixture: { users: [{ uid: 'alice', uidNumber: 2001, gidNumber: 2001, cn: 'Alice' }], groups: [] },
    });
    const keys = await generateKeyPair('RS256', { extractable: true });
    privateKey = keys.privateKey;
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/realms/facility`;
    jwts.admin = await adminJwt({ preferred_username: 'ann', realm_access: { roles: ['idmount-admin'] } });
    jwts.noRole = await adminJwt({ preferred_username: 'norole', realm_access: { roles: ['other'] } });
    jwts.expired = await adminJwt(
      { preferred_username: 'late', realm_access: { roles: ['idmount-admin'] } },
      '-10m',
    );

    const dir = scratchDir('idmount-logs-');
    const file = (name: string, value: string) => {
      writeFileSync(join(dir, name), `${value}\n`, { mode: 0o600 });
      return join(dir, name);
    };
    const deadPort = await freePort(); // nobody listens: the Keycloak realm is unreachable
    const ldap = (name: string, passwordFile: string) => ({
      name,
      type: 'ldap',
      schema: 'rfc2307',
      urls: [slapd.url],
      bindDN: slapd.bindDN,
      bindPasswordFile: passwordFile,
      users: { bases: [{ base: `ou=people,${slapd.suffix}` }] },
      groups: { bases: [{ base: `ou=groups,${slapd.suffix}` }] },
      backoff: { initial: '100ms', max: '200ms' },
    });
    const config = writeYaml(dir, 'config.yaml', {
      server: { host: '127.0.0.1', port: 8080 },
      logging: { level: 'trace' },
      auth: {
        tokens: [
          { name: 'hub', tokenFile: file('hub-token', SECRETS.hubToken), scopes: ['spawn-plan:read'] },
          {
            name: 'ops',
            tokenEnv: 'IDMOUNT_TEST_OPS_TOKEN',
            scopes: ['users:read', 'spawn-plan:read', 'cache:write'],
          },
        ],
        oidc: {
          issuer,
          audience: 'idmount',
          role: 'idmount-admin',
          jwksUri: `${issuer}/protocol/openid-connect/certs`,
        },
      },
      sources: [
        ldap('campus', slapd.bindPasswordFile),
        {
          name: 'sso',
          type: 'keycloak',
          issuer: `http://127.0.0.1:${deadPort}/realms/facility`,
          clientId: 'idmount',
          clientSecretFile: file('kc-secret', SECRETS.clientSecret),
          timeout: '500ms',
        },
        ldap('legacy', file('wrong-bind', SECRETS.wrongBindPassword)),
      ],
      home: {
        from: 'template',
        template: '/export/home/{username}',
        allowedRoots: ['/export/home'],
        volume: { nfs: { server: 'nfs-home.example.org' } },
        mountPath: '/home/jovyan/home',
      },
      data: [],
    });
    service = await serveIdmount(config, { IDMOUNT_TEST_OPS_TOKEN: SECRETS.opsToken });

    const call = async (what: string, path: string, authorization?: string, method = 'GET') => {
      const res = await fetch(`${service.url}${path}`, {
        method,
        headers: authorization === undefined ? {} : { authorization },
      });
      await res.arrayBuffer();
      responses.push({ what, status: res.status });
    };
    await call('hub plan', '/users/alice/spawn-plan', `Bearer ${SECRETS.hubToken}`);
    await call('ops identity', '/users/alice', `Bearer ${SECRETS.opsToken}`);
    await call('ops unknown user (keycloak unreachable)', '/users/nobody', `Bearer ${SECRETS.opsToken}`);
    await call('ops eviction', '/users/alice/cache', `Bearer ${SECRETS.opsToken}`, 'DELETE');
    await call('wrong token', '/users/alice', `Bearer ${SECRETS.wrongToken}`);
    await call('hub token on an admin route', '/users/alice', `Bearer ${SECRETS.hubToken}`);
    await call('admin JWT', '/users/alice?explain=true', `Bearer ${jwts.admin}`);
    await call('admin JWT without the role', '/users/alice', `Bearer ${jwts.noRole}`);
    await call('expired admin JWT', '/users/alice', `Bearer ${jwts.expired}`);
    await call(
      'a token in a Basic header',
      '/users/alice',
      `Basic ${Buffer.from(`x:${SECRETS.opsToken}`).toString('base64')}`,
    );
    // Let the failing legacy bind and the Keycloak token fetch log whatever they log.
    await new Promise((r) => setTimeout(r, 500));
    await service.stop();
    if (process.env.IDMOUNT_DEBUG_LOGS) console.log(service.output());
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await new Promise((r) => jwks?.close(r));
    await slapd?.close();
  });

  const lines = (): LogLine[] =>
    service
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);

  it('got the answers the auth matrix promises (so the run exercised every path)', () => {
    expect(responses).toEqual([
      { what: 'hub plan', status: 200 },
      { what: 'ops identity', status: 200 },
      { what: 'ops unknown user (keycloak unreachable)', status: 503 },
      { what: 'ops eviction', status: 200 },
      { what: 'wrong token', status: 401 },
      { what: 'hub token on an admin route', status: 403 },
      { what: 'admin JWT', status: 200 },
      { what: 'admin JWT without the role', status: 403 },
      { what: 'expired admin JWT', status: 401 },
      { what: 'a token in a Basic header', status: 401 },
    ]);
  });

  it('logged requests and failures (the capture works: the secrecy checks below can fail)', () => {
    const all = lines();
    expect(all.length).toBeGreaterThan(20);
    expect(all.some((l) => l.msg === 'idmount listening')).toBe(true);
    expect(all.some((l) => l.msg === 'request completed')).toBe(true);
    // The unavailable sources and the refused tokens were logged with their errors.
    expect(all.filter((l) => l.level >= 40).length).toBeGreaterThan(0);
  });

  it.each([
    ['the LDAP bind password', SERVICE_ACCOUNT.password],
    ['the wrong LDAP bind password', SECRETS.wrongBindPassword],
    ['the Keycloak client secret', SECRETS.clientSecret],
    ['the hub token', SECRETS.hubToken],
    ['the ops token', SECRETS.opsToken],
    ['a wrong token a caller sent', SECRETS.wrongToken],
    ['the admin JWT', () => jwts.admin as string],
    ['the admin JWT without the role', () => jwts.noRole as string],
    ['the expired admin JWT', () => jwts.expired as string],
  ])('never contains %s', (_, value) => {
    const text = typeof value === 'function' ? value() : value;
    expect(text.length).toBeGreaterThan(16);
    const out = service.output();
    expect(out.includes(text)).toBe(false);
    // Nor its signature alone, for JWTs (the part that makes a stolen token usable).
    const signature = text.split('.')[2];
    if (signature !== undefined) expect(out.includes(signature)).toBe(false);
  });

  it('writes exactly one audit line per admin lookup, naming the caller and the user', () => {
    const audit = lines()
      .filter((l) => l.audit === true)
      .map((l) => ({ caller: l.caller, user: l.user, msg: l.msg }));
    // The hub's own spawn-plan calls are not admin lookups: the request log has them.
    expect(audit).toEqual([
      { caller: 'ops', user: 'alice', msg: 'identity lookup' },
      { caller: 'ops', user: 'nobody', msg: 'identity lookup' },
      { caller: 'ops', user: 'alice', msg: 'cache eviction' },
      { caller: 'oidc:ann', user: 'alice', msg: 'identity lookup' },
    ]);
  });
});
