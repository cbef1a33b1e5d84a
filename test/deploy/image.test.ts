// The container image without a Docker engine: the Dockerfile's stages are replayed in a temporary
// directory (same commands, same files, .dockerignore honoured), then the runtime stage is made
// read-only and started as the Dockerfile's USER. It must serve on its embedded demo default and
// on the config the chart renders, and hold no devDependency, test or TypeScript source.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { buildContextFiles, listTree, type ReplayedStage, replayDockerfile } from './dockerfile.js';
import { CHART_DIR, find, renderChart } from './tools.js';

const ROOT = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

let workDir: string;
let runtime: ReplayedStage;
let stages: ReplayedStage[];
const servers: ChildProcess[] = [];

beforeAll(() => {
  // node:24-slim brings Node 24 and its npm; here the project's own Node 24 (npm puts it first on
  // PATH for `npm test`) stands in for the base image's.
  if (!process.versions.node.startsWith('24.')) {
    throw new Error(
      `run the tests through npm (npm test) so Node 24 runs them, not Node ${process.versions.node}`,
    );
  }
  workDir = mkdtempSync(join(tmpdir(), 'idmount-image-'));
  chmodSync(workDir, 0o755);
  stages = replayDockerfile(join(ROOT, 'Dockerfile'), {
    contextDir: ROOT,
    outDir: workDir,
    runEnv: {
      ...process.env,
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      // Like a BuildKit cache mount: reuse downloaded tarballs; the lockfile still decides.
      npm_config_prefer_offline: 'true',
      npm_config_update_notifier: 'false',
      npm_config_loglevel: 'error',
    },
  });
  runtime = stages.at(-1) as ReplayedStage;
}, 600_000);

afterAll(() => {
  for (const server of servers) server.kill('SIGKILL');
  if (workDir) {
    execFileSync('chmod', ['-R', 'u+w', workDir]);
    rmSync(workDir, { recursive: true, force: true });
  }
});

describe('the build context (.dockerignore)', () => {
  const context = buildContextFiles(ROOT);
  const cases = [
    { path: 'package.json', sent: true, why: 'npm ci needs it' },
    { path: 'package-lock.json', sent: true, why: 'npm ci installs exactly the lockfile' },
    { path: 'src/cli/main.ts', sent: true, why: 'the sources are compiled in the image' },
    { path: 'examples/demo-config.yaml', sent: true, why: 'the embedded default reads it at run time' },
    { path: 'test/deploy/image.test.ts', sent: false, why: 'tests stay out' },
    { path: 'node_modules/yaml/package.json', sent: false, why: 'the host node_modules never leaks in' },
    { path: 'helm-chart/idmount/Chart.yaml', sent: false, why: 'the chart is not part of the image' },
    { path: 'bench/run.ts', sent: false, why: 'benchmarks stay out' },
    { path: 'Dockerfile', sent: false, why: 'nothing copies it' },
  ];
  it.each(cases)('$path is sent: $sent ($why)', ({ path, sent }) => {
    expect(context.includes(path)).toBe(sent);
  });
});

describe('the runtime stage', () => {
  it('holds only what the service needs at run time', () => {
    expect(listTree(runtime.dir).filter((p) => !p.includes('/') || /^[^/]+\/$/.test(p))).toEqual([
      'dist/',
      'examples/',
      'node_modules/',
      'package.json',
      'src/',
    ]);
    const sources = listTree(join(runtime.dir, 'src'));
    expect(sources.filter((p) => p.endsWith('.ts'))).toEqual([]);
    expect(existsSync(join(runtime.dir, 'dist/cli/main.js'))).toBe(true);
  });

  it('has every production dependency and no devDependency (npm prune --omit=dev)', () => {
    const modules = join(runtime.dir, 'node_modules');
    const missing = Object.keys(pkg.dependencies).filter((name) => !existsSync(join(modules, name)));
    const leftover = Object.keys(pkg.devDependencies).filter((name) => existsSync(join(modules, name)));
    expect(missing).toEqual([]);
    expect(leftover).toEqual([]);
    expect(existsSync(join(modules, '.bin/tsc'))).toBe(false);
  });

  it('no production dependency needs an install script (the image installs with --ignore-scripts)', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { hasInstallScript?: boolean; dev?: boolean }>;
    };
    const withScripts = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript && !p.dev);
    expect(withScripts.map(([name]) => name)).toEqual([]);
  });

  it('runs as a numeric non-root user, the uid the chart sets, with an exec-form node CMD', () => {
    expect(runtime.user).toMatch(/^\d+:\d+$/);
    const [uid, gid] = (runtime.user as string).split(':').map(Number);
    expect(uid).not.toBe(0);
    const values = YAML.parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));
    expect(values.podSecurityContext).toMatchObject({ runAsUser: uid, runAsGroup: gid });
    // The same node flags as `npm start` (the memory trim needs --expose-gc; see src/heap-trim.ts).
    expect(runtime.cmd).toEqual([
      'node',
      '--expose-gc',
      '--max-semi-space-size=32',
      '--heap-growing-percent=50',
      '--no-allocation-site-pretenuring',
      'dist/cli/main.js',
      'serve',
    ]);
    const start = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start as string;
    expect(start).toBe(runtime.cmd?.join(' '));
    expect(stages.map((s) => s.image)).toEqual(['node:24-slim', 'node:24-slim']);
  });
});

