// Config mistakes in an ldap source are reported on the exact key, at load time.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/load.js';
import { parseConfig } from '../../../src/settings.js';
import { demoConfig } from '../../helpers/app.js';

const ldap = (overrides: Record<string, unknown>) => ({
  name: 'campus',
  type: 'ldap',
  urls: ['ldaps://ldap.example.org'],
  users: { bases: [{ base: 'ou=people,dc=example,dc=org' }] },
  ...overrides,
});

function problems(source: Record<string, unknown>): string[] {
  try {
    parseConfig(demoConfig({ sources: [source as never] }), 'test');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('ldap source config errors', () => {
  it.each([
    [
      'a bind DN without a password source',
      { bindDN: 'cn=x' },
      'sources[0].bindPasswordFile: bindDN needs bindPasswordFile or bindPasswordEnv',
    ],
    [
      'an unreadable password file',
      { bindDN: 'cn=x', bindPasswordFile: '/nonexistent/pw' },
      'sources[0].bindPasswordFile: cannot read secret file /nonexistent/pw: ENOENT',
    ],
    [
      'an unset password variable',
      { bindDN: 'cn=x', bindPasswordEnv: 'IDMOUNT_TEST_UNSET_VAR' },
      'sources[0].bindPasswordEnv: environment variable IDMOUNT_TEST_UNSET_VAR is not set',
    ],
    [
      'an unreadable CA file',
      { caFile: '/nonexistent/ca.pem' },
      'sources[0].caFile: cannot read CA file /nonexistent/ca.pem: ENOENT',
    ],
    [
      'StartTLS on an ldaps:// URL',
      { startTls: true },
      'sources[0].startTls: startTls applies to ldap:// URLs only; ldaps:// is already TLS',
    ],
    [
      'a URL that is not LDAP',
      { urls: ['https://ldap.example.org'] },
      'sources[0].urls[0]: expected ldap://host[:port] or ldaps://host[:port]',
    ],
    [
      'an unbalanced search filter',
      { users: { bases: [{ base: 'dc=x', filter: '(objectClass=posixAccount' }] } },
      'sources[0].users.bases[0].filter: not a valid LDAP filter',
    ],
    ['an unknown key', { userBase: 'dc=x' }, "sources[0]: unknown key 'userBase'"],
  ])('%s is reported on its key', (_sentence, overrides, expected) => {
    expect(problems(ldap(overrides)).some((p) => p.startsWith(expected))).toBe(true);
  });
});
