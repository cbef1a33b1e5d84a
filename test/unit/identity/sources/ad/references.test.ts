// Which continuation references an AD subtree search may carry without being incomplete: the
// forest's DNS and configuration partitions hold no user or group of the domain; anything else does.
import { describe, expect, it } from 'vitest';
import { isAdPartitionReference } from '../../../../../src/identity/sources/ad/source.js';

describe('AD partition references', () => {
  it.each([
    'ldap://example.org/CN=Configuration,DC=example,DC=org',
    'ldap://DomainDnsZones.example.org/DC=DomainDnsZones,DC=example,DC=org',
    'ldap://ForestDnsZones.example.org/DC=ForestDnsZones,DC=example,DC=org',
  ])('ignores %s', (url) => {
    expect(isAdPartitionReference(url)).toBe(true);
  });

  it.each([
    'ldap://other.example.org/OU=People,DC=other,DC=example,DC=org',
    'ldap://example.org/DC=child,DC=example,DC=org',
    'not a url',
  ])('counts %s as part of the answer elsewhere', (url) => {
    expect(isAdPartitionReference(url)).toBe(false);
  });
});
