import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { StampedAuditEvent } from '../../src/audit/events.js'
import { type AuditExporter, FileExporter } from '../../src/audit/exporters.js'
import { TrailAuditSink } from '../../src/audit/trail.js'
import { ManualClock } from '../../src/broker/clock.js'
import { denied, tempDir } from './helpers.js'

describe('exporters fed by the trail (C28)', () => {
  it('the trail, the JSON lines, CEF and OCSF files carry the same event ids', async () => {
    const { dir, cleanup } = tempDir()
    try {
      const jsonl = join(dir, 'export.jsonl')
      const cef = join(dir, 'export.cef')
      const ocsf = join(dir, 'export.ocsf.jsonl')
      const sink = new TrailAuditSink({
        dir: join(dir, 'audit'),
        keyPath: join(dir, 'key.pem'),
        nodeId: 'n1',
        clock: new ManualClock(),
        exporters: [
          new FileExporter({ path: jsonl }),
          new FileExporter({ path: cef, format: 'cef' }),
          new FileExporter({ path: ocsf, format: 'ocsf' }),
        ],
      })
      sink.emit(denied(1))
      sink.emit(denied(2))
      await sink.close()

      const trailIds = readFileSync(join(dir, 'audit', 'audit-00000001.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"seq"'))
        .map((l) => {
          const r = JSON.parse(l) as { node: string; seq: number }
          return `${r.node}-${r.seq}`
        })
      const jsonIds = readFileSync(jsonl, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id)
      const cefIds = readFileSync(cef, 'utf8')
        .trim()
        .split('\n')
        .map((l) => /externalId=(\S+)/.exec(l)?.[1])
      assert.deepEqual(trailIds, ['n1-1', 'n1-2', 'n1-3'])
      assert.deepEqual(jsonIds, trailIds)
      assert.deepEqual(cefIds, trailIds)
      const ocsfIds = readFileSync(ocsf, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { metadata: { uid: string } }).metadata.uid)
      assert.deepEqual(ocsfIds, trailIds)
    } finally {
      cleanup()
    }
  })

  it('a throwing exporter neither breaks the trail nor starves the other exporters', async () => {
    const { dir, cleanup } = tempDir()
    try {
      const seen: StampedAuditEvent[] = []
      const broken: AuditExporter = {
        write: () => {
          throw new Error('collector gone')
        },
        close: async () => {},
      }
      const good: AuditExporter = { write: (e) => seen.push(e), close: async () => {} }
      const sink = new TrailAuditSink({
        dir: join(dir, 'audit'),
        keyPath: join(dir, 'key.pem'),
        nodeId: 'n1',
        clock: new ManualClock(),
        exporters: [broken, good],
      })
      sink.emit(denied(1))
      await sink.close()
      assert.equal(seen.length, 2)
    } finally {
      cleanup()
    }
  })
})
