// The guard every plan passes on its way out, cached or fresh, stale or explained: the response
// schema (`SpawnPlanSchema`, as the OpenAPI document publishes it) checks the plan, then the plan
// is serialised. A plan that fails it is never sent: the request fails with a 500 and the log
// names the field.
//
// Why Ajv over the same schema rather than zod's parse: parse builds a copy of the whole plan
// (10 KB per cache fill, the largest allocation of a directory miss), Ajv checks it in place.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { z } from 'zod';
import { type SpawnPlan, SpawnPlanSchema } from './schema.js';

/** SpawnPlanSchema as JSON Schema, output side: every object closed, every literal a const. */
export const spawnPlanJsonSchema = z.toJSONSchema(SpawnPlanSchema, {
  io: 'output',
  unrepresentable: 'throw',
});

const check = new Ajv2020({ strict: true, allErrors: false }).compile<SpawnPlan>(spawnPlanJsonSchema);

/** A plan the response schema refuses (a bug or a tampered entry, never something to send). */
export class PlanRefused extends Error {}

/** The plan as the response body, once the response schema has accepted it. */
export function planBody(plan: SpawnPlan): string {
  if (!check(plan)) {
    const [first] = check.errors ?? [];
    throw new PlanRefused(
      `the plan fails its response schema at ${first?.instancePath || '/'}: ${first?.message ?? 'invalid'}`,
    );
  }
  return JSON.stringify(plan);
}
