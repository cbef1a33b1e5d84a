// The documents stay true: the committed OpenAPI document, the configuration page's generated
// reference, the performance page's copy of the latest benchmark, the embedded default, and the
// docs themselves (links that lead somewhere, every page reachable from a README kept short).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOC, withReference } from '../../../scripts/config-reference.js';
import { generateOpenApi, OPENAPI_FILE } from '../../../scripts/openapi.js';
import { loadConfig } from '../../../src/settings.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const README = join(ROOT, 'README.md');
const DOCS = join(ROOT, 'docs');
const PAGES = readdirSync(DOCS)
  .filter((f) => f.endsWith('.md'))
  .sort()
  .map((f) => join(DOCS, f));
const read = (file: string) => readFileSync(file, 'utf8');
const name = (file: string) => relative(ROOT, file);

/** The text outside fenced code blocks: a `#` or `[x](y)` inside a block is code, not Markdown. */
const prose = (markdown: string) =>
  markdown.replace(/^[ \t]*(```|~~~)[^\n]*\n[\s\S]*?^[ \t]*\1[^\n]*$/gm, '');

/** Heading anchors as GitHub makes them: lower case, punctuation dropped, spaces to dashes, -1 for repeats. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = (heading as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** Every link target in a page's prose, inline code left out. */
const links = (markdown: string) =>
  [
    ...prose(markdown)
      .replace(/`[^`\n]*`/g, '')
      .matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g),
  ].map((m) => m[1] as string);

describe('the docs', () => {
  it.each([README, ...PAGES].map((file) => [name(file), file]))(
    '%s: every relative link leads to a file, and every #anchor to a heading',
    (_name, file) => {
      const broken: string[] = [];
      for (const target of links(read(file))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...
        const [path = '', anchor] = target.split('#', 2);
        const resolved = path === '' ? file : resolve(dirname(file), path);
        if (!existsSync(resolved)) {
          broken.push(`${target}: no such file`);
        } else if (anchor !== undefined && resolved.endsWith('.md') && statSync(resolved).isFile()) {
          if (!anchors(read(resolved)).has(anchor)) broken.push(`${target}: no such heading`);
        }
      }
      expect(broken).toEqual([]);
    },
  );

  it('the README links every page in docs/', () => {
    const linked = new Set(
      links(read(README)).map((target) => resolve(ROOT, target.split('#')[0] as string)),
    );
    expect(PAGES.filter((page) => !linked.has(page)).map(name)).toEqual([]);
  });

  it('names only files and folders of this repository that exist (src/, test/, bench/, scripts/, examples/)', () => {
    const missing: string[] = [];
    for (const file of [README, join(ROOT, 'CHANGELOG.md'), ...PAGES]) {
      if (file.endsWith('CHANGELOG.md')) continue; // history may name what no longer exists
      for (const [path] of read(file).matchAll(
        /\b(?:src|test|bench|scripts|examples|helm-chart)\/[A-Za-z0-9_./-]*[A-Za-z0-9_/]/g,
      )) {
        // bench/results/ holds what a bench run writes (profiles on request).
        if (!path.startsWith('bench/results/') && !existsSync(join(ROOT, path)))
          missing.push(`${name(file)}: ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('the README stays an entry page: at most 250 lines', () => {
    expect(read(README).split('\n').length).toBeLessThanOrEqual(250);
  });
});

describe('generated documents', () => {
  it('openapi/openapi.json is what the app generates (run `npm run openapi` after changing a route)', async () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(await generateOpenApi());
  });

  it("the configuration page's reference matches the schema (run `npm run docs`)", () => {
    const page = read(CONFIG_DOC);
    expect(page).toBe(withReference(page));
  });

  it("the performance page's table is bench/results/latest.md (copy it there after `npm run bench`)", () => {
    const page = read(join(DOCS, '10-performance.md'));
    const copied = /<!-- bench:start[^>]*-->\n([\s\S]*?)<!-- bench:end -->/.exec(page)?.[1];
    const latest = read(join(ROOT, 'bench/results/latest.md')).replace(/^# .*\n+/, '');
    expect(copied).toBe(latest);
  });

  it('documents every route of the API contract', () => {
    const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/healthz',
        '/metrics',
        '/readyz',
        '/status',
        '/users/{name}',
        '/users/{name}/cache',
        '/users/{name}/spawn-plan',
      ].sort(),
    );
    const plan = doc.paths['/users/{name}/spawn-plan'].get;
    for (const status of ['400', '401', '403', '404', '422', '429', '503']) {
      expect(plan.responses[status].content, status).toHaveProperty(['application/problem+json']);
    }
  });
});

describe('the embedded default', () => {
  it('is a valid config that needs no secret (examples with secrets are checked by their source suites)', () => {
    expect(loadConfig(undefined)).toMatchObject({ embedded: true, config: { auth: { disabled: true } } });
  });
});
