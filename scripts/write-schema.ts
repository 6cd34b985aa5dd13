// Publishes the JSON Schema of config.yml, generated from the one zod definition so editors and the
// proxy can never disagree. test/unit/config-schema.test.ts fails when the committed file drifts:
// run `npm run schema` after changing src/shared/config/schema.ts.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { configSchema } from '../src/shared/config/schema.js';

export const schemaId = 'https://github.com/x5iu/llm-proxy/schema/config.schema.json';
export const schemaFile = fileURLToPath(new URL('../schema/config.schema.json', import.meta.url));

/** The schema file's exact text. `io: 'input'` because editors check what an operator writes, where defaulted fields are optional. */
export function renderSchema(): string {
  const generated = z.toJSONSchema(configSchema, { io: 'input' });
  const { $schema, ...rest } = generated;
  // $schema first, then $id and title, so the file reads like a hand-written schema.
  const schema = { $schema, $id: schemaId, title: 'llm-proxy config.yml', ...rest };
  return `${JSON.stringify(schema, null, 2)}\n`;
}

async function main(): Promise<void> {
  await writeFile(schemaFile, renderSchema());
  process.stdout.write(`wrote ${schemaFile}\n`);
}

// Imported by the drift test, run by `npm run schema`: only the latter writes.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
