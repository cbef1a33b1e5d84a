// BENCH_AGAINST=<git revision>: that revision of idmount runs beside this tree in the cached and
// uncached comparisons, in the same rounds (each round in random order), so what a change costs is
// measured side by side on one machine in one run, not against a figure recorded on another day.
//
// The revision is exported with `git archive` into the bench's temporary folder, compiled with this
// tree's TypeScript over this tree's node_modules (so its dependencies must be among this tree's),
// and started with the node flags its own `npm start` gave.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface Revision {
  /** The short commit id, for the table. */
  label: string;
  /** The commit's date and subject, for the note under the table. */
  described: string;
  /** A server script for bench/run.ts's `server()`: prints READY <url> like bench/servers/idmount.ts. */
  script: string;
  /** The node flags the revision's `npm start` gave. */
  flags: string[];
}

/** The node flags in a package.json's `start` script (between `node` and the entry point). */
export function startFlagsOf(packageJson: string): string[] {
  const pkg = JSON.parse(readFileSync(packageJson, 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  return words.slice(words.indexOf('node') + 1, words.indexOf('dist/cli/main.js'));
}

/** Where a revision's compiled app and config loader are: the layout before and after the restructure. */
const LAYOUTS = [
  { app: 'dist/app.js', load: 'dist/settings.js' },
  { app: 'dist/http/app.js', load: 'dist/config/load.js' },
];

export function prepareRevision(root: string, rev: string, work: string): Revision {
  const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8' }).trim();
  const label = git('rev-parse', '--short', `${rev}^{commit}`);
  const dir = join(work, `against-${label}`);
  mkdirSync(dir, { recursive: true });
  execFileSync('sh', ['-c', `git -C "$1" archive "$2" | tar -x -C "$3"`, 'sh', root, label, dir]);
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const tsc = spawnSync(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (tsc.status !== 0) throw new Error(`BENCH_AGAINST=${rev}: it does not build here:\n${tsc.stdout}`);
  const layout = LAYOUTS.find((l) => existsSync(join(dir, l.app)) && existsSync(join(dir, l.load)));
  if (layout === undefined)
    throw new Error(`BENCH_AGAINST=${rev}: no known dist/ layout (app and config loader)`);
  const url = (path: string) => JSON.stringify(pathToFileURL(path).href);
  const script = join(dir, 'bench-server.mjs');
  // The same server as bench/servers/idmount.ts, over the revision's own build.
  writeFileSync(
    script,
    [
      `import { buildApp } from ${url(join(dir, layout.app))};`,
      `import { loadConfig } from ${url(join(dir, layout.load))};`,
      `import { announce, benchLogger, exitOnSignal } from ${url(join(root, 'bench/servers/common.ts'))};`,
      'const loaded = loadConfig(process.env.BENCH_CONFIG);',
      'const app = await buildApp(loaded.config, { baseDir: loaded.baseDir, loggerInstance: benchLogger() });',
      'exitOnSignal(() => app.close());',
      "announce(await app.listen({ host: '127.0.0.1', port: 0 }));",
      '',
    ].join('\n'),
  );
  const described = git('log', '-1', '--format=%cs: %s', label);
  return { label, described, script, flags: startFlagsOf(join(dir, 'package.json')) };
}
