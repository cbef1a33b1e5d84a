// The HTTP contract: every request and response body as a zod schema with a registered id, so
// the generated OpenAPI document uses $refs. openapi/openapi.json is generated from these.
import { z } from 'zod';
import { SpawnPlanSchema } from '../plan/schema.js';

export { SpawnPlanSchema };

export const UsernameParams = z.object({
  name: z.string().describe('The JupyterHub username (URL-encoded).'),
});

export const ExplainQuery = z.object({
  explain: z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .describe('Include a trace of how the answer was reached.'),
});

export const ProblemSchema = z
  .object({
    type: z.string().describe('A URI naming the problem type.'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe('Stable machine-readable error code, e.g. USER_NOT_FOUND.'),
    instance: z.string().optional(),
  })
  .catchall(z.unknown())
  .meta({ id: 'Problem', description: 'RFC 9457 problem details.' });

export const GroupSchema = z.object({ name: z.string(), gid: z.number().int() }).meta({ id: 'Group' });

export const IdentitySchema = z
  .object({
    name: z.string().describe('Canonical login name from the directory.'),
    uid: z.number().int(),
    gid: z.number().int(),
    home: z.string().optional().describe('Home directory as the directory states it (before rewrites).'),
    gecos: z.string().optional(),
    groups: z.array(GroupSchema).describe('Supplementary groups the directory reports (before policy).'),
    source: z.string().describe('Source that answered (first in the chain, or the uid source when merging).'),
    origin: z.record(z.string(), z.string()).describe('Which source gave each field.'),
    stale: z.boolean().describe('True when served from cache past its TTL because the source is down.'),
  })
  .meta({ id: 'Identity' });

/** What anyone may see of a source: its name, type and whether it answers. */
export const SourceUpSchema = z
  .object({ name: z.string(), type: z.string(), up: z.boolean() })
  .meta({ id: 'SourceUp' });

/** What an admin sees of a source: since when it is in its state, and its last error. */
export const SourceStateSchema = SourceUpSchema.extend({
  since: z.string(),
  lastError: z.string().optional().describe('The last failure, as the source reported it (admins only).'),
}).meta({ id: 'SourceState' });

export const ReadySchema = z
  .object({ status: z.literal('ready'), sources: z.array(SourceUpSchema) })
  .meta({ id: 'Readiness' });

export const HealthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Liveness' });

export const CacheEvictedSchema = z
  .object({
    name: z.string(),
    evicted: z.boolean().describe('True when this replica or the shared tier held an entry for the user.'),
    shared: z
      .boolean()
      .describe(
        'True when the shared tier removed its entry and told every replica to drop theirs; false without a shared tier, or when it could not be reached (then only this replica forgot the user).',
      ),
  })
  .meta({ id: 'CacheEviction' });

export const SharedTierStateSchema = z
  .object({
    state: z
      .enum(['connecting', 'up', 'down'])
      .describe(
        'up: Redis answers. down: it does not (or was paused after a failure); spawns do not need it.',
      ),
    since: z.string().describe('When the state last changed (ISO 8601).'),
    url: z.string().describe('The server, as configured (never with credentials).'),
    lastError: z.string().optional().describe('The last error Redis or the connection gave.'),
  })
  .meta({ id: 'SharedTierState' });

export const StatusSchema = z
  .object({
    sources: z.array(SourceStateSchema),
    cache: z.object({
      entries: z.number().int().describe('Identities held by this replica.'),
      shared: SharedTierStateSchema.nullable().describe(
        'The shared cache tier; null when none is configured.',
      ),
    }),
  })
  .meta({ id: 'Status' });
