// The API contract, bounded for every test run: schemathesis against the real `idmount serve`
// (scripts/contract.ts) over its served /openapi.json. `npm run contract` is the long run.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runScript } from '../helpers/serve.js';

describe('the served OpenAPI document is the contract', () => {
  it('schemathesis finds no 5xx and no response off its declared status, content type, headers or schema', async () => {
    expect(
      existsSync(resolve(ROOT, '.venv-contract/bin/st')),
      'schemathesis is missing: run `npm run test:deps` (scripts/test-deps/60-schemathesis.sh)',
    ).toBe(true);
    // 25 examples per operation with a fixed seed: about a minute on two cores, and a failure
    // here reproduces with the same command.
    const args = ['scripts/contract.ts', '--max-examples', '25', '--seed', '20261126'];
    const { code, out } = await runScript(args);
    expect(code, out).toBe(0);
    expect(out).toMatch(/Test cases:\s+\d+ generated, \d+ passed/);
  }, 240_000);
});
