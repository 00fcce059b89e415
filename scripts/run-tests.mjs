#!/usr/bin/env node
// Runs every test file under test/ (Node 20's runner takes no globs) through tsx.
// Extra arguments are passed on: `npm test -- --test-name-pattern=keepalive`.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

const roots = ['test']
const args = process.argv.slice(2)
const only = args.filter((a) => !a.startsWith('-'))
const flags = args.filter((a) => a.startsWith('-'))

function collect(dir) {
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (entry.name === 'interop' || entry.name === 'fixtures') continue
      out.push(...collect(path))
    } else if (entry.name.endsWith('.test.ts')) out.push(path)
  }
  return out
}

const files = only.length > 0 ? only : roots.flatMap(collect).sort()
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-timeout=60000', ...flags, ...files],
  { stdio: 'inherit' },
)
process.exit(result.status ?? 1)
