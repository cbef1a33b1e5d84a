// Directory-file reloads through the app: a broken file on reload leaves the last good directory
// in service, for users cached and uncached alike, and /status says why (to admins). (The file source's own
// reload is covered in test/unit/identity/sources/file.test.ts; idmount never reloads its config at
// run time: the chart rolls the pods when it changes, and a broken config does not start.)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { bearer, demoConfig, TOKENS, testApp } from '../../helpers/app.js';
import { scratchDir } from '../../helpers/serve.js';

const PASSWD = 'ann:x:5001:5001:Ann:/home/ann:/bin/bash\nben:x:5002:5002:Ben:/home/ben:/bin/bash\n';
const GROUP = 'ann:x:5001:\nben:x:5002:\nproposal-mx1234:x:30001:ann,ben\n';

describe('a directory file replaced by a broken one', () => {
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
  });

  const start = async () => {
    const dir = scratchDir('idmount-reload-');
    const passwd = join(dir, 'passwd');
    const group = join(dir, 'group');
    writeFileSync(passwd, PASSWD);
    writeFileSync(group, GROUP);
    app = await testApp(
      demoConfig({
        sources: [{ name: 'local', type: 'file', passwd, group, reloadInterval: '100ms' }],
        cache: { ttl: '1m', negativeTtl: '1s', staleIfError: '1h' },
      }),
    );
    return { passwd, group };
  };
  const plan = (name: string) =>
    (app as App).inject({ url: `/users/${name}/spawn-plan`, headers: bearer(TOKENS.hub) });
  const lastError = async () =>
    (
      (await (app as App).inject({ url: '/status', headers: bearer(TOKENS.reader) })).json().sources[0] as {
        lastError?: string;
      }
    ).lastError;

  it.each([
    ['a group line with a missing field', 'group', 'proposal-mx1234:x:30001\n'],
    ['a passwd line cut short mid-write', 'passwd', 'ann:x:5001:5001:Ann:/home/ann:/bin/bash\nben:x:50'],
  ] as const)(
    '%s: the last good directory keeps answering, and /status says why (to admins)',
    async (_, which, broken) => {
      const files = await start();
      expect((await plan('ann')).statusCode).toBe(200); // ann is cached, ben is not
      writeFileSync(files[which], broken);
      await expect
        .poll(lastError, { timeout: 5000, interval: 50 })
        .toMatch(/reload failed, serving last good data/);

      const ben = await plan('ben');
      expect(ben.statusCode).toBe(200);
      expect(ben.json()).toMatchObject({ uid: 5002, supplementalGids: [100, 30001] });
      expect((await plan('ann')).json()).toMatchObject({ uid: 5001, supplementalGids: [100, 30001] });
      const ready = await (app as App).inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(200);

      // Fixed: the new content is served and the error clears.
      writeFileSync(files.passwd, `${PASSWD}cat:x:5003:5003:Cat:/home/cat:/bin/bash\n`);
      writeFileSync(files.group, GROUP);
      await expect
        .poll(async () => (await plan('cat')).statusCode, { timeout: 5000, interval: 100 })
        .toBe(200);
      expect(await lastError()).toBeUndefined();
    },
  );
});
