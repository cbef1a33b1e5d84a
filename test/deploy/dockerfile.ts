// Replays a Dockerfile without a Docker engine: each stage becomes a directory standing for its
// WORKDIR, COPY takes the same files (the build context filtered by .dockerignore, or another
// stage's directory), RUN runs the same shell command there. Only the instructions the project's
// Dockerfile uses are understood; anything else is an error, so the replay never silently differs.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string | undefined;
  image: string;
  instructions: Instruction[];
}

/** Instructions per stage, with line continuations joined and comments dropped. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] as string;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      i++;
      const next = lines[i] as string;
      if (/^\s*#/.test(next)) continue;
      line = `${line.slice(0, -1)} ${next.trim()}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) throw new Error(`Dockerfile line ${start + 1}: cannot parse '${line}'`);
    const keyword = (match[1] as string).toUpperCase();
    const args = (match[2] as string).trim();
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`Dockerfile line ${start + 1}: cannot parse FROM ${args}`);
      stages.push({ image: from[1] as string, name: from[2], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new Error(`Dockerfile line ${start + 1}: ${keyword} before FROM`);
    stage.instructions.push({ keyword, args, line: start + 1 });
  }
  return stages;
}

/** .dockerignore semantics: the last matching pattern wins, `!` re-includes, a match on a parent directory counts. */
export function dockerignoreMatcher(text: string): {
  excluded(path: string): boolean;
  mayInclude(dir: string): boolean;
} {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((raw) => {
      const negated = raw.startsWith('!');
      const pattern = posix.normalize((negated ? raw.slice(1) : raw).replace(/^\/+/, '')).replace(/\/+$/, '');
      const source = pattern
        .split('/')
        .map((part) =>
          part === '**'
            ? '.*'
            : part
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/');
      return { negated, pattern, regex: new RegExp(`^${source.replace(/\.\*\//g, '(?:.*/)?')}$`) };
    });
  const matches = (regex: RegExp, path: string) => {
    const parts = path.split('/');
    return parts.some((_, i) => regex.test(parts.slice(0, i + 1).join('/')));
  };
  return {
    excluded(path) {
      let excluded = false;
      for (const p of patterns) if (matches(p.regex, path)) excluded = !p.negated;
      return excluded;
    },
    /** Whether a negation could re-include something below an excluded directory (then it is walked). */
    mayInclude(dir) {
      return patterns.some((p) => p.negated && (p.pattern.startsWith(`${dir}/`) || p.pattern.includes('*')));
    },
  };
}

/** Files of the build context, relative and POSIX-style, as the Docker client would send them. */
export function buildContextFiles(contextDir: string): string[] {
  const ignoreFile = join(contextDir, '.dockerignore');
  const matcher = dockerignoreMatcher(existsSync(ignoreFile) ? readFileSync(ignoreFile, 'utf8') : '');
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(contextDir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!matcher.excluded(path) || matcher.mayInclude(path)) walk(path);
      } else if (!matcher.excluded(path)) {
        files.push(path);
      }
    }
  };
  walk('');
  return files.sort();
}

export interface ReplayedStage {
  name: string | undefined;
  image: string;
  /** The directory standing for the stage's WORKDIR. */
  dir: string;
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  cmd: string[] | undefined;
  exposed: number[];
}

