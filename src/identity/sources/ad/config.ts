// The `ad` source's config: LDAP connection keys, the domain's bases and login attribute, group
// nesting (tokenGroups or the in-chain rule), the realms and domains stripped from qualified names, and SSSD-compatible ID mapping.
import { z } from 'zod';
import { SourceName } from '../../../config/primitives.js';
import {
  attr,
  GroupPageSizeSchema,
  LdapConnectionShape,
  MaxGroupsSchema,
  resolveConnectionSecrets,
  SearchBaseSchema,
} from '../ldap/config.js';
import { SSSD_IDMAP_DEFAULTS } from './idmap.js';
import { isDomainSid } from './sid.js';

/** A suffix given in `user@REALM` / a NetBIOS domain given in `DOMAIN\user`; compared case-insensitively. */
const NamePart = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/, 'expected a DNS or NetBIOS domain name');

const IdMappingSchema = z
  .strictObject({
    mode: z
      .enum(['off', 'fallback', 'always'])
      .default('off')
      .describe(
        'off: uid/gid come from uidNumber/gidNumber only (sssd.conf ldap_id_mapping = false); an entry without them is an error. always: uid/gid are derived from objectSid exactly as SSSD does with ldap_id_mapping = true (uidNumber/gidNumber ignored). fallback: uidNumber/gidNumber when present, SSSD-mapped ids otherwise (for migrations; SSSD has no such mode).',
      ),
    rangeMin: z
      .number()
      .int()
      .min(1)
      .default(SSSD_IDMAP_DEFAULTS.rangeMin)
      .describe('Must equal sssd.conf ldap_idmap_range_min.'),
    rangeMax: z
      .number()
      .int()
      .max(4_294_967_295)
      .default(SSSD_IDMAP_DEFAULTS.rangeMax)
      .describe('Must equal sssd.conf ldap_idmap_range_max.'),
    rangeSize: z
      .number()
      .int()
      .min(1)
      .default(SSSD_IDMAP_DEFAULTS.rangeSize)
      .describe('Must equal sssd.conf ldap_idmap_range_size.'),
    autoridCompat: z
      .boolean()
      .default(SSSD_IDMAP_DEFAULTS.autoridCompat)
      .describe('Must equal sssd.conf ldap_idmap_autorid_compat.'),
    helperTableSize: z
      .number()
      .int()
      .min(0)
      .default(SSSD_IDMAP_DEFAULTS.helperTableSize)
      .describe(
        'Must equal sssd.conf ldap_idmap_helper_table_size (secondary slices for RIDs above rangeSize).',
      ),
    defaultDomainSid: z
      .string()
      .refine(isDomainSid, 'expected a domain SID such as S-1-5-21-1-2-3')
      .optional()
      .describe(
        'Must equal sssd.conf ldap_idmap_default_domain_sid when that is set (that domain gets slice 0).',
      ),
    slices: z
      .record(z.string(), z.number().int().min(0))
      .default({})
      .describe(
        'Slices pinned to ID-mapping ranges: "<domain SID>" (its primary range) or "<domain SID>-<first RID>" (a secondary range, first RID a multiple of rangeSize) → slice number. SSSD moves a range whose hashed slice is taken to the next free one, which depends on the order domains are seen in; idmount never does that by itself: without cache.shared such a range is refused with an error naming it, and pinning it here (the same on every replica) resolves it. With cache.shared the replicas agree a slice once (first writer wins) and pins are needed only to match fixed assignments elsewhere.',
      ),
    autoPrivateGroups: z
      .boolean()
      .default(false)
      .describe(
        'Must match sssd.conf auto_private_groups: true = the primary gid equals the mapped uid (a user-private group named after the user); false = the primary gid is the mapped SID of primaryGroupID (usually Domain Users).',
      ),
  })
  .prefault({})
  .superRefine((value, ctx) => {
    if (value.rangeMax <= value.rangeMin || value.rangeMax - value.rangeMin < value.rangeSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['rangeMax'],
        message: 'rangeMax must exceed rangeMin by at least rangeSize (SSSD refuses such ranges too)',
      });
      return;
    }
    const maxSlices = Math.floor((value.rangeMax - value.rangeMin) / value.rangeSize);
    const holders = new Map<number, string>();
    if (value.defaultDomainSid !== undefined) holders.set(0, `${value.defaultDomainSid} (defaultDomainSid)`);
    for (const [rangeId, slice] of Object.entries(value.slices)) {
      const issue = (message: string) => ctx.addIssue({ code: 'custom', path: ['slices', rangeId], message });
      const secondary = /^(.*)-(\d+)$/.exec(rangeId);
      const rangeOk =
        isDomainSid(rangeId) ||
        (secondary !== null &&
          isDomainSid(secondary[1] as string) &&
          Number(secondary[2]) > 0 &&
          Number(secondary[2]) % value.rangeSize === 0);
      if (!rangeOk)
        issue('expected a domain SID, or a domain SID and a first RID that is a multiple of rangeSize');
      else if (slice >= maxSlices) issue(`slice ${slice} is beyond the id space (slices 0-${maxSlices - 1})`);
      else if (holders.has(slice)) issue(`slice ${slice} is already pinned to ${holders.get(slice)}`);
      holders.set(slice, rangeId);
    }
  });

