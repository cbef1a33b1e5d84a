// The shared tier over a Redis that wants a password (requirepass) and speaks TLS (--tls-port, a
// certificate from a test CA made by openssl), through the real app: two replicas share entries
// over rediss:// with the password from a file; a wrong password, a missing one, a CA that signed
// nothing, or the default CAs leave the tier down, named in GET /status and
// /metrics, while every spawn is still answered (from the file source).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { type RedisServer, startRedis } from '../../harness/redis.js';
import { bearer, demoConfig, TOKENS, testApp, writeDirectory } from '../../helpers/app.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis({ password: 'redis-secret-for-tests', tls: true });
});
afterAll(async () => {
  await redis?.close();
});

const apps: App[] = [];
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
});

async function replica(shared: Record<string, unknown>) {
  const app = await testApp(
    demoConfig({ cache: { shared: { keyPrefix: 'tls-test:', ...shared } } } as never),
  );
  apps.push(app);
  return app;
}

const status = async (app: App) =>
  (await app.inject({ url: '/status', headers: bearer(TOKENS.ops) })).json().cache.shared as {
    state: string;
    lastError?: string;
  };

async function settled(app: App) {
  // Give the background connection time to succeed or fail (connect timeout 2 s).
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const s = await status(app);
    if (s.state === 'up' || s.lastError !== undefined) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  return status(app);
}

const spawnPlan = (app: App, name: string) =>
  app.inject({ url: `/users/${name}/spawn-plan`, headers: bearer(TOKENS.hub) });

describe('shared tier with AUTH and TLS', () => {
  it('two replicas share entries over rediss:// with the password from a file and the test CA', async () => {
    const settings = {
      url: redis.tlsUrl,
      passwordFile: redis.passwordFile,
      tls: { caFile: redis.tls?.caFile },
    };
    const [a, b] = [await replica(settings), await replica(settings)];
    expect(await settled(a)).toMatchObject({ state: 'up' });
    expect(await settled(b)).toMatchObject({ state: 'up' });
    expect((await spawnPlan(a, 'alice')).headers['x-idmount-cache']).toBe('miss');
    const deadline = Date.now() + 2_000;
    while ((await redis.client().keys('tls-test:id:*:alice')).length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const fromB = await spawnPlan(b, 'alice');
    expect(fromB.statusCode).toBe(200);
    expect(fromB.headers['x-idmount-cache']).toBe('shared');
    expect((await b.inject({ url: '/metrics' })).body).toContain('idmount_shared_tier_up 1');
  });

  const refusals = [
    {
      sentence: 'a wrong password',
      shared: () => ({ url: redis.url, passwordFile: writeDirectory('not-the-password', 'password') }),
      error: /WRONGPASS|invalid password/i,
    },
    { sentence: 'no password', shared: () => ({ url: redis.url }), error: /NOAUTH/ },
    {
      sentence: 'a CA that signed nothing here',
      shared: () => ({
        url: redis.tlsUrl,
        passwordFile: redis.passwordFile,
        tls: { caFile: redis.tls?.wrongCaFile },
      }),
      error: /certificate/i,
    },
    {
      sentence: 'the default CAs (the test CA is not among them)',
      shared: () => ({ url: redis.tlsUrl, passwordFile: redis.passwordFile }),
      error: /certificate/i,
    },
  ];
  it.each(refusals)(
    'with $sentence the tier stays down and named, and spawns are still answered',
    async ({ shared, error }) => {
      const app = await replica(shared());
      const state = await settled(app);
      expect(state.state).not.toBe('up');
      expect(state.lastError).toMatch(error);
      const answer = await spawnPlan(app, 'alice');
      expect(answer.statusCode).toBe(200);
      expect(answer.headers['x-idmount-cache']).toBe('miss');
      expect((await app.inject({ url: '/metrics' })).body).toContain('idmount_shared_tier_up 0');
      // Readiness does not depend on Redis.
      expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
      // An eviction says it could not reach the other replicas.
      const evicted = await app.inject({
        method: 'DELETE',
        url: '/users/alice/cache',
        headers: bearer(TOKENS.ops),
      });
      expect(evicted.json()).toEqual({ name: 'alice', evicted: true, shared: false });
    },
  );

  it('GET /status needs a token with users:read', async () => {
    const app = await replica({ url: redis.url, passwordFile: redis.passwordFile });
    expect((await app.inject({ url: '/status' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/status', headers: bearer(TOKENS.hub) })).statusCode).toBe(403);
  });
});
