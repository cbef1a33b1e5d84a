// Generated artefacts stay true: the committed OpenAPI document, the README's configuration
// reference, and every example config.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { README, readmeWithReference } from '../../../scripts/config-reference.js';
import { generateOpenApi, OPENAPI_FILE } from '../../../scripts/openapi.js';
import { loadConfig } from '../../../src/settings.js';

describe('generated documents', () => {
  it('openapi/openapi.json is what the app generates (run `npm run openapi` after changing a route)', async () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(await generateOpenApi());
  });

  it("the README's configuration reference matches the schema (run `npm run docs`)", () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toBe(readmeWithReference(readme));
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
