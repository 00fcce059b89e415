import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Batch, type SegmentFile, SegmentWriter } from '../../src/audit/segment-writer.js'
import { ManualClock } from '../../src/broker/clock.js'

/** An in-memory file that accepts at most `limit` bytes per call and fails on demand. */
function fakeDisk() {
  const files = new Map<string, Buffer[]>()
  const state = { failNext: 0, limit: Number.POSITIVE_INFINITY, opens: 0 }
  const open = async (path: string): Promise<SegmentFile> => {
    state.opens++
    const chunks = files.get(path) ?? []
    files.set(path, chunks)
    return {
      write: async (buffer, offset) => {
        if (state.failNext > 0) {
          state.failNext--
          throw Object.assign(new Error('no space'), { code: 'ENOSPC' })
        }
        const part = buffer.subarray(offset, offset + Math.min(state.limit, buffer.length - offset))
        chunks.push(Buffer.from(part))
        return part.length
      },
      sync: async () => {},
      close: async () => {},
    }
  }
  const text = (name: string) => Buffer.concat(files.get(`/d/${name}`) ?? []).toString('utf8')
  return { open, state, text }
}

const batch = (segment: string, data: string, flags: Partial<Batch> = {}): Batch => ({
  segment,
  data: Buffer.from(data),
  records: data.split('\n').length - 1,
  sync: false,
  close: false,
  ...flags,
})

describe('segment writer (C27 back-pressure)', () => {
  it('a write that stops half way resumes at the next byte after a failure, never twice', async () => {
    const disk = fakeDisk()
    const clock = new ManualClock()
    const failures: unknown[] = []
    const writer = new SegmentWriter({
      dir: '/d',
      clock,
      open: disk.open,
      retryMs: 500,
      onWritten: () => {},
      onFailed: (err) => failures.push(err),
    })
    disk.state.limit = 4
    // Bytes 0-3 land, then the disk fails; the retry writes from byte 4.
    writer.enqueue(batch('s1', 'abcdefgh\n'))
    disk.state.failNext = 1
    assert.equal(await writer.settle(), false)
    assert.equal(failures.length, 1)
    assert.equal(writer.queuedRecords, 1)

    disk.state.limit = Number.POSITIVE_INFINITY
    clock.advance(500)
    assert.equal(await writer.settle(), true)
    assert.equal(disk.text('s1'), 'abcdefgh\n')
  })

  it('keeps batches in order across segments and closes a segment at its final batch', async () => {
    const disk = fakeDisk()
    const written: string[] = []
    const writer = new SegmentWriter({
      dir: '/d',
      clock: new ManualClock(),
      open: disk.open,
      retryMs: 500,
      onWritten: (b) => written.push(b.segment),
      onFailed: () => {},
    })
    writer.enqueue(batch('s1', 'a\n'))
    writer.enqueue(batch('s1', 'b\n', { close: true }))
    writer.enqueue(batch('s2', 'c\n'))
    assert.equal(await writer.settle(), true)
    assert.deepEqual(written, ['s1', 's1', 's2'])
    assert.equal(disk.text('s1'), 'a\nb\n')
    assert.equal(disk.text('s2'), 'c\n')
    assert.equal(disk.state.opens, 2)
  })

  it('while failing, new batches wait for the retry timer instead of hammering the disk', async () => {
    const disk = fakeDisk()
    const clock = new ManualClock()
    let failures = 0
    const writer = new SegmentWriter({
      dir: '/d',
      clock,
      open: disk.open,
      retryMs: 1000,
      onWritten: () => {},
      onFailed: () => failures++,
    })
    disk.state.failNext = 100
    writer.enqueue(batch('s1', 'a\n'))
    await new Promise((r) => setTimeout(r, 10))
    for (let i = 0; i < 10; i++) writer.enqueue(batch('s1', 'b\n'))
    await new Promise((r) => setTimeout(r, 10))
    assert.equal(failures, 1)
    assert.equal(writer.queuedRecords, 11)
    writer.stop()
  })
})
