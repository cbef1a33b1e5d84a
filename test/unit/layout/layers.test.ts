// The source tree reads as the pipeline: config → identity → policy → mounts → plan → http →
// spawner → the composition root → cli. A module may import its own layer or a lower one, never a
// higher one, and no import cycle exists (type-only imports count: they are dependencies too).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../../src');
const LAYERS = ['config', 'identity', 'policy', 'mounts', 'plan', 'http', 'spawner', '(root)', 'cli'];
// Modules below every layer: the error vocabulary every layer raises.
const FOUNDATION = new Set(['errors.ts']);

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return modules(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path)] : [];
  });
}

const rank = (module: string): number => {
  if (FOUNDATION.has(module)) return -1;
  const top = module.includes('/') ? (module.split('/')[0] as string) : '(root)';
  const index = LAYERS.indexOf(top);
  if (index === -1) throw new Error(`src/${module} is in no layer; add its folder to LAYERS`);
  return index;
};

const IMPORT = /^(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|^\s*(?:const|await).*import\('(\.[^']+)'\)/gm;

function importsOf(module: string): string[] {
  const text = readFileSync(join(SRC, module), 'utf8');
  return [...text.matchAll(IMPORT)].map((m) =>
    relative(SRC, resolve(dirname(join(SRC, module)), (m[1] ?? m[2]) as string)).replace(/\.js$/, '.ts'),
  );
}

const all = modules(SRC);
const graph = new Map(all.map((m) => [m, importsOf(m)]));

describe('source layout', () => {
  it('has every module in a layer, and every import resolves to a module', () => {
    // The reader sees static, multi-line and dynamic imports alike.
    expect(graph.get('cli/main.ts')).toEqual(expect.arrayContaining(['server.ts', 'settings.ts']));
    expect(graph.get('app.ts')).toEqual(expect.arrayContaining(['compose.ts', 'http/auth.ts']));
    for (const [module, imports] of graph) {
      rank(module);
      for (const target of imports) expect(graph.has(target), `${module} imports ${target}`).toBe(true);
    }
  });

  it('never imports from a higher layer into a lower one', () => {
    const upward: string[] = [];
    for (const [module, imports] of graph) {
      for (const target of imports) {
        if (rank(target) > rank(module)) upward.push(`${module} → ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('has no import cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (module: string, path: string[]) => {
      if (state.get(module) === 'done') return;
      if (state.get(module) === 'open') {
        cycles.push([...path.slice(path.indexOf(module)), module].join(' → '));
        return;
      }
      state.set(module, 'open');
      for (const target of graph.get(module) ?? []) visit(target, [...path, module]);
      state.set(module, 'done');
    };
    for (const module of graph.keys()) visit(module, []);
    expect(cycles).toEqual([]);
  });

  it('keeps config schemas apart from directory clients: loading a config never loads a source', () => {
    const reached = new Set<string>();
    const walk = (module: string) => {
      if (reached.has(module)) return;
      reached.add(module);
      for (const target of graph.get(module) ?? []) walk(target);
    };
    walk('settings.ts');
    const behaviour = [...reached].filter((m) =>
      /sources\/[^/]+\/(source|connection|directory|admin-client)\.ts$/.test(m),
    );
    expect(behaviour).toEqual([]);
  });
});
