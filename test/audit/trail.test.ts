import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { type OpenSegmentFile, openSegmentFile } from '../../src/audit/segment-writer.js'
import { listSegments } from '../../src/audit/segments.js'
import { TrailAuditSink, type TrailOptions } from '../../src/audit/trail.js'
import { verifyTrail } from '../../src/audit/verify.js'
import { ManualClock } from '../../src/broker/clock.js'
import { denied, tempDir } from './helpers.js'

let dir: string
let cleanup: () => void
let clock: ManualClock

function trail(extra: Partial<TrailOptions> = {}): TrailAuditSink {
  return new TrailAuditSink({
    dir: join(dir, 'audit'),
    keyPath: join(dir, 'keys', 'audit-signing.pem'),
    nodeId: 'node-a',
    clock,
    ...extra,
  })
}

function records(name: string): Array<Record<string, unknown>> {
  const text = readFileSync(join(dir, 'audit', name), 'utf8')
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe('audit trail (C27)', () => {
  beforeEach(() => {
    ;({ dir, cleanup } = tempDir())
    clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0, 5))
  })
  afterEach(() => cleanup())

  it('stamps each record with RFC 3339 ms time, rising seq and node, chained by prevHash (C25)', async () => {
    const sink = trail()
    sink.emit(denied(1))
    clock.advance(10)
    sink.emit(denied(2))
    await sink.close()

    const [first] = listSegments(join(dir, 'audit'))
    const recs = records(first as string)
    const events = recs.filter((r) => r.type !== 'audit.checkpoint')
    assert.deepEqual(
      events.map((r) => r.type),
      ['audit.started', 'publish.denied', 'publish.denied'],
    )
    assert.equal(events[1]?.time, '2026-06-01T12:00:00.005Z')
    assert.equal(events[2]?.time, '2026-06-01T12:00:00.015Z')
    assert.deepEqual(
      events.map((r) => r.seq),
      [1, 2, 3],
    )
    assert.ok(events.every((r) => r.node === 'node-a'))
    assert.equal(recs[0]?.prevHash, '0'.repeat(64))
    assert.equal(recs.at(-1)?.type, 'audit.checkpoint')
    assert.equal(recs.at(-1)?.final, true)
    assert.equal(verifyTrail({ dir: join(dir, 'audit') }).ok, true)
  })

  it('makes the signing key with mode 0600 and segments with mode 0600', async () => {
    const sink = trail()
    await sink.close()
    const keyMode = statSync(join(dir, 'keys', 'audit-signing.pem')).mode & 0o777
    assert.equal(keyMode, 0o600)
    const seg = listSegments(join(dir, 'audit'))[0] as string
    assert.equal(statSync(join(dir, 'audit', seg)).mode & 0o777, 0o600)
  })

  it('only the broker user may read the trail: directory 0700, every file 0600, wider modes tightened at start (C27)', async () => {
    await trail().close()
    const trailDir = join(dir, 'audit')
    const mode = (p: string): number => statSync(p).mode & 0o777
    const files = readdirSync(trailDir)
    assert.equal(mode(trailDir), 0o700)
    assert.ok(files.some((f) => f.endsWith('.pub.pem')))
    for (const f of files) assert.equal(mode(join(trailDir, f)), 0o600, f)

    // A restore or an older version left the directory and files open to others.
    chmodSync(trailDir, 0o755)
    for (const f of files) chmodSync(join(trailDir, f), 0o644)
    mkdirSync(join(trailDir, 'pending-reads'), { mode: 0o755 })
    chmodSync(join(trailDir, 'pending-reads'), 0o755)
    await trail().close()
    assert.equal(mode(trailDir), 0o700)
    assert.equal(mode(join(trailDir, 'pending-reads')), 0o700)
    for (const f of readdirSync(trailDir).filter((n) => n !== 'pending-reads')) {
      assert.equal(mode(join(trailDir, f)), 0o600, f)
    }
  })

  it('refuses a signing key readable by others', async () => {
    await trail().close()
    const { chmodSync } = await import('node:fs')
    chmodSync(join(dir, 'keys', 'audit-signing.pem'), 0o644)
    assert.throws(() => trail(), { code: 'PHIMQ_AUDIT_KEY_INVALID' })
  })

  it('an edited byte makes verify name that segment and record index (C27)', async () => {
    const sink = trail()
    for (let i = 0; i < 10; i++) sink.emit(denied(i))
    await sink.close()
    const name = listSegments(join(dir, 'audit'))[0] as string
    const path = join(dir, 'audit', name)
    const lines = readFileSync(path, 'utf8').split('\n')
    // Record 4 is `publish.denied` for ward/3: change one digit of its topic.
    const target = 4
    lines[target] = (lines[target] as string).replace('ward/3', 'ward/8')
    writeFileSync(path, lines.join('\n'))

    const report = verifyTrail({ dir: join(dir, 'audit') })
    assert.equal(report.ok, false)
    assert.equal(report.firstBroken?.segment, name)
    assert.equal(report.firstBroken?.index, target)
    assert.match(report.firstBroken?.problem ?? '', /hash mismatch/)
  })

  it('a forged checkpoint signature is reported', async () => {
    const sink = trail()
    sink.emit(denied(1))
    await sink.close()
    const name = listSegments(join(dir, 'audit'))[0] as string
    const path = join(dir, 'audit', name)
    const recs = records(name)
    assert.equal(recs.at(-1)?.type, 'audit.checkpoint')
    // Re-sign with a stranger's key: hash stays consistent, signature fails.
    const { generateKeyPairSync, sign, createHash } = await import('node:crypto')
    const { privateKey } = generateKeyPairSync('ed25519')
    const lines = readFileSync(path, 'utf8').split('\n')
    const last = lines.length - 2
    const line = lines[last] as string
    const signedText = `${line.slice(0, line.indexOf(',"sig":'))}}`
    const sig = sign(null, Buffer.from(signedText), privateKey).toString('base64')
    const body = `${signedText.slice(0, -1)},"sig":"${sig}"}`
    const hash = createHash('sha256').update(body).digest('hex')
    lines[last] = `${body.slice(0, -1)},"hash":"${hash}"}`
    writeFileSync(path, lines.join('\n'))

    const report = verifyTrail({ dir: join(dir, 'audit') })
    assert.equal(report.firstBroken?.index, last)
    assert.match(report.firstBroken?.problem ?? '', /signature invalid/)
  })

  it('rotates by size; every segment but the open one ends in a final signed checkpoint', async () => {
    const sink = trail({ maxSegmentBytes: 2000 })
    for (let i = 0; i < 30; i++) sink.emit(denied(i))
    await sink.close()
    const segments = listSegments(join(dir, 'audit'))
    assert.ok(segments.length >= 3, `only ${segments.length} segments`)
    for (const name of segments) {
      const last = records(name).at(-1)
      assert.equal(last?.type, 'audit.checkpoint')
      assert.equal(last?.final, true)
    }
    const report = verifyTrail({ dir: join(dir, 'audit') })
    assert.deepEqual(report.problems, [])
    assert.equal(report.ok, true)
  })

  it('writes a checkpoint every N minutes and rotates by age (injected clock)', async () => {
    const sink = trail({ checkpointMinutes: 5, rotateMinutes: 60 })
    sink.emit(denied(1))
    clock.advance(5 * 60_000)
    sink.emit(denied(2))
    clock.advance(5 * 60_000)
    // An idle interval writes no checkpoint.
    clock.advance(5 * 60_000)
    assert.equal(sink.currentSegment, 'audit-00000001.jsonl')
    clock.advance(45 * 60_000)
    assert.equal(sink.currentSegment, 'audit-00000002.jsonl')
    await sink.close()

    const first = records('audit-00000001.jsonl')
    const checkpoints = first.filter((r) => r.type === 'audit.checkpoint')
    assert.deepEqual(
      checkpoints.map((c) => c.final),
      [false, false, true],
    )
    assert.equal(verifyTrail({ dir: join(dir, 'audit') }).ok, true)
  })

  it('a restart continues the chain and the sequence in a new segment', async () => {
    const a = trail()
    a.emit(denied(1))
    await a.close()
    const b = trail()
    b.emit(denied(2))
    await b.close()
    const segments = listSegments(join(dir, 'audit'))
    assert.deepEqual(segments, ['audit-00000001.jsonl', 'audit-00000002.jsonl'])
    const second = records('audit-00000002.jsonl')
    assert.equal(second[0]?.type, 'audit.started')
    assert.equal(second[0]?.seq, 3)
    assert.equal(verifyTrail({ dir: join(dir, 'audit') }).ok, true)
  })

  it('after a crash with a torn write, the restart seals the segment with a signed recovery checkpoint (C27)', async () => {
    const crashed = trail()
    crashed.emit(denied(1))
    assert.ok(await crashed.flush())
    // The process dies mid-write: half a record, no final checkpoint.
    const { appendFileSync } = await import('node:fs')
    const path = join(dir, 'audit', 'audit-00000001.jsonl')
    appendFileSync(path, '{"type":"publish.den')

    // Not sealed yet and nobody writing it: verify fails (its tail is unsigned).
    const before = verifyTrail({ dir: join(dir, 'audit') })
    assert.equal(before.ok, false)
    assert.ok(before.problems.some((p) => /not signed/.test(p.problem)))

    const restarted = trail()
    restarted.emit(denied(2))
    await restarted.close()
    // The old segment now ends in a final checkpoint marked as a crash recovery.
    const sealed = records('audit-00000001.jsonl')
    const seal = sealed.at(-1)
    assert.equal(seal?.type, 'audit.checkpoint')
    assert.equal(seal?.final, true)
    assert.equal(seal?.recovered, true)
    assert.equal(seal?.unsignedRecords, 2, 'audit.started and one denial were unsigned')
    assert.equal(seal?.tornBytes, 20)
    assert.equal(seal?.records, 2)
    assert.doesNotMatch(readFileSync(path, 'utf8'), /publish\.den(?!ied)/, 'torn bytes cut')
    const started = records('audit-00000002.jsonl')[0]
    assert.equal(started?.recoveredSegment, 'audit-00000001.jsonl')
    assert.equal(started?.tornBytes, 20)
    assert.equal(started?.unsignedRecords, 2)

    const report = verifyTrail({ dir: join(dir, 'audit') })
    assert.deepEqual(report.problems, [])
    assert.ok(
      report.warnings.some((w) =>
        /audit-00000001\.jsonl was left open by a crash.*2 record\(s\) were unsigned/.test(w),
      ),
      report.warnings.join('\n'),
    )
  })

  it('an open segment fails verify unless a running broker writes it (live)', async () => {
    const running = trail()
    running.emit(denied(1))
    running.checkpoint()
    running.emit(denied(2))
    assert.ok(await running.flush())

    const stopped = verifyTrail({ dir: join(dir, 'audit') })
    assert.equal(stopped.ok, false)
    assert.match(stopped.firstBroken?.problem ?? '', /not closed.*1 record\(s\) not signed/)

    const live = verifyTrail({ dir: join(dir, 'audit'), live: true })
    assert.deepEqual(live.problems, [])
    assert.ok(live.warnings.some((w) => /1 record\(s\) after the last checkpoint/.test(w)))
    await running.close()
    assert.equal(verifyTrail({ dir: join(dir, 'audit') }).ok, true)
  })

  it('a segment cut short by hand, without a restart note, is reported', async () => {
    const a = trail({ maxSegmentBytes: 1500 })
    for (let i = 0; i < 12; i++) a.emit(denied(i))
    await a.close()
    const path = join(dir, 'audit', 'audit-00000001.jsonl')
    const lines = readFileSync(path, 'utf8').split('\n')
    writeFileSync(path, `${lines.slice(0, 3).join('\n')}\n`)
    const report = verifyTrail({ dir: join(dir, 'audit') })
    assert.equal(report.ok, false)
    assert.equal(report.firstBroken?.segment, 'audit-00000001.jsonl')
  })

  it('batches writes: a burst of events is not one write per event', async () => {
    let writes = 0
    const counting: OpenSegmentFile = async (path) => {
      const file = await openSegmentFile(path)
      return {
        ...file,
        write: (b, o) => {
          writes++
          return file.write(b, o)
        },
      }
    }
    const sink = trail({ openSegmentFile: counting })
    for (let i = 0; i < 500; i++) sink.emit(denied(i))
    clock.advance(200)
    assert.ok(await sink.flush())
    assert.ok(writes <= 3, `${writes} writes for 500 events`)
    await sink.close()
    assert.equal(verifyTrail({ dir: join(dir, 'audit') }).ok, true)
  })

  it('when the disk fails: healthy() is false, records are kept, and all land after recovery', async () => {
    let failing = false
    const flaky: OpenSegmentFile = async (path) => {
      const file = await openSegmentFile(path)
      return {
        ...file,
        write: (b, o) => {
          if (failing) {
            const err = new Error('no space') as NodeJS.ErrnoException
            err.code = 'ENOSPC'
            return Promise.reject(err)
          }
          return file.write(b, o)
        },
      }
    }
    const sink = trail({ openSegmentFile: flaky, retryMs: 1000 })
    assert.ok(await sink.flush())
    assert.equal(sink.healthy(), true)

    failing = true
    for (let i = 0; i < 5; i++) sink.emit(denied(i))
    assert.equal(await sink.flush(), false)
    assert.equal(sink.healthy(), false)

    failing = false
    clock.advance(1000)
    await new Promise((r) => setTimeout(r, 20))
    assert.ok(await sink.flush())
    assert.equal(sink.healthy(), true)
    await sink.close()

    const types = records('audit-00000001.jsonl').map((r) => r.type)
    assert.equal(types.filter((t) => t === 'publish.denied').length, 5)
    assert.ok(types.includes('audit.write-failed'))
    assert.ok(types.includes('audit.write-recovered'))
    assert.equal(verifyTrail({ dir: join(dir, 'audit') }).ok, true)
  })

  it('retention deletes expired segments, records each deletion, keeps younger ones', async () => {
    const sink = trail({ retentionDays: 30, rotateMinutes: 365 * 1440 })
    sink.emit(denied(1))
    sink.rotate()
    clock.advance(20 * 86_400_000)
    sink.emit(denied(2))
    sink.rotate()
    assert.ok(await sink.flush())

    clock.advance(15 * 86_400_000)
    sink.sweepRetention()
    await sink.close()

    const segments = listSegments(join(dir, 'audit'))
    assert.equal(segments.includes('audit-00000001.jsonl'), false)
    assert.equal(segments.includes('audit-00000002.jsonl'), true)
    const deletions = segments.flatMap((s) =>
      records(s).filter((r) => r.type === 'audit.segment-deleted'),
    )
    assert.deepEqual(
      deletions.map((d) => d.segment),
      ['audit-00000001.jsonl'],
    )
    assert.equal(verifyTrail({ dir: join(dir, 'audit') }).ok, true)
  })

  it('a segment removed without a deletion record breaks verification', async () => {
    const sink = trail({ maxSegmentBytes: 1500 })
    for (let i = 0; i < 20; i++) sink.emit(denied(i))
    await sink.close()
    const { unlinkSync } = await import('node:fs')
    unlinkSync(join(dir, 'audit', 'audit-00000001.jsonl'))
    const report = verifyTrail({ dir: join(dir, 'audit') })
    assert.equal(report.ok, false)
    assert.equal(report.firstBroken?.segment, 'audit-00000002.jsonl')
    assert.equal(report.firstBroken?.index, 0)
  })

  it('never writes payload bytes, even when a producer passes a Buffer (C26)', async () => {
    const sink = trail()
    const leaky = {
      ...denied(1),
      payload: Buffer.from('SSN 078-05-1120'),
      extra: Buffer.from('555-867-5309'),
    }
    sink.emit(leaky as never)
    await sink.close()
    const text = readFileSync(join(dir, 'audit', 'audit-00000001.jsonl'), 'utf8')
    assert.equal(text.includes('078-05-1120'), false)
    // Neither the text nor the forms a Buffer takes in JSON or base64.
    assert.equal(text.includes('867-5309'), false)
    assert.equal(text.includes('"data":['), false)
    assert.equal(text.includes(Buffer.from('555-867-5309').toString('base64')), false)
    assert.match(text, /"redactedBytes":12/)
    assert.equal(verifyTrail({ dir: join(dir, 'audit') }).ok, true)
  })
})
