/**
 * Writes `docs/configuration.md` and `docs/cli.md` (run by `npm run schema`
 * after the JSON Schema).
 */
import { writeFileSync } from 'node:fs'
import { renderCliReference, renderConfigReference } from './reference-docs.js'

writeFileSync(new URL('../../docs/configuration.md', import.meta.url), renderConfigReference())
writeFileSync(new URL('../../docs/cli.md', import.meta.url), renderCliReference())
