// Generated artefacts stay true: the committed OpenAPI document, the configuration page's
// reference, the performance page's copy of the latest benchmark, and the embedded default config.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOC, withReference } from '../../../scripts/config-reference.js';
import { generateOpenApi, OPENAPI_FILE } from '../../../scripts/openapi.js';
import { loadConfig } from '../../../src/config/load.js';

describe('generated documents', () => {
  it('openapi/openapi.json is what the app generates (run `npm run openapi` after changing a route)', async () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(await generateOpenApi());
  });

  it("the configuration page's reference matches the schema (run `npm run docs`)", () => {
    const page = readFileSync(CONFIG_DOC, 'utf8');
    expect(page).toBe(withReference(page));
  });

  it("the performance page's table is bench/results/latest.md (copy it there after `npm run bench`)", () => {
    const root = resolve(import.meta.dirname, '../../..');
    const page = readFileSync(join(root, 'docs/10-performance.md'), 'utf8');
    const copied = /<!-- bench:start[^>]*-->\n([\s\S]*?)<!-- bench:end -->/.exec(page)?.[1];
    const latest = readFileSync(join(root, 'bench/results/latest.md'), 'utf8').replace(/^# .*\n+/, '');
    expect(copied).toBe(latest);
  });

  it('documents every route of the API contract', () => {
    const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/healthz',
        '/metrics',
        '/readyz',
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
