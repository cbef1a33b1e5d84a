// The guard every plan passes on its way out, cached or fresh, stale or explained: the response
// schema (`SpawnPlanSchema`, as the OpenAPI document publishes it) checks the plan, then the plan
// is serialised. A plan that fails it is never sent: the request fails with a 500 and the log
// names the field.
//
// Why Ajv over the same schema rather than zod's parse: parse builds a copy of the whole plan
// (10 KB per cache fill, the largest allocation of a directory miss), Ajv checks it in place.
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import { z } from 'zod';
import { type SpawnPlan, SpawnPlanSchema } from './schema.js';

/** SpawnPlanSchema as JSON Schema, output side: every object closed, every literal a const. */
export const spawnPlanJsonSchema = () =>
  z.toJSONSchema(SpawnPlanSchema, { io: 'output', unrepresentable: 'throw' });

let check: ValidateFunction<SpawnPlan> | undefined;

// Why on first use: loading Ajv and compiling the schema cost ~80 ms, a tenth of a cold start on a
// slow machine, and nothing before the first plan needs them. The schema is zod's own output; the
// unit tests check it against the JSON Schema meta-schema, so it is not checked again here.
function compiled(): ValidateFunction<SpawnPlan> {
  if (check === undefined) {
    const { Ajv2020 } = createRequire(import.meta.url)(
      'ajv/dist/2020.js',
    ) as typeof import('ajv/dist/2020.js');
    check = new Ajv2020({ strict: true, validateSchema: false }).compile<SpawnPlan>(spawnPlanJsonSchema());
  }
  return check;
}

/** A plan the response schema refuses (a bug or a tampered entry, never something to send). */
export class PlanRefused extends Error {}

/** The plan as the response body, once the response schema has accepted it. */
export function planBody(plan: SpawnPlan): string {
  const accepts = compiled();
  if (!accepts(plan)) {
    const [first] = accepts.errors ?? [];
    throw new PlanRefused(
      `the plan fails its response schema at ${first?.instancePath || '/'}: ${first?.message ?? 'invalid'}`,
    );
  }
  return JSON.stringify(plan);
}
