/**
 * A real `phimq start` child process is killed with SIGKILL, so its
 * segment is left open with unsigned records. `phimq audit verify` must
 * fail on it (and write nothing), the next start must seal it with a
 * signed recovery checkpoint, and verify must then pass with a warning
 * naming how many records were unsigned (C27).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { runPhimq, type StartedPhimq, startPhimq } from '../helpers/phimq-process.js'
import { tempDir } from './helpers.js'

let dir: string
let cleanup: () => void
let broker: StartedPhimq | undefined

const CONFIG = [
  'environment: dev',
  'dataDir: .',
  'listeners:',
  '  - { name: dev, type: tcp, host: 127.0.0.1, port: 0 }',
  'metrics: { enabled: false }',
  '',
].join('\n')

/** SHA-256 of every segment file, by name. */
function segmentHashes(trailDir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of readdirSync(trailDir)
    .filter((n) => n.startsWith('audit-'))
    .sort()) {
    out[name] = createHash('sha256')
      .update(readFileSync(join(trailDir, name)))
      .digest('hex')
  }
  return out
}

function completeLines(path: string): string[] {
  if (!existsSync(path)) return []
  const text = readFileSync(path, 'utf8')
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
}

/** Wait (bounded) until the broker's first records reach the disk. */
async function waitForRecords(path: string): Promise<void> {
  for (let i = 0; i < 200 && completeLines(path).length === 0; i++) await sleep(50)
  assert.ok(completeLines(path).length > 0, 'the broker wrote its first records')
}

async function kill9(started: StartedPhimq): Promise<void> {
  const exited = new Promise((resolve) => started.child.once('exit', resolve))
  started.child.kill('SIGKILL')
  await exited
}

describe('a segment left open by SIGKILL (C27)', () => {
  beforeEach(() => {
    ;({ dir, cleanup } = tempDir())
    writeFileSync(join(dir, 'phimq.yaml'), CONFIG)
  })
  afterEach(async () => {
    await broker?.stop()
    broker = undefined
    cleanup()
  })

  it('fails verify until the next start seals it; verify never writes the trail', async () => {
    const trailDir = join(dir, 'audit')
    const first = join(trailDir, 'audit-00000001.jsonl')
    broker = await startPhimq(['-c', 'phimq.yaml'], dir)
    await waitForRecords(first)
    await kill9(broker)
    broker = undefined
    const unsigned = completeLines(first).filter((l) => !l.includes('"audit.checkpoint"')).length

    // No broker runs and the segment is not sealed: its records are unsigned.
    const before = segmentHashes(trailDir)
    const torn = await runPhimq(['audit', 'verify', '--no-auditor', '--dir', 'audit'], dir)
    assert.equal(torn.code, 1, torn.stdout)
    assert.match(torn.stderr, /audit-00000001\.jsonl .*not closed.*record\(s\) not signed/)
    assert.deepEqual(segmentHashes(trailDir), before, 'verify sealed, signed or appended nothing')

    // The next start seals the segment with a recovery checkpoint.
    broker = await startPhimq(['-c', 'phimq.yaml'], dir)
    const seal = JSON.parse(completeLines(first).at(-1) as string) as Record<string, unknown>
    assert.equal(seal.type, 'audit.checkpoint')
    assert.equal(seal.recovered, true)
    assert.equal(seal.unsignedRecords, unsigned)
    const second = join(trailDir, 'audit-00000002.jsonl')
    await waitForRecords(second)
    const started = JSON.parse(completeLines(second)[0] as string) as Record<string, unknown>
    assert.equal(started.type, 'audit.started')
    assert.equal(started.unsignedRecords, unsigned)

    // While it runs: verify passes with the recovery warning and writes nothing itself.
    const sealedHash = segmentHashes(trailDir)['audit-00000001.jsonl']
    const liveBefore = readFileSync(second)
    const ok = await runPhimq(['audit', 'verify', '--no-auditor', '--dir', 'audit'], dir)
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(
      ok.stdout,
      new RegExp(
        `warning: audit-00000001\\.jsonl was left open by a crash and sealed at the next start: ${unsigned} record\\(s\\) were unsigned before the seal`,
      ),
    )
    const after = segmentHashes(trailDir)
    assert.deepEqual(Object.keys(after), ['audit-00000001.jsonl', 'audit-00000002.jsonl'])
    assert.equal(after['audit-00000001.jsonl'], sealedHash, 'the sealed segment is unchanged')
    // Only the broker appends (the read record, within a second): the old bytes are a prefix.
    const liveAfter = readFileSync(second)
    assert.ok(liveAfter.subarray(0, liveBefore.length).equals(liveBefore))

    // Stopped cleanly: every segment sealed, verify passes with no broker.
    await broker.stop()
    broker = undefined
    const stopped = await runPhimq(['audit', 'verify', '--no-auditor', '--dir', 'audit'], dir)
    assert.equal(stopped.code, 0, stopped.stderr)
  })
})
