import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import type { AuditEvent } from '../../src/audit/events.js'
import { createAuditPipeline } from '../../src/audit/pipeline.js'
import { verifyTrail } from '../../src/audit/verify.js'
import { ManualClock } from '../../src/broker/clock.js'
import { parseConfig } from '../../src/config/load.js'
import { Metrics } from '../../src/monitor/metrics.js'
import { actor, denied, tempDir } from './helpers.js'

const base = `
environment: dev
listeners:
  - { name: dev-plain, type: tcp, host: 127.0.0.1, port: 1883 }
`

let dir: string
let cleanup: () => void

describe('audit pipeline from config', () => {
  beforeEach(() => {
    ;({ dir, cleanup } = tempDir())
  })
  afterEach(() => cleanup())

  it('defaults: a signed trail under dataDir, summaries, alerts on, metrics on loopback', async () => {
    const loaded = parseConfig(base, '<inline>', dir)
    assert.equal(loaded.config.audit.sink, 'trail')
    assert.equal(loaded.config.audit.trail.retentionDays, 2196)
    assert.equal(loaded.config.audit.traffic, 'summary')
    assert.equal(loaded.config.alerts.aclDenialsPerMinute, 20)
    assert.equal(loaded.config.metrics.host, '127.0.0.1')

    const clock = new ManualClock()
    const pipeline = createAuditPipeline({ config: loaded.config, dataDir: loaded.dataDir, clock })
    pipeline.sink.emit(denied(1))
    pipeline.sink.emit({
      type: 'subscribe.denied',
      actor: actor(),
      filter: '#',
      reasonCode: 0x87,
      rule: 'policy.wildcard',
    })
    assert.equal(pipeline.acceptingWork(), true)
    await pipeline.close()

    const trailDir = join(loaded.dataDir, 'audit')
    const report = verifyTrail({ dir: trailDir })
    assert.equal(report.ok, true)
    const text = readFileSync(join(trailDir, 'audit-00000001.jsonl'), 'utf8')
    assert.match(text, /"type":"alert.raised","rule":"wildcard-subscribe"/)
  })

  it('feeds configured file exporters and metrics', async () => {
    const yaml = `${base}audit:
  exporters:
    - { type: file, path: export.cef, format: cef }
`
    const loaded = parseConfig(yaml, '<inline>', dir)
    const metrics = new Metrics({ processMetrics: false })
    const pipeline = createAuditPipeline({
      config: loaded.config,
      dataDir: loaded.dataDir,
      clock: new ManualClock(),
      metrics,
    })
    pipeline.sink.emit(denied(1))
    await pipeline.close()
    const cef = readFileSync(join(loaded.dataDir, 'export.cef'), 'utf8')
    assert.match(cef, /\|publish.denied\|/)
    assert.match(await metrics.render(), /phimq_audit_records_written_total [1-9]/)
  })

  it('rejects a metrics host off loopback unless exposed is set', () => {
    assert.throws(
      () => parseConfig(`${base}metrics: { host: 0.0.0.0 }\n`),
      /metrics\.host.*not loopback/,
    )
    const ok = parseConfig(`${base}metrics: { host: 0.0.0.0, exposed: true }\n`)
    assert.equal(ok.config.metrics.exposed, true)
  })

  it('names an unreadable syslog CA file with PHIMQ_EXPORT_FAILED', () => {
    const yaml = `${base}audit:
  sink: memory
  exporters: []
`
    const loaded = parseConfig(yaml, '<inline>', dir)
    const withSyslog = {
      ...loaded.config,
      audit: {
        ...loaded.config.audit,
        sink: 'trail' as const,
        exporters: [
          {
            type: 'syslog-tls' as const,
            host: '127.0.0.1',
            port: 6514,
            caFile: 'missing-ca.pem',
            message: 'json' as const,
          },
        ],
      },
    }
    assert.throws(() => createAuditPipeline({ config: withSyslog, dataDir: loaded.dataDir }), {
      code: 'PHIMQ_EXPORT_FAILED',
    })
  })

  it('keeps the memory and jsonl sinks', async () => {
    const loaded = parseConfig(`${base}audit: { sink: memory }\n`, '<inline>', dir)
    const pipeline = createAuditPipeline({ config: loaded.config, dataDir: loaded.dataDir })
    pipeline.sink.emit(denied(1))
    assert.equal(pipeline.memory?.ofType('publish.denied').length, 1)
    await pipeline.close()
  })

  it('builds traffic summaries with the topic masker it is given (C21, C26)', async () => {
    const loaded = parseConfig(`${base}audit: { sink: memory }\n`, '<inline>', dir)
    const maskTopic = (topic: string) => topic.replace('dev-7', '***')
    const pipeline = createAuditPipeline({
      config: loaded.config,
      dataDir: loaded.dataDir,
      maskTopic,
    })
    pipeline.sink.emit({
      type: 'publish.allowed',
      actor: actor(),
      topic: 'clinic-a/dev-7/hr',
      qos: 1,
      retain: false,
      bytes: 3,
    })
    await pipeline.close()
    assert.deepEqual(
      pipeline.memory?.ofType('traffic.summary').map((e) => e.topic),
      ['clinic-a/***/hr'],
    )
  })
  it('the jsonl sink feeds the configured exporters with the same ids, numbering on after a restart', async () => {
    const yaml = `${base}audit:
  sink: jsonl
  path: plain.jsonl
  exporters: [{ type: file, path: export.cef, format: cef }]
`
    const loaded = parseConfig(yaml, '<inline>', dir)
    for (let run = 0; run < 2; run++) {
      const pipeline = createAuditPipeline({ config: loaded.config, dataDir: loaded.dataDir })
      // A producer's mistake: payload bytes never reach the line (C26).
      pipeline.sink.emit({
        ...denied(run),
        payload: Buffer.from('078-05-1120'),
      } as unknown as AuditEvent)
      await pipeline.close()
    }
    const plain = readFileSync(join(loaded.dataDir, 'plain.jsonl'), 'utf8')
    const ids = plain
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { node: string; seq: number })
      .map((r) => `${r.node}-${r.seq}`)
    const cefIds = readFileSync(join(loaded.dataDir, 'export.cef'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => /externalId=(\S+)/.exec(l)?.[1])
    assert.equal(ids.length, 2)
    assert.notEqual(ids[0], ids[1], 'a restart does not reuse an event id')
    assert.deepEqual(cefIds, ids)
    assert.equal(plain.includes('078-05-1120'), false)
  })
})
