// The one place that knows every source type: its config schema and its factory.
// Adding a source = one schema in the union and one case in createSource.
import type { Logger } from 'pino';
import { z } from 'zod';
import type { IdentitySource } from '../types.js';
import { AdSourceConfigSchema, createAdSource } from './ad/source.js';
import { createFileSource, FileSourceConfigSchema } from './file.js';
import { createKeycloakSource, KeycloakSourceConfigSchema } from './keycloak/source.js';
import { createLdapSource, LdapSourceConfigSchema } from './ldap/source.js';

export const SourceConfigSchema = z.discriminatedUnion('type', [
  FileSourceConfigSchema,
  LdapSourceConfigSchema,
  KeycloakSourceConfigSchema,
  AdSourceConfigSchema,
]);

export type SourceConfig = z.infer<typeof SourceConfigSchema>;

export interface SourceContext {
  log: Logger;
  /** Relative paths in a source config resolve against this (the config file's folder). */
  baseDir: string;
}

export function createSource(config: SourceConfig, ctx: SourceContext): IdentitySource {
  switch (config.type) {
    case 'file':
      return createFileSource(config, ctx);
    case 'ldap':
      return createLdapSource(config, ctx);
    case 'keycloak':
      return createKeycloakSource(config, ctx);
    case 'ad':
      return createAdSource(config, ctx);
  }
}
