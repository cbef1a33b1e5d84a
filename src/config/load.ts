// Reading a config document: the one YAML file (or the embedded demo default), parsed with
// duplicate keys refused, validated by a zod schema, frozen. Problems are reported all at once,
// each with its exact key path. Which schema is the caller's (src/settings.ts).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { z } from 'zod';

export interface LoadedDocument {
  document: unknown;
  /** Relative paths inside the config resolve against this folder. */
  baseDir: string;
  /** Where the config came from: a file path, or 'embedded default'. */
  origin: string;
  embedded: boolean;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(origin: string, problems: string[]) {
    super(`invalid configuration in ${origin}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** The demo directory and its rules ship in examples/, beside src/ and dist/. */
export const EXAMPLES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../examples');
export const EMBEDDED_CONFIG = resolve(EXAMPLES_DIR, 'demo-config.yaml');

export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}

export function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.flatMap((issue) => {
    // A value of several shapes ({ nfs } | { csi } | ...): name what is wrong with the shape its
    // keys chose, rather than "Invalid input" for all of them.
    if (issue.code === 'invalid_union') {
      const chosen = issue.errors.filter(
        (branch) => !branch.some((i) => i.code === 'unrecognized_keys' && i.path.length === 0),
      );
      if (chosen.length === 1) {
        return describeIssues(
          (chosen[0] as z.core.$ZodIssue[]).map((i) => ({ ...i, path: [...issue.path, ...i.path] })),
        );
      }
    }
    const where = formatIssuePath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    }
    return `${where}: ${issue.message}`;
  });
}

/** Validates an already-parsed document against `schema` and freezes the result. */
export function parseWith<S extends z.ZodType>(schema: S, document: unknown, origin: string): z.output<S> {
  const result = schema.safeParse(document ?? {});
  if (!result.success) throw new ConfigError(origin, describeIssues(result.error.issues));
  return deepFreeze(result.data);
}

export function readConfigDocument(path: string | undefined): LoadedDocument {
  const file = path ?? EMBEDDED_CONFIG;
  const origin = path ?? 'embedded default';
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(origin, [
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    ]);
  }
  const document = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      origin,
      document.errors.map((e) => `YAML ${e.linePos?.[0] ? `line ${e.linePos[0].line}` : ''}: ${e.code}`),
    );
  }
  return { document: document.toJS(), baseDir: dirname(resolve(file)), origin, embedded: path === undefined };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
