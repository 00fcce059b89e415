/**
 * Prints the functions with the most self time in V8 CPU profiles written by
 * `npm run bench -- --cpu-prof` (the hot-path pass of issue #7).
 *
 *   node --import tsx bench/profile-top.ts /tmp/phimq-bench/profiles-<time> [--top 25]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'

interface ProfileNode {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
  }
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

/** Self time in microseconds per "function url:line", summed over profiles. */
export function selfTimes(profiles: readonly CpuProfile[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]))
    p.samples.forEach((id, i) => {
      const frame = byId.get(id)?.callFrame
      // idle time is not a cost; the tsx loader's thread is almost all idle
      if (!frame || frame.functionName === '(idle)') return
      const where = frame.url ? `${relative(process.cwd(), frame.url.replace('file://', ''))}` : ''
      const key = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`
      out.set(key, (out.get(key) ?? 0) + (p.timeDeltas[i] ?? 0))
    })
  }
  return out
}

function profilesIn(path: string): CpuProfile[] {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(path, f))
    : [path]
  return files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as CpuProfile)
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
})
const [target] = positionals
if (target === undefined) {
  console.error('usage: profile-top.ts <profile file or folder> [--top N]')
  process.exit(2)
}
const times = selfTimes(profilesIn(target))
const total = [...times.values()].reduce((a, b) => a + b, 0)
const rows = [...times.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))
console.log('| self % | self ms | function |')
console.log('|---|---|---|')
for (const [key, us] of rows) {
  console.log(`| ${((100 * us) / total).toFixed(1)} | ${(us / 1000).toFixed(0)} | \`${key}\` |`)
}
