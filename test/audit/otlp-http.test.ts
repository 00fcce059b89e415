import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import type { IncomingHttpHeaders } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { StampedAuditEvent } from '../../src/audit/events.js'
import { OtlpHttpExporter } from '../../src/audit/otlp-http.js'
import { createAuditPipeline } from '../../src/audit/pipeline.js'
import { searchTrail } from '../../src/audit/search.js'
import { ManualClock } from '../../src/broker/clock.js'
import { auditExporterSchema } from '../../src/config/audit.js'
import { parseConfig } from '../../src/config/load.js'
import { AuditExportError } from '../../src/errors.js'
import { createLogger } from '../../src/monitor/logger.js'
import { collector as logCollector } from '../monitor/helpers.js'
import { denied, tempDir } from './helpers.js'
import { makePki, type TestPki } from './tls-certs.js'

interface Received {
  method: string | undefined
  path: string | undefined
  headers: IncomingHttpHeaders
  body: {
    resourceLogs: Array<{
      resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }
      scopeLogs: Array<{
        scope: { name: string }
        logRecords: Array<{ attributes: Array<{ key: string; value: { stringValue?: string } }> }>
      }>
    }>
  }
}

/** A real OTLP/HTTP receiver over TLS on 127.0.0.1; `status` says what it answers next. */
async function receiver(
  pki: TestPki,
  status: () => number = () => 200,
): Promise<{
  server: Server
  url: string
  got: Received[]
  waitFor: (n: number) => Promise<void>
}> {
  const got: Received[] = []
  const server = createServer({ cert: pki.serverCert, key: pki.serverKey }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      const code = status()
      if (code === 200) {
        got.push({
          method: req.method,
          path: req.url,
          headers: req.headers,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'],
        })
      }
      res.writeHead(code, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  const waitFor = async (n: number) => {
    for (let i = 0; i < 500 && got.length < n; i++) await new Promise((r) => setTimeout(r, 10))
    assert.ok(got.length >= n, `receiver got ${got.length} of ${n} requests`)
  }
  return { server, url, got, waitFor }
}

const stamped = (seq: number): StampedAuditEvent =>
  ({ ...denied(seq), time: '2026-06-01T12:00:00.000Z', seq, node: 'n1' }) as StampedAuditEvent

/** The `event.id` attribute of every record of every request, in order. */
function eventIds(got: Received[]): string[] {
  return got.flatMap((r) =>
    r.body.resourceLogs.flatMap((rl) =>
      rl.scopeLogs.flatMap((sl) =>
        sl.logRecords.map(
          (lr) => lr.attributes.find((a) => a.key === 'event.id')?.value.stringValue ?? '?',
        ),
      ),
    ),
  )
}

describe('OTLP/HTTP logs exporter over HTTPS (C28)', () => {
  let trusted: TestPki
  let stranger: TestPki
  let cleanup: () => void

  before(() => {
    const t = tempDir('phimq-otlp-')
    cleanup = t.cleanup
    trusted = makePki(t.dir, 'trusted')
    stranger = makePki(t.dir, 'stranger')
  })
  after(() => cleanup())

  it('POSTs batches of at most maxBatchRecords to /v1/logs as resourceLogs > scopeLogs > logRecords', async () => {
    const r = await receiver(trusted)
    const exporter = new OtlpHttpExporter({
      endpoint: r.url,
      ca: trusted.ca,
      maxBatchRecords: 3,
      clock: new ManualClock(0),
      resource: { instanceId: 'n1' },
    })
    for (let i = 1; i <= 7; i++) exporter.write(stamped(i))
    await r.waitFor(2)
    // The seventh waits for the flush interval (a manual clock here) or close.
    await exporter.close()
    r.server.close()

    assert.deepEqual(
      r.got.map((g) => [g.method, g.path, g.headers['content-type']]),
      Array(3).fill(['POST', '/v1/logs', 'application/json']),
    )
    assert.deepEqual(
      r.got.map((g) => g.body.resourceLogs[0]?.scopeLogs[0]?.logRecords.length),
      [3, 3, 1],
    )
    assert.deepEqual(eventIds(r.got), ['n1-1', 'n1-2', 'n1-3', 'n1-4', 'n1-5', 'n1-6', 'n1-7'])
    const first = r.got[0]?.body.resourceLogs[0]
    assert.equal(first?.scopeLogs[0]?.scope.name, 'phimq.audit')
    assert.deepEqual(
      first?.resource.attributes.map((a) => [a.key, a.value.stringValue]),
      [
        ['service.name', 'phimq'],
        ['service.instance.id', 'n1'],
      ],
    )
    assert.equal(exporter.sent, 7)
    assert.equal(exporter.healthy(), true)
  })

  it('refuses a receiver whose certificate does not chain to the configured CA: nothing sent', async () => {
    const r = await receiver(stranger)
    const out = logCollector()
    const exporter = new OtlpHttpExporter({
      endpoint: r.url,
      ca: trusted.ca,
      maxBatchRecords: 1,
      clock: new ManualClock(0),
      logger: createLogger({ destination: out }),
    })
    exporter.write(stamped(1))
    for (let i = 0; i < 200 && out.lines.length === 0; i++) {
      await new Promise((res) => setTimeout(res, 10))
    }
    assert.equal(r.got.length, 0)
    assert.equal(exporter.healthy(), false)
    const line = JSON.parse(out.lines[0] ?? '{}') as { msg?: string; exporter?: string }
    assert.deepEqual([line.msg, line.exporter], ['export failed', 'otlp'])
    await exporter.close(50)
    r.server.close()
  })

  it('refuses an http:// endpoint, in the exporter and in the config schema', () => {
    assert.throws(
      () => new OtlpHttpExporter({ endpoint: 'http://127.0.0.1:4318', ca: trusted.ca }),
      AuditExportError,
    )
    const parsed = auditExporterSchema.safeParse({ type: 'otlp', endpoint: 'http://siem:4318' })
    assert.equal(parsed.success, false)
  })

  it('a 503 keeps the batch and sends it again after retryMs; nothing lost or doubled', async () => {
    const answers = [503]
    const r = await receiver(trusted, () => answers.shift() ?? 200)
    const clock = new ManualClock(0)
    const exporter = new OtlpHttpExporter({
      endpoint: r.url,
      ca: trusted.ca,
      maxBatchRecords: 2,
      retryMs: 5000,
      clock,
    })
    exporter.write(stamped(1))
    exporter.write(stamped(2))
    // Wait for the 503 to be answered and the retry to be scheduled.
    for (let i = 0; i < 200 && exporter.healthy(); i++)
      await new Promise((res) => setTimeout(res, 10))
    assert.equal(exporter.healthy(), false)
    assert.equal(r.got.length, 0)
    clock.advance(5000)
    await r.waitFor(1)
    assert.deepEqual(eventIds(r.got), ['n1-1', 'n1-2'])
    await exporter.close()
    r.server.close()
    assert.equal(exporter.healthy(), true)
    assert.equal(exporter.sent, 2)
  })

  it('a 400 drops the batch as rejected (not retried) and says so', async () => {
    const r = await receiver(trusted, () => 400)
    const exporter = new OtlpHttpExporter({
      endpoint: r.url,
      ca: trusted.ca,
      maxBatchRecords: 2,
      clock: new ManualClock(0),
    })
    exporter.write(stamped(1))
    exporter.write(stamped(2))
    for (let i = 0; i < 200 && exporter.rejected === 0; i++) {
      await new Promise((res) => setTimeout(res, 10))
    }
    assert.equal(exporter.rejected, 2)
    assert.equal(exporter.healthy(), false)
    await exporter.close()
    r.server.close()
  })

  it('bounds its queue: past maxQueuedBytes the oldest records are dropped and counted', async () => {
    const r = await receiver(trusted)
    const clock = new ManualClock(0)
    const exporter = new OtlpHttpExporter({
      endpoint: r.url,
      ca: trusted.ca,
      maxQueuedBytes: 3 * JSON.stringify(stamped(1)).length * 4,
      flushIntervalMs: 1000,
      clock,
    })
    for (let i = 1; i <= 50; i++) exporter.write(stamped(i))
    assert.ok(exporter.dropped > 0)
    assert.equal(exporter.healthy(), false)
    clock.advance(1000)
    await r.waitFor(1)
    const ids = eventIds(r.got)
    assert.equal(ids.length, 50 - exporter.dropped)
    assert.equal(ids.at(-1), 'n1-50', 'the newest records are kept')
    await exporter.close()
    r.server.close()
  })

  it('from config (audit.exporters type otlp): the receiver gets each event with its trail id', async () => {
    const r = await receiver(trusted)
    const t = tempDir()
    try {
      writeFileSync(join(t.dir, 'otlp-ca.pem'), trusted.ca)
      const yaml = [
        'environment: dev',
        'dataDir: .',
        'nodeId: node-o',
        'listeners:',
        '  - { name: dev, type: tcp, host: 127.0.0.1, port: 1883 }',
        'audit:',
        '  exporters:',
        `    - { type: otlp, endpoint: '${r.url}', caFile: otlp-ca.pem }`,
        '',
      ].join('\n')
      const loaded = parseConfig(yaml, '<inline>', t.dir)
      const pipeline = createAuditPipeline({
        config: loaded.config,
        dataDir: loaded.dataDir,
        clock: new ManualClock(Date.UTC(2026, 5, 1)),
      })
      pipeline.sink.emit(denied(1))
      await pipeline.close()
      const trailIds = [...searchTrail(join(t.dir, 'audit'), { types: ['publish.denied'] })].map(
        (h) => `${h.record.node}-${h.record.seq}`,
      )
      assert.equal(trailIds.length, 1)
      assert.ok(eventIds(r.got).includes(trailIds[0] as string), 'same id in trail and OTLP')
    } finally {
      r.server.close()
      t.cleanup()
    }
  })
})
