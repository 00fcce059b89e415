// `npm run bench`: checks that the dev dependencies are installed, then runs the suite
// (bench/run.ts) through tsx in this process. Installs nothing. See docs/performance.md.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const missing = ['tsx', 'aedes', 'mqtt-packet'].filter((name) => {
  try {
    require.resolve(name)
    return false
  } catch {
    return true
  }
})
if (missing.length > 0) {
  console.error(`missing: ${missing.join(', ')} (dependencies of the project): run npm ci`)
  process.exit(2)
}
const { register } = await import('tsx/esm/api')
register()
await import('./run.ts')