/** Starts the runtime stage's CMD (plus args) as its USER over a read-only copy of the stage. */
async function startImage(extraArgs: string[], env: Record<string, string> = {}) {
  makeReadOnly();
  const [uid, gid] = (runtime.user as string).split(':').map(Number);
  const [command, ...args] = runtime.cmd as string[];
  const tmp = mkdtempSync(join(workDir, 'tmp-'));
  chmodSync(tmp, 0o1777);
  const child = spawn(command === 'node' ? process.execPath : (command as string), [...args, ...extraArgs], {
    cwd: runtime.dir,
    env: { ...runtime.env, PATH: '/usr/bin:/bin', HOME: '/nonexistent', TMPDIR: tmp, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(process.getuid?.() === 0 ? { uid, gid } : {}),
  });
  servers.push(child);
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const address = await new Promise<string>((resolveAddress, reject) => {
    const timer = setInterval(() => {
      for (const line of output.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; address?: string };
        if (entry.msg === 'idmount listening' && entry.address) {
          clearInterval(timer);
          resolveAddress(entry.address.replace('0.0.0.0', '127.0.0.1'));
        }
      }
    }, 100);
    child.on('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`the image's server exited with ${code} before listening:\n${output}`));
    });
    setTimeout(() => reject(new Error(`the image's server did not listen within 20 s:\n${output}`)), 20_000);
  });
  return { address, child, output: () => output };
}

function makeReadOnly() {
  execFileSync('chmod', ['-R', 'a-w', runtime.dir]);
}

describe('the image serves from a read-only filesystem as its non-root USER', () => {
  it('the stage copy is read-only for that USER (as with readOnlyRootFilesystem)', () => {
    makeReadOnly();
    const [uid, gid] = (runtime.user as string).split(':').map(Number);
    const attempt = () =>
      execFileSync(process.execPath, ['-e', "require('node:fs').writeFileSync('dist/written', 'x')"], {
        cwd: runtime.dir,
        stdio: 'pipe',
        ...(process.getuid?.() === 0 ? { uid, gid } : {}),
      });
    expect(attempt).toThrow(/EACCES/);
  });

  it('on the embedded demo default: /healthz, /readyz, /metrics and a spawn plan', async () => {
    const { address, child } = await startImage(['--port', '0']);
    expect((await fetch(`${address}/healthz`)).status).toBe(200);
    expect((await fetch(`${address}/readyz`)).status).toBe(200);
    const metrics = await fetch(`${address}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# HELP /m);
    const plan = await fetch(`${address}/users/alice/spawn-plan`);
    expect(plan.status).toBe(200);
    expect(await plan.json()).toMatchObject({ uid: 20001, gid: 20001 });
    child.kill('SIGTERM');
  });

  it("on the config and Secret the chart renders (ci/default-values.yaml), with the hub's token", async () => {
    // The chart's files land where the pod would mount them, moved below the temporary directory.
    const mounts = mkdtempSync(join(workDir, 'mounts-'));
    chmodSync(mounts, 0o755);
    const secretsDir = join(mounts, 'secrets');
    const objects = await renderChart([join(CHART_DIR, 'ci/default-values.yaml')], {
      'config.auth.tokens': [
        { name: 'hub', sha256File: join(secretsDir, 'hub-token.sha256'), scopes: ['spawn-plan:read'] },
      ],
    });
    const configDir = join(mounts, 'config');
    for (const [dir, data, decode] of [
      [configDir, find(objects, 'ConfigMap').data, (v: string) => v],
      [secretsDir, find(objects, 'Secret').data, (v: string) => Buffer.from(v, 'base64').toString()],
    ] as const) {
      mkdirSync(dir, { mode: 0o755 });
      for (const [name, value] of Object.entries(data as Record<string, string>)) {
        writeFileSync(join(dir, name), decode(value), { mode: 0o444 });
      }
    }
    // The pod listens on 0.0.0.0:8080; tests stay on loopback and a free port.
    const config = YAML.parse(readFileSync(join(configDir, 'config.yaml'), 'utf8'));
    expect(config.server).toEqual({ host: '0.0.0.0', port: 8080 });
    config.server.host = '127.0.0.1';
    writeFileSync(join(configDir, 'config.yaml'), YAML.stringify(config), { mode: 0o444 });

    const { address, child } = await startImage(['--port', '0'], {
      IDMOUNT_CONFIG: join(configDir, 'config.yaml'),
    });
    expect((await fetch(`${address}/users/alice/spawn-plan`)).status).toBe(401);
    const plan = await fetch(`${address}/users/alice/spawn-plan`, {
      headers: { authorization: 'Bearer ci-only-token' },
    });
    expect(plan.status).toBe(200);
    expect(await plan.json()).toMatchObject({ uid: 20001, gid: 20001 });
    child.kill('SIGTERM');
  });

  it('renders the z2jh fragment from inside the image (the NOTES.txt step)', () => {
    makeReadOnly();
    const [uid, gid] = (runtime.user as string).split(':').map(Number);
    const fragment = execFileSync(
      process.execPath,
      [
        'dist/cli/main.js',
        'render-extra-config',
        '--url',
        'http://idmount.jhub.svc:8080',
        '--release',
        'idmount',
      ],
      {
        cwd: runtime.dir,
        env: { ...runtime.env, PATH: '/usr/bin:/bin' },
        ...(process.getuid?.() === 0 ? { uid, gid } : {}),
      },
    ).toString();
    const values = YAML.parse(fragment);
    expect(values.hub.extraConfig).toHaveProperty('idmount');
  });
});
