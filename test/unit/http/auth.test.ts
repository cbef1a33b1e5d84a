// Static-token authentication and the per-caller rate limit, one sentence per case.
import { describe, expect, it } from 'vitest';
import { IdmountError } from '../../../src/errors.js';
import { createAuthenticator, type Principal } from '../../../src/http/auth.js';
import { sha256Hex } from '../../../src/http/config.js';
import { createRateLimiter } from '../../../src/http/rate-limit.js';

const HUB = 'hub-token-0123456789abcdef';
const OPS = 'ops-token-0123456789abcdef';
const tokens = [
  { name: 'hub', sha256: sha256Hex(HUB), scopes: ['spawn-plan:read' as const] },
  { name: 'ops', sha256: sha256Hex(OPS), scopes: ['users:read' as const, 'cache:write' as const] },
];
const auth = { disabled: false, tokens, rateLimit: { max: 600, window: 60_000 } };

const codeOf = async (fn: () => unknown) => {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    return err instanceof IdmountError ? err.code : String(err);
  }
};

describe('static bearer tokens', () => {
  it('accepts a token by its digest, and again (now from memory) on the next request', async () => {
    const authenticate = createAuthenticator(auth);
    const first = authenticate(`Bearer ${HUB}`) as Principal;
    const second = authenticate(`Bearer ${HUB}`) as Principal;
    expect(first).toMatchObject({ name: 'hub', kind: 'token' });
    expect(second).toBe(first);
    expect([...second.scopes]).toEqual(['spawn-plan:read']);
  });

  it('tells two proven tokens apart', async () => {
    const authenticate = createAuthenticator(auth);
    authenticate(`Bearer ${HUB}`);
    authenticate(`Bearer ${OPS}`);
    expect((authenticate(`Bearer ${OPS}`) as Principal).name).toBe('ops');
    expect((authenticate(`Bearer ${HUB}`) as Principal).name).toBe('hub');
  });

  it('refuses a token of the same length differing in one character, before and after the real one was seen', async () => {
    const authenticate = createAuthenticator(auth);
    const forged = `${HUB.slice(0, -1)}0`;
    expect(forged).toHaveLength(HUB.length);
    expect(await codeOf(() => authenticate(`Bearer ${forged}`))).toBe('UNAUTHENTICATED');
    authenticate(`Bearer ${HUB}`);
    expect(await codeOf(() => authenticate(`Bearer ${forged}`))).toBe('UNAUTHENTICATED');
    expect(await codeOf(() => authenticate(`Bearer ${HUB}x`))).toBe('UNAUTHENTICATED');
  });

  it('passes a token that is not a static one to the other verifiers (OIDC), and only then', async () => {
    const asked: string[] = [];
    const authenticate = createAuthenticator(auth, [
      async (token) => {
        asked.push(token);
        return token === 'a.jwt.token'
          ? { name: 'admin@example.org', kind: 'oidc', scopes: new Set() }
          : null;
      },
    ]);
    expect(authenticate(`Bearer ${HUB}`)).toMatchObject({ name: 'hub' });
    await expect(authenticate('Bearer a.jwt.token')).resolves.toMatchObject({ kind: 'oidc' });
    expect(await codeOf(() => authenticate('Bearer unknown'))).toBe('UNAUTHENTICATED');
    expect(asked).toEqual(['a.jwt.token', 'unknown']);
  });

  it('requires a bearer header', async () => {
    const authenticate = createAuthenticator(auth);
    for (const header of [undefined, '', 'Basic YWxpY2U6cHc=', 'Bearer ', `Bearer ${HUB} extra`]) {
      expect(await codeOf(() => authenticate(header))).toBe('UNAUTHENTICATED');
    }
  });
});

describe('per-caller rate limit', () => {
  it('admits max requests per window, then says how many seconds to wait, then admits again', () => {
    let now = 1_000_000;
    const take = createRateLimiter({ max: 3, windowMs: 60_000, now: () => now });
    expect([take('hub'), take('hub'), take('hub')]).toEqual([0, 0, 0]);
    now += 15_000;
    expect(take('hub')).toBe(45);
    now += 44_999;
    expect(take('hub')).toBe(1);
    now += 1;
    expect(take('hub')).toBe(0);
  });

  it('gives each caller its own budget', () => {
    const take = createRateLimiter({ max: 1, windowMs: 60_000 });
    expect(take('token:hub')).toBe(0);
    expect(take('token:hub')).toBeGreaterThan(0);
    expect(take('token:ops')).toBe(0);
  });
});