export const AdSourceConfigSchema = z
  .strictObject({
    name: SourceName,
    type: z.literal('ad'),
    ...LdapConnectionShape,
    baseDN: z
      .string()
      .min(1)
      .describe('The domain naming context, e.g. DC=example,DC=org; default base for users and groups.'),
    loginAttribute: z
      .enum(['sAMAccountName', 'userPrincipalName'])
      .default('sAMAccountName')
      .describe(
        'Attribute the username is matched against: sAMAccountName (pre-Windows 2000 name) or userPrincipalName (alice@example.org). Matching is case-insensitive (AD semantics); the directory spelling is returned.',
      ),
    names: z
      .strictObject({
        stripRealms: z
          .array(NamePart)
          .default([])
          .describe(
            'Realms / UPN suffixes stripped from `user@REALM` before lookup (case-insensitive). A name with another suffix is not in this directory (unless loginAttribute is userPrincipalName).',
          ),
        stripDomains: z
          .array(NamePart)
          .default([])
          .describe(
            'NetBIOS domains stripped from `DOMAIN\\user` before lookup (case-insensitive). A name with another domain is not in this directory.',
          ),
      })
      .prefault({})
      .describe('Qualified name forms accepted for this domain.'),
    users: z
      .strictObject({
        bases: z
          .array(SearchBaseSchema)
          .min(1)
          .optional()
          .describe(
            'Where users are searched. Default: baseDN, subtree, (&(objectCategory=person)(objectClass=user)).',
          ),
        attributes: z
          .strictObject({
            uid: attr('uidNumber', 'Numeric user id attribute (RFC2307 in AD).'),
            gid: attr('gidNumber', 'Numeric primary group id attribute.'),
            home: attr(
              'unixHomeDirectory',
              'Home directory attribute (AD homeDirectory is the Windows home).',
            ),
            gecos: attr('displayName', 'Full name, written to the passwd GECOS field.'),
            shell: attr('loginShell', 'Login shell attribute.'),
            mail: attr('mail', 'Mail attribute, shown in explain traces.'),
          })
          .prefault({})
          .describe('Attribute names of user entries.'),
      })
      .prefault({})
      .describe('User search.'),
    groups: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe('false: this source provides no groups (merge them from another source).'),
        bases: z
          .array(SearchBaseSchema)
          .min(1)
          .optional()
          .describe('Where groups are searched. Default: baseDN, subtree, (objectClass=group).'),
        nested: z
          .boolean()
          .default(true)
          .describe(
            'true: every group the user is in through nested groups, at any depth, the way `nestedWith` says. false: direct memberships (`member`) only, plus the primary groups.',
          ),
        nestedWith: z
          .enum(['tokenGroups', 'inChain'])
          .default('tokenGroups')
          .describe(
            "How nested groups are resolved. tokenGroups (SSSD's default, ldap_use_tokengroups = true): one base read of the user's own entry for its constructed tokenGroups, the SIDs of every security group the user is in, transitively, the AD primary group included; they are found by objectSid. When the DC or the bind account gives no tokenGroups (absent or empty), the in-chain way is used instead, with an explain note. inChain: the DC walks nested `member` links with the matching rule 1.2.840.113556.1.4.1941 (one search, plus one for the AD primary group's parents), to any depth; unlike tokenGroups it includes distribution groups. (SSSD with ldap_use_tokengroups = false walks `member` links itself, to ldap_group_nesting_level.)",
          ),
        attributes: z
          .strictObject({
            name: attr('sAMAccountName', 'Group name attribute.'),
            gid: attr('gidNumber', 'Numeric group id attribute.'),
          })
          .prefault({})
          .describe('Attribute names of group entries.'),
        pageSize: GroupPageSizeSchema.describe(
          'Group searches are paged (RFC 2696); AD returns at most 1000 entries per page by default.',
        ),
        maxGroups: MaxGroupsSchema,
      })
      .prefault({})
      .describe('Group search.'),
    idMapping: IdMappingSchema.describe(
      'SSSD-compatible ID mapping from objectSid (sssd-ad(5) "ID MAPPING").',
    ),
    disabledAccounts: z
      .enum(['refuse', 'allow'])
      .default('refuse')
      .describe(
        'refuse: an account with userAccountControl ACCOUNTDISABLE (0x2) gets a POLICY_VIOLATION error naming the reason, and no later source is asked. allow: disabled accounts resolve like any other.',
      ),
  })
  .transform((config, ctx) => resolveConnectionSecrets(config, ctx));

export type AdSourceConfig = z.output<typeof AdSourceConfigSchema>;
