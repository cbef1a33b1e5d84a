// The idmount command as an admin runs it: check-config, lookup, hash-token, and serve on the
// embedded default answering its banner's curl with the answer the README shows.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeDirectory } from '../helpers/app.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = resolve(ROOT, 'node_modules/.bin/tsx');
const CLI = resolve(ROOT, 'src/cli/main.ts');
const idmount = (args: string[], input?: string) =>
  spawnSync(TSX, [CLI, ...args], {
    cwd: ROOT,
    input,
    encoding: 'utf8',
    env: { ...process.env, IDMOUNT_CONFIG: '' },
  });

/** The spawn plan the README shows under "One answer" (its first JSON block there). */
function readmeAnswer(): unknown {
  const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8');
  const block = /```json\n([\s\S]*?)\n```/.exec(readme.slice(readme.indexOf('## One answer')))?.[1];
  return JSON.parse(block ?? 'null');
}

describe('idmount check-config', () => {
  it('accepts every shipped example', () => {
    for (const example of ['examples/demo-config.yaml']) {
      const run = idmount(['check-config', example]);
      expect(run.stderr).toBe('');
      expect(run.status, example).toBe(0);
      expect(run.stdout).toMatch(/^ok: /);
    }
  });

  it('prints every problem with its key path and exits non-zero', () => {
    const file = writeDirectory(
      [
        'server: { port: 99999, colour: blue }',
        'auth: { tokens: [ { name: hub, scopes: [spawn-plan:write] }, { name: ops, tokenFile: /nonexistent/secret, scopes: [users:read] } ] }',
        'sources:',
        '  - { name: Demo, type: file }',
        'cache: { ttl: 5 minutes }',
        'policy: { minUid: 0 }',
      ].join('\n'),
      'bad.yaml',
    );
    const run = idmount(['check-config', file]);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    for (const problem of [
      /server\.port: .*65535/,
      /server: unknown key 'colour'/,
      /auth\.tokens\[0\]\.scopes\[0\]: /,
      /sources\[0\]\.name: use 1-30 lowercase letters/,
      /sources\[0\]\.path: set either path, or passwd/,
      /auth\.tokens\[1\]\.tokenFile: cannot read secret file \/nonexistent\/secret: ENOENT/,
      /cache\.ttl: expected a duration/,
      /policy\.minUid: /,
    ]) {
      expect(run.stderr).toMatch(problem);
    }
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('names a YAML syntax error and a missing file', () => {
    expect(idmount(['check-config', writeDirectory('server: [', 'broken.yaml')]).stderr).toMatch(/YAML line/);
    const missing = idmount(['check-config', '/nonexistent.yaml']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/cannot read \/nonexistent\.yaml: ENOENT/);
  });

  it('refuses authentication off on a non-loopback address', () => {
    const file = writeDirectory(
      'server: { host: 0.0.0.0 }\nauth: { disabled: true }\nsources: [ { name: d, type: file, path: /dev/null } ]\n',
      'open.yaml',
    );
    const run = idmount(['check-config', file]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(
      /auth\.disabled: authentication can only be disabled when server\.host is a loopback address/,
    );
  });
});

describe('idmount lookup and hash-token', () => {
  it('resolves a demo user in-process with an explanation', () => {
    const run = idmount(['lookup', 'alice', '--explain']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      /^alice: uid 20001, gid 20001, supplemental 100, 30001, 30002 \(source demo\)/,
    );
    expect(run.stdout).toMatch(
      /mount \/home\/jovyan\/home <- nfs nfs-home\.example\.org:\/export\/home\/alice \(read-write\)/,
    );
    expect(run.stdout).toMatch(/rule beamline: skipped/);
  });

  it('prints JSON with --json and exits 3 for an unknown user', () => {
    const ok = idmount(['lookup', 'bob', '--json']);
    expect(JSON.parse(ok.stdout)).toMatchObject({ username: 'bob', uid: 20002 });
    const missing = idmount(['lookup', 'zed', '--json']);
    expect(missing.status).toBe(3);
    expect(JSON.parse(missing.stdout)).toMatchObject({ code: 'USER_NOT_FOUND' });
    const hostile = idmount(['lookup', '../etc']);
    expect(hostile.status).toBe(1);
    expect(hostile.stdout).toMatch(/^INVALID_USERNAME: /);
  });

  it('hashes a token from stdin and generates new ones', () => {
    const run = idmount(['hash-token'], 's3cret\n');
    expect(run.stdout.trim()).toBe(createHash('sha256').update('s3cret').digest('hex'));
    const generated = idmount(['hash-token', '--generate']);
    const [, token, digest] = /token: +(\S+)\nsha256: +([0-9a-f]{64})/.exec(generated.stdout) ?? [];
    expect(
      createHash('sha256')
        .update(token ?? '')
        .digest('hex'),
    ).toBe(digest);
  });

  it('explains its usage on a wrong command', () => {
    const run = idmount(['frobnicate']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/unknown command 'frobnicate'[\s\S]*Usage: idmount/);
  });
});

describe('idmount serve on the embedded default', () => {
  const children: ReturnType<typeof spawn>[] = [];
  afterAll(() => {
    for (const child of children) child.kill('SIGTERM');
  });

  it('prints a banner with a working curl line and serves the demo plan', async () => {
    const child = spawn(TSX, [CLI, 'serve', '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, IDMOUNT_CONFIG: '' },
    });
    children.push(child);
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    const url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner in 20 s:\n${out}`)), 20_000);
      child.stdout.on('data', () => {
        const match = /curl -s (http:\/\/127\.0\.0\.1:\d+)\/users\/alice\/spawn-plan/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolveUrl(match[1] as string);
        }
      });
    });
    const res = await fetch(`${url}/users/alice/spawn-plan`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(readmeAnswer());
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
