// Generates the OpenAPI document from the app's zod route schemas. `npm run openapi` writes it
// to openapi/openapi.json; a test fails when the committed file differs from this output.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/settings.js';

export const OPENAPI_FILE = resolve(import.meta.dirname, '../openapi/openapi.json');

export async function generateOpenApi(): Promise<string> {
  const { config, baseDir } = loadConfig(undefined);
  const app = await buildApp(config, { baseDir });
  await app.ready();
  const document = app.swagger();
  await app.close();
  return `${JSON.stringify(document, null, 2)}\n`;
}

if (process.argv[1] === import.meta.filename) {
  writeFileSync(OPENAPI_FILE, await generateOpenApi());
  process.stdout.write(`wrote ${OPENAPI_FILE}\n`);
}
