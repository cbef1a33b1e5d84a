// examples/ad.yaml is a complete config: it passes the real config schema once its secret files
// exist, and its ad source becomes a working flavour (filters parse, ID mapping as documented).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { EXAMPLES_DIR } from '../../../src/config/load.js';
import { sha256Hex } from '../../../src/http/config.js';
import type { AdSourceConfig } from '../../../src/identity/sources/ad/config.js';
import { adFlavour, normaliseAdName } from '../../../src/identity/sources/ad/source.js';
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
      writeFileSync(file, key === 'caFile' ? PEM : key === 'sha256File' ? sha256Hex(file) : 'example-secret');
      out[key] = file;
    } else {
      out[key] = withSecretFiles(value, dir);
    }
  }
  return out;
}

describe('examples/ad.yaml', () => {
  const text = readFileSync(join(EXAMPLES_DIR, 'ad.yaml'), 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'idmount-example-'));
  const config = parseConfig(withSecretFiles(YAML.parse(text), dir), 'ad.yaml');
  const source = config.sources[0] as AdSourceConfig;

  it('is a valid config whose secrets live only in files', () => {
    expect(text).not.toMatch(/bindPassword:|password:\s*\S/i);
    expect(source).toMatchObject({ type: 'ad', bindPassword: 'example-secret', tlsVerify: true });
  });

  it('documents SSSD default ID-mapping settings', () => {
    expect(source.idMapping).toMatchObject({
      mode: 'always',
      rangeMin: 200_000,
      rangeMax: 2_000_200_000,
      rangeSize: 200_000,
      helperTableSize: 10,
      autoridCompat: false,
      autoPrivateGroups: false,
    });
  });

  it('turns into an AD flavour: case-insensitive names, objectSid as binary, one user and one group base', () => {
    const flavour = adFlavour(source);
    expect(flavour).toMatchObject({
      caseSensitiveNames: false,
      binaryAttributes: ['objectSid'],
      idsFromMapping: true,
    });
    expect(flavour.userAttributes).toMatchObject({ name: 'sAMAccountName', home: 'unixHomeDirectory' });
    expect(flavour.userBases).toHaveLength(1);
    expect(flavour.groupBases).toHaveLength(1);
  });
});

describe('normaliseAdName', () => {
  const names = { stripRealms: ['AD.EXAMPLE.ORG'], stripDomains: ['AD'] };
  it.each([
    {
      sentence: 'a plain name is kept as given (the server compares case-insensitively)',
      input: 'Alice',
      out: 'Alice',
    },
    {
      sentence: 'the configured realm is stripped, in any case',
      input: 'alice@ad.example.org',
      out: 'alice',
    },
    { sentence: 'the configured NetBIOS domain is stripped, in any case', input: 'ad\\alice', out: 'alice' },
    { sentence: 'another realm cannot be in this directory', input: 'alice@other.org', out: undefined },
    { sentence: 'another domain cannot be in this directory', input: 'OTHER\\alice', out: undefined },
    { sentence: 'two backslashes are not a down-level name', input: 'AD\\a\\b', out: undefined },
    { sentence: 'an empty user part is refused', input: '@AD.EXAMPLE.ORG', out: undefined },
  ])('$sentence', ({ input, out }) => {
    expect(normaliseAdName(input, names, 'sAMAccountName')).toBe(out);
  });

  it('keeps user@realm whole when userPrincipalName is the login attribute', () => {
    expect(normaliseAdName('alice@ad.example.org', names, 'userPrincipalName')).toBe('alice@ad.example.org');
    expect(normaliseAdName('AD\\alice', names, 'userPrincipalName')).toBe('alice');
  });
});
