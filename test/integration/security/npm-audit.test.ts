// What ships (production dependencies, `npm audit --omit=dev`) has no known high or critical
// vulnerability. npm asks the registry's advisory database, so this needs the registry (as
// `npm ci` does).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/serve.js';

describe('npm audit of the production dependencies', () => {
  it('reports no high or critical advisory', () => {
    const run = spawnSync('npm', ['audit', '--omit=dev', '--json'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    let report: { metadata?: { vulnerabilities?: Record<string, number> }; error?: unknown };
    try {
      report = JSON.parse(run.stdout);
    } catch {
      throw new Error(
        `npm audit gave no JSON report (is the registry reachable?):\n${run.stdout}\n${run.stderr}`,
      );
    }
    // A registry (or mirror) that refuses the advisory endpoint gives no verdict: that is a failure
    // to audit, never a pass.
    expect(
      report.error,
      `npm audit could not ask the registry: ${JSON.stringify(report.error)}`,
    ).toBeUndefined();
    const counts = report.metadata?.vulnerabilities;
    expect(counts, run.stdout.slice(0, 2000)).toBeDefined();
    expect({ high: counts?.high, critical: counts?.critical }, run.stdout.slice(0, 4000)).toEqual({
      high: 0,
      critical: 0,
    });
  }, 90_000);
});
