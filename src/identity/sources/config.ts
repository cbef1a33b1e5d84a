// Every source type's config schema in one union, discriminated by `type`. Schemas only: loading a
// config never loads a directory client.
import { z } from 'zod';
import { AdSourceConfigSchema } from './ad/config.js';
import { FileSourceConfigSchema } from './file/config.js';
import { KeycloakSourceConfigSchema } from './keycloak/config.js';
import { LdapSourceConfigSchema } from './ldap/config.js';

export const SourceConfigSchema = z.discriminatedUnion('type', [
  FileSourceConfigSchema,
  LdapSourceConfigSchema,
  KeycloakSourceConfigSchema,
  AdSourceConfigSchema,
]);

export type SourceConfig = z.infer<typeof SourceConfigSchema>;
