/**
 * Writes the JSON Schema of the configuration to `schema/phimq.schema.json`,
 * for editors. Run with `npm run schema`; a test fails when it is stale.
 */
import { writeFileSync } from 'node:fs'
import { z } from 'zod'
import { configSchema } from './schema.js'

/** The JSON Schema text, as committed. */
export function renderJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input' })
  return `${JSON.stringify({ ...schema, title: 'phimq configuration' }, null, 2)}\n`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('../../schema/phimq.schema.json', import.meta.url), renderJsonSchema())
}
