// What each caller may see: unauthenticated probes see whether sources are up and nothing from the
// directory; the hub's spawn-plan:read token gets plans but no explain trace; admins see details
// at /status; query strings never reach the log with their values.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { buildApp } from '../../../src/app.js';
import { EXAMPLES_DIR } from '../../../src/config/load.js';
import { createLogger } from '../../../src/server.js';
import { parseConfig } from '../../../src/settings.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';

describe('what each caller sees', () => {
  let app: App;
  beforeAll(async () => {
    app = await testApp(demoConfig());
  });
  afterAll(async () => app?.close());

  it('/readyz (no authentication) shows each source as name, type and up only', async () => {
    const res = await app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
    for (const source of res.json().sources)
      expect(Object.keys(source).sort()).toEqual(['name', 'type', 'up']);
  });

  it('/status shows the details to users:read and to nobody else', async () => {
    expect((await app.inject({ url: '/status' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/status', headers: bearer(TOKENS.hub) })).statusCode).toBe(403);
    const res = await app.inject({ url: '/status', headers: bearer(TOKENS.reader) });
    expect(res.statusCode).toBe(200);
    expect(res.json().sources[0]).toMatchObject({ up: true, since: expect.any(String) });
  });

  it("refuses an explain trace to the hub's spawn-plan:read token and gives it to an admin", async () => {
    const hub = await app.inject({
      url: '/users/alice/spawn-plan?explain=true',
      headers: bearer(TOKENS.hub),
    });
    expect(hub.statusCode).toBe(403);
    expect(hub.json()).toMatchObject({ code: 'FORBIDDEN', requiredScope: 'users:read' });
    expect(hub.body).not.toMatch(/mail|droppedGroups/);
    const plain = await app.inject({ url: '/users/alice/spawn-plan', headers: bearer(TOKENS.hub) });
    expect(plain.statusCode).toBe(200);
    const admin = await app.inject({
      url: '/users/alice/spawn-plan?explain=true',
      headers: bearer(TOKENS.ops),
    });
    expect(admin.json().explain).toMatchObject({ cache: expect.any(String), rules: expect.any(Array) });
  });
});

describe('the request log', () => {
  it('keeps query keys but not their values: a token sent as ?access_token= never reaches it', async () => {
    const lines: string[] = [];
    const logger = createLogger(
      'info',
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const config = parseConfig(demoConfig(), 'test');
    const app = await buildApp(config, { baseDir: EXAMPLES_DIR, loggerInstance: logger });
    const secret = 'querytoken-0123456789abcdef';
    await app.inject({
      url: `/users/alice/spawn-plan?explain=true&access_token=${secret}`,
      headers: bearer(TOKENS.ops),
    });
    await app.close();
    const log = lines.join('');
    expect(log).toContain('access_token=[redacted]');
    expect(log).toContain('explain=true');
    expect(log).not.toContain(secret);
  });
});
