// The API contract check: starts the real `idmount serve` on a free loopback port with a token,
// then runs schemathesis (from .venv-contract, see scripts/test-deps/60-schemathesis.sh) over the
// served /openapi.json: no 5xx, every status code, content type and body as the document declares.
//
//   npm run contract                         # the long run (200 examples per operation)
//   npm run contract -- --max-examples 25    # what npm test runs (test/contract/schemathesis.test.ts)
//
// Extra arguments go to `st run` as they are. Exits with schemathesis' exit code.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../src/settings.js';
import { ROOT, scratchDir, serveIdmount, writeYaml } from '../test/helpers/serve.js';

const ST = resolve(ROOT, '.venv-contract/bin/st');

/**
 * The directory behind the run. schemathesis draws usernames from `{type: string}`, and short
 * strings come up most: every single letter and a few two-letter names are users, so 200
 * responses (with and without explain) are checked as well as 400/404/422. Some carry data the
 * policy refuses (uid 0, a home outside its root), so 422 bodies are checked too.
 */
function contractDirectory() {
  const letters = 'abcdefghijklmnopqrstuvwxyz_'.split('');
  const users = letters.map((name, i) => ({
    name,
    uid: 40_000 + i,
    gid: 40_000 + i,
    home: `/home/${name}`,
    gecos: `User ${name}`,
  }));
  users.push(
    { name: 'aa', uid: 0, gid: 41_000, home: '/home/aa', gecos: 'uid 0' },
    { name: 'ab', uid: 41_001, gid: 41_001, home: '/srv/elsewhere', gecos: 'home outside its root' },
    { name: 'ac', uid: 41_002, gid: 41_002, home: '/home/ac', gecos: 'odd:gecos' },
  );
  return {
    users,
    groups: [
      { name: 'proposal-mx1234', gid: 30_001, members: letters.slice(0, 13) },
      { name: 'beamline-id11', gid: 31_011, members: letters.slice(10) },
      { name: 'wheel', gid: 10, members: ['a'] },
    ],
  };
}

/** Users of the contract directory: plain ones, one in both data rules, and the policy's refusals. */
const KNOWN_USERS = ['a', 'c', 'k', 'm', 'z', '_', 'aa', 'ab', 'ac'];

export async function runContract(stArgs: string[]): Promise<number> {
  if (!existsSync(ST)) {
    console.error('contract: schemathesis is missing; run `npm run test:deps` first');
    return 2;
  }
  const dir = scratchDir('idmount-contract-');
  const token = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  writeYaml(dir, 'directory.yaml', contractDirectory());
  // Half of the generated usernames come from the directory's own users (a schemathesis
  // dictionary), so 200 plans, explain traces and 422 bodies are checked, not only 400/404.
  writeFileSync(
    join(dir, 'schemathesis.toml'),
    [
      '[dictionaries.users]',
      `values = ${JSON.stringify(KNOWN_USERS)}`,
      '',
      '[parameters]',
      '"path.name" = { dictionary = "users", probability = 0.5 }',
      '',
    ].join('\n'),
  );
  const demo = loadConfig(undefined).config;
  const config = writeYaml(dir, 'config.yaml', {
    server: { host: '127.0.0.1', port: 8080 },
    logging: { level: 'warn' },
    auth: {
      tokens: [
        {
          name: 'contract',
          tokenFile: join(dir, 'token'),
          scopes: ['users:read', 'spawn-plan:read', 'cache:write'],
        },
      ],
      // schemathesis sends thousands of requests with one token; the limit itself is tested elsewhere.
      rateLimit: { max: 1_000_000, window: '1m' },
    },
    sources: [{ name: 'contract', type: 'file', path: 'directory.yaml' }],
    // The embedded demo's home and data rules: plans with mounts, skipped rules and confinement.
    home: demo.home,
    data: demo.data,
  });

  const service = await serveIdmount(config);
  try {
    const args = [
      'run',
      `${service.url}/openapi.json`,
      '--checks',
      [
        'not_a_server_error',
        'status_code_conformance',
        'content_type_conformance',
        'response_schema_conformance',
        'response_headers_conformance',
        // Every /users operation declares bearer security: a request without it must be refused.
        'ignored_auth',
      ].join(','),
      '-H',
      `Authorization: Bearer ${token}`,
      '--generation-database',
      'none',
      '--no-color',
      '--workers',
      '2',
      ...stArgs,
    ];
    if (!stArgs.some((a) => a === '--max-examples' || a === '-n' || a.startsWith('--max-examples='))) {
      args.push('--max-examples', '200');
    }
    const code = await new Promise<number>((done, reject) => {
      const st = spawn(ST, args, { cwd: dir, stdio: 'inherit', env: { ...process.env, NO_COLOR: '1' } });
      st.once('error', reject);
      st.once('exit', (c) => done(c ?? 1));
    });
    const log = service.output();
    if (/"level":50|unhandled error/.test(log)) {
      console.error(`contract: the service logged errors during the run:\n${log.slice(-4000)}`);
      return code === 0 ? 1 : code;
    }
    return code;
  } finally {
    await service.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await runContract(process.argv.slice(2));
}