export interface ReplayOptions {
  contextDir: string;
  /** Each stage gets a directory below this one. */
  outDir: string;
  /** Environment for RUN commands (the base image's PATH with its node and npm). */
  runEnv: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

/** Replays every stage in order and returns them; throws on an instruction it does not know. */
export function replayDockerfile(dockerfile: string, options: ReplayOptions): ReplayedStage[] {
  const context = buildContextFiles(options.contextDir);
  const replayed: ReplayedStage[] = [];
  parseDockerfile(readFileSync(dockerfile, 'utf8')).forEach((stage, index) => {
    const state: ReplayedStage = {
      name: stage.name,
      image: stage.image,
      dir: join(options.outDir, `stage-${index}${stage.name ? `-${stage.name}` : ''}`),
      workdir: '/',
      env: {},
      user: undefined,
      cmd: undefined,
      exposed: [],
    };
    mkdirSync(state.dir, { recursive: true });
    for (const { keyword, args, line } of stage.instructions) {
      const where = `Dockerfile line ${line} (${keyword})`;
      switch (keyword) {
        case 'WORKDIR':
          if (state.workdir !== '/' || !args.startsWith('/'))
            throw new Error(`${where}: one absolute WORKDIR per stage`);
          state.workdir = args;
          break;
        case 'ENV':
          for (const [, key, value] of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) {
            state.env[key as string] = (value as string).replace(/^"|"$/g, '');
          }
          break;
        case 'USER':
          state.user = args;
          break;
        case 'EXPOSE':
          state.exposed.push(...args.split(/\s+/).map((p) => Number.parseInt(p, 10)));
          break;
        case 'CMD':
          state.cmd = JSON.parse(args) as string[];
          break;
        case 'RUN': {
          options.log?.(`RUN ${args}`);
          const command = args.startsWith('[') ? (JSON.parse(args) as string[]) : ['sh', '-c', args];
          try {
            execFileSync(command[0] as string, command.slice(1), {
              cwd: state.dir,
              env: { ...options.runEnv, ...state.env },
              stdio: ['ignore', 'pipe', 'pipe'],
              maxBuffer: 64 * 1024 * 1024,
            });
          } catch (err) {
            const { status, stdout, stderr } = err as { status?: number; stdout?: Buffer; stderr?: Buffer };
            const output = `${stdout ?? ''}${stderr ?? ''}`.trim().split('\n').slice(-40).join('\n');
            throw new Error(`${where}: '${args}' exited with ${status}:\n${output}`);
          }
          break;
        }
        case 'COPY':
          copy(args, state, replayed, context, options.contextDir, where);
          break;
        default:
          throw new Error(
            `${where}: the replay does not know this instruction; teach test/deploy/dockerfile.ts`,
          );
      }
    }
    replayed.push(state);
  });
  return replayed;
}

function copy(
  args: string,
  state: ReplayedStage,
  stages: ReplayedStage[],
  context: string[],
  contextDir: string,
  where: string,
) {
  const words = args.split(/\s+/);
  const from = words[0]?.startsWith('--from=')
    ? (words.shift() as string).slice('--from='.length)
    : undefined;
  if (words.some((w) => w.startsWith('--'))) throw new Error(`${where}: only --from is replayed`);
  const dest = words.pop() as string;
  if (words.length === 0) throw new Error(`${where}: COPY needs a source and a destination`);
  const destDir = dest.endsWith('/') || words.length > 1;
  const target = hostPath(state, dest, where);
  for (const source of words) {
    if (/[*?[]/.test(source)) throw new Error(`${where}: wildcards are not replayed`);
    if (from !== undefined) {
      const stage = stages.find((s) => s.name === from);
      if (stage === undefined) throw new Error(`${where}: no earlier stage named ${from}`);
      const src = hostPath(stage, source, where);
      const to = destDir ? join(target, basename(src)) : target;
      mkdirSync(dirname(to), { recursive: true });
      cpSync(src, to, { recursive: true, verbatimSymlinks: true });
      continue;
    }
    const rel = posix
      .normalize(source)
      .replace(/^\.?\/*/, '')
      .replace(/\/+$/, '');
    const files = context.filter((f) => f === rel || f.startsWith(`${rel}/`));
    if (files.length === 0)
      throw new Error(`${where}: ${source} is not in the build context (.dockerignore?)`);
    for (const file of files) {
      const to =
        file === rel
          ? destDir
            ? join(target, basename(file))
            : target
          : join(target, file.slice(rel.length + 1));
      mkdirSync(dirname(to), { recursive: true });
      cpSync(join(contextDir, file), to);
    }
  }
}

/** A container path of a stage (relative to WORKDIR, or absolute below it) on the host. */
function hostPath(stage: ReplayedStage, path: string, where: string): string {
  const absolute = posix.resolve(stage.workdir, path);
  if (absolute !== stage.workdir && !absolute.startsWith(`${stage.workdir}/`)) {
    throw new Error(
      `${where}: ${path} lies outside WORKDIR ${stage.workdir}, which is all the replay models`,
    );
  }
  return join(stage.dir, posix.relative(stage.workdir, absolute));
}

/** Every path below dir, relative, directories with a trailing slash. */
export function listTree(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(`${path}/`, ...listTree(dir, path));
    else out.push(path);
  }
  return out;
}

export const isDirectory = (path: string) => existsSync(path) && statSync(path).isDirectory();
