// The one place that knows every source implementation: config in, source out.
// Adding a source = a folder with config.ts and source.ts, one schema in ./config.ts, one case here.
import type { IdentitySource, SourceContext } from '../types.js';
import { createAdSource } from './ad/source.js';
import type { SourceConfig } from './config.js';
import { createFileSource } from './file/source.js';
import { createKeycloakSource } from './keycloak/source.js';
import { createLdapSource } from './ldap/source.js';

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
