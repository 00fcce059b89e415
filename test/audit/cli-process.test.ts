import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { TrailAuditSink } from '../../src/audit/trail.js'
import { ManualClock } from '../../src/broker/clock.js'
import { PHIMQ_BIN } from '../helpers/phimq-process.js'
import { tempDir } from './helpers.js'

let dir: string
let cleanup: () => void

/** A trail far larger than a pipe buffer (64 KiB), so the CLI is still writing when the reader leaves. */
async function writeLargeTrail(records: number): Promise<string> {
  // A `dev` config owns the trail, so `--no-auditor` may read it.
  writeFileSync(
    join(dir, 'phimq.yaml'),
    'environment: dev\ndataDir: .\nnodeId: n1\nlisteners:\n  - { name: dev, type: tcp, host: 127.0.0.1, port: 0 }\nmetrics: { enabled: false }\naudit: { trail: { keyFile: key.pem } }\n',
  )
  const trailDir = join(dir, 'audit')
  const sink = new TrailAuditSink({
    dir: trailDir,
    keyPath: join(dir, 'key.pem'),
    nodeId: 'n1',
    // What the broker records at start: `--no-auditor` trusts these, not the config given.
    environment: 'dev',
    configSource: join(dir, 'phimq.yaml'),
    clock: new ManualClock(Date.UTC(2026, 5, 1)),
  })
  for (let i = 0; i < records; i++) {
    sink.emit({ type: 'retained.cleared', topic: `clinic-a/beds/${i}` })
  }
  await sink.close()
  return trailDir
}

describe('phimq audit as a process', () => {
  beforeEach(() => {
    ;({ dir, cleanup } = tempDir())
  })
  afterEach(() => cleanup())

  it('`audit search | head`: a reader that closes early ends the CLI quietly with code 0', async () => {
    const trailDir = await writeLargeTrail(20_000)
    const child = spawn(
      process.execPath,
      [PHIMQ_BIN, 'audit', 'search', '--no-auditor', '--dir', trailDir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const first = await new Promise<string>((resolve) => {
      child.stdout.once('data', (d: Buffer) => resolve(d.toString()))
    })
    // Like `head -1`: read one chunk, then close our end of the pipe.
    child.stdout.destroy()
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    assert.match(first, /audit\.started|retained\.cleared/)
    assert.doesNotMatch(stderr, /EPIPE|Error|\n\s+at /)
    assert.equal(code, 0)
  })
})
