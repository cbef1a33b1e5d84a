// Builds the real app over a config document for tests (app.inject, never a listening port).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { type AppDeps, buildApp } from '../../src/app.js';
import { EXAMPLES_DIR } from '../../src/config/load.js';
import { sha256Hex } from '../../src/http/config.js';
import type { ConfigInput } from '../../src/settings.js';
import { parseConfig } from '../../src/settings.js';

export const TOKENS = {
  hub: 'hub-token-0123456789abcdef',
  ops: 'ops-token-0123456789abcdef',
  reader: 'reader-token-0123456789abcdef',
} as const;

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The demo config (home + proposal + beamline rules) with authentication on and three tokens. */
export function demoConfig(overrides: Partial<ConfigInput> = {}): ConfigInput {
  const demo = YAML.parse(readFileSync(join(EXAMPLES_DIR, 'demo-config.yaml'), 'utf8')) as ConfigInput;
  return {
    ...demo,
    auth: {
      tokens: [
        { name: 'hub', sha256: sha256Hex(TOKENS.hub), scopes: ['spawn-plan:read'] },
        {
          name: 'ops',
          sha256: sha256Hex(TOKENS.ops),
          scopes: ['users:read', 'spawn-plan:read', 'cache:write'],
        },
        { name: 'reader', sha256: sha256Hex(TOKENS.reader), scopes: ['users:read'] },
      ],
    },
    ...overrides,
  };
}

export async function testApp(document: ConfigInput, deps: Partial<AppDeps> = {}) {
  const config = parseConfig(document, 'test');
  return buildApp(config, { baseDir: EXAMPLES_DIR, logger: false, ...deps });
}

/** A temporary directory file for tests that need their own users. */
export function writeDirectory(doc: unknown, name = 'directory.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'idmount-test-'));
  const file = join(dir, name);
  writeFileSync(file, typeof doc === 'string' ? doc : YAML.stringify(doc));
  return file;
}
