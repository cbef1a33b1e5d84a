// The documented LDAP examples are complete configs: each one passes the real config schema once
// its secret files exist, and its ldap source turns into a working flavour (filters parse).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { EXAMPLES_DIR } from '../../../src/config/load.js';
import { sha256Hex } from '../../../src/http/config.js';
import type { LdapSourceConfig } from '../../../src/identity/sources/ldap/config.js';
import { ldapFlavour } from '../../../src/identity/sources/ldap/source.js';
import { parseConfig } from '../../../src/settings.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

/** Points every `...File` key at a temporary file with plausible content (the mounted Secrets). */
function withSecretFiles(node: unknown, dir: string): unknown {
  if (Array.isArray(node)) return node.map((n) => withSecretFiles(n, dir));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.endsWith('File') && typeof value === 'string') {
      const file = join(dir, `${Object.keys(out).length}-${key}`);
      const content = key === 'caFile' ? PEM : key === 'sha256File' ? sha256Hex(file) : 'example-secret';
      writeFileSync(file, content);
      out[key] = file;
    } else {
      out[key] = withSecretFiles(value, dir);
    }
  }
  return out;
}

describe.each([
  ['ldap-rfc2307.yaml', 'rfc2307', ['memberUid']],
  ['ldap-rfc2307bis.yaml', 'rfc2307bis', ['member', 'uniqueMember']],
])('examples/%s', (file, schema, member) => {
  it(`is a complete, valid config with one ${schema} ldap source and secrets only in files`, () => {
    const text = readFileSync(join(EXAMPLES_DIR, file), 'utf8');
    expect(text).not.toMatch(/bindPassword:|password:\s*\S/i);
    const dir = mkdtempSync(join(tmpdir(), 'idmount-example-'));
    const config = parseConfig(withSecretFiles(YAML.parse(text), dir), file);
    const source = config.sources[0] as LdapSourceConfig;
    expect(source).toMatchObject({ type: 'ldap', schema, bindPassword: 'example-secret', tlsVerify: true });
    expect(source.groups.attributes.member ?? member).toEqual(member);
    const flavour = ldapFlavour(source);
    expect(flavour.userBases.length).toBeGreaterThan(0);
    expect(flavour.groupBases.length).toBeGreaterThan(0);
  });
});
