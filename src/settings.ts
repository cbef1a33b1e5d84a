// The whole configuration document: every layer's section assembled into one schema, parsed and
// frozen once at the door. Each section is owned by its layer (http/config.ts, identity/…,
// policy/config.ts, mounts/config.ts, plan/config.ts); the reference in docs/ is generated from
// their descriptions (scripts/config-reference.ts) and a test keeps it in sync.
import { isIP } from 'node:net';
import { z } from 'zod';
import { type LoadedDocument, parseWith, readConfigDocument } from './config/load.js';
import { AuthSchema, LoggingSchema, ServerSchema } from './http/config.js';
import { CacheSchema } from './identity/cache/config.js';
import { MergeSchema } from './identity/config.js';
import { SourceConfigSchema } from './identity/sources/config.js';
import { MountsConfigShape } from './mounts/config.js';
import { SpawnerSchema } from './plan/config.js';
import { PolicySchema } from './policy/config.js';

export const ConfigSchema = z
  .strictObject({
    server: ServerSchema,
    logging: LoggingSchema,
    auth: AuthSchema,
    sources: z.array(SourceConfigSchema).min(1).describe('Directory sources, tried in order.'),
    merge: MergeSchema.optional(),
    cache: CacheSchema,
    policy: PolicySchema,
    ...MountsConfigShape,
    spawner: SpawnerSchema,
  })
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.sources.forEach((source, i) => {
      if (names.has(source.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['sources', i, 'name'],
          message: `duplicate source name '${source.name}'`,
        });
      }
      names.add(source.name);
    });
    for (const [field, source] of Object.entries(config.merge ?? {})) {
      if (source !== undefined && !names.has(source)) {
        ctx.addIssue({ code: 'custom', path: ['merge', field], message: `no source is named '${source}'` });
      }
    }
    if (config.auth.disabled && !isLoopback(config.server.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'disabled'],
        message: 'authentication can only be disabled when server.host is a loopback address',
      });
    }
    if (!config.auth.disabled && config.auth.tokens.length === 0 && config.auth.oidc === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'tokens'],
        message: 'no token and no oidc configured: nobody could call the API',
      });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export interface LoadedConfig extends Omit<LoadedDocument, 'document'> {
  config: Config;
}

/** Validates an already-parsed document; throws ConfigError naming every bad key. */
export const parseConfig = (document: unknown, origin: string): Config =>
  parseWith(ConfigSchema, document, origin);

/** Reads, validates and freezes the config file (or the embedded demo default when `path` is unset). */
export function loadConfig(path: string | undefined): LoadedConfig {
  const { document, ...where } = readConfigDocument(path);
  return { config: parseConfig(document, where.origin), ...where };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
