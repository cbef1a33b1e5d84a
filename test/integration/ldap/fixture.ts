// The directory every ldap test reads, written once for both schemas: the harness turns it into
// posixGroup/memberUid entries (rfc2307) or groupOfNames/member DN entries (rfc2307bis).
import pino from 'pino';
import { type LdapSourceConfig, LdapSourceConfigSchema } from '../../../src/identity/sources/ldap/config.js';
import type { DirectoryFixture, Slapd } from '../../harness/slapd.js';

export const MANY_GROUPS = 600; // above slapd's size limit of 500: only paging reads them all
export const BIG_GROUP = 5000;

export const fixture: DirectoryFixture = {
  users: [
    {
      uid: 'alice',
      uidNumber: 2001,
      gidNumber: 2001,
      cn: 'Alice Liddell',
      mail: 'alice@example.org',
      loginShell: '/bin/bash',
    },
    { uid: 'bob', uidNumber: 2002, gidNumber: 2002 },
    { uid: 'carol', uidNumber: 2003, gidNumber: 2003 },
    { uid: 'cyc', uidNumber: 2004, gidNumber: 2004 },
    { uid: 'many', uidNumber: 2005, gidNumber: 2005 },
    { uid: 'Dora', uidNumber: 2006, gidNumber: 2006 },
    { uid: 'nouid', gidNumber: 2007 },
    { uid: 'badnum', uidNumber: '20x8', gidNumber: 2008 },
    { uid: 'dup', uidNumber: 2009, gidNumber: 2009 },
    { uid: 'dup', uidNumber: 2010, gidNumber: 2010, ou: 'staff' },
    { uid: 'visitor', uidNumber: 2011, gidNumber: 2011, ou: 'staff' },
    { uid: 'erin', uidNumber: 2012, gidNumber: 2012 },
  ],
  groups: [
    { cn: 'alice', gidNumber: 2001 }, // user-private group listing no members
    { cn: 'staff', gidNumber: 3000, users: ['alice', 'carol'] },
    { cn: 'oddgid', gidNumber: 'twelve', users: ['alice'] },
    { cn: 'team', gidNumber: 3001, users: ['carol'] },
    { cn: 'dept', gidNumber: 3002, groups: ['team'] },
    { cn: 'org', gidNumber: 3003, groups: ['dept'] },
    { cn: 'cycle-a', gidNumber: 3010, users: ['cyc'], groups: ['cycle-b'] },
    { cn: 'cycle-b', gidNumber: 3011, groups: ['cycle-a'] },
    { cn: 'visitors', gidNumber: 3020, users: ['visitor'], ou: 'projects' },
    // A group with thousands of members: its member list must never travel to idmount.
    {
      cn: 'big',
      gidNumber: 3100,
      users: ['erin', ...Array.from({ length: BIG_GROUP - 1 }, (_, i) => `member${i}`)],
    },
    ...Array.from({ length: MANY_GROUPS }, (_, i) => ({
      cn: `many${i}`,
      gidNumber: 40_000 + i,
      users: ['many'],
    })),
  ],
};

export const silentLog = pino({ level: 'silent' });

/** A parsed `ldap` source config pointing at `slapd`, with overrides merged in before parsing. */
export function ldapConfig(slapd: Slapd, overrides: Record<string, unknown> = {}): LdapSourceConfig {
  return LdapSourceConfigSchema.parse({
    name: 'campus',
    type: 'ldap',
    schema: slapd.schema,
    urls: [slapd.url],
    bindDN: slapd.bindDN,
    bindPasswordFile: slapd.bindPasswordFile,
    users: { bases: [{ base: `ou=people,${slapd.suffix}` }, { base: `ou=staff,${slapd.suffix}` }] },
    groups: { bases: [{ base: `ou=groups,${slapd.suffix}` }, { base: `ou=projects,${slapd.suffix}` }] },
    backoff: { initial: '100ms', max: '400ms' },
    connectTimeout: '2s',
    ...overrides,
  });
}
