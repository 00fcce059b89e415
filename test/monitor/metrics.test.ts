import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { messageDeliveredEvent, publishAllowedEvent } from '../../src/audit/build.js'
import type { AuditEvent } from '../../src/audit/events.js'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import type { ClientInfo, Message } from '../../src/broker/types.js'
import { Metrics, MetricsAuditSink } from '../../src/monitor/metrics.js'
import { startMetricsServer } from '../../src/monitor/metrics-server.js'
import { actor, denied } from '../audit/helpers.js'

const client: ClientInfo = {
  clientId: 'patient-078-05-1120',
  identity: { id: 'patient-078-05-1120', tenant: 'clinic-a' },
  listener: 'mqtts',
  remoteAddress: '127.0.0.1',
  protocolVersion: 5,
}
const msg = (qos: 0 | 1 | 2): Message => ({
  topic: 'clinic-a/x',
  payload: Buffer.alloc(5),
  qos,
  retain: false,
})

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.split(' ')[1])
}

describe('metrics (C29 operations)', () => {
  it('counts connections, messages by QoS, bytes and denials from audit events', async () => {
    const metrics = new Metrics({ processMetrics: false })
    const sink = new MetricsAuditSink(new MemoryAuditSink(), metrics)
    const connected: AuditEvent = {
      type: 'client.connected',
      actor: actor(client.clientId),
      protocolVersion: 5,
      cleanStart: true,
      sessionPresent: false,
      sessionExpirySeconds: 0,
    }
    sink.emit(connected)
    sink.emit(connected)
    sink.emit({ type: 'client.disconnected', actor: actor(client.clientId), cause: 'client' })
    sink.emit(publishAllowedEvent(client, msg(2)))
    sink.emit(publishAllowedEvent(client, msg(2)))
    sink.emit(messageDeliveredEvent(client, msg(1)))
    sink.emit(denied(1, client.clientId))
    sink.emit({
      type: 'connect.refused',
      remoteAddress: '10.0.0.1',
      listener: 'mqtts',
      reasonCode: 0x86,
      rule: 'auth.password',
    })

    const text = await metrics.render()
    assert.equal(value(text, 'phimq_connections{listener="mqtts"}'), 1)
    assert.equal(value(text, 'phimq_connections_total{listener="mqtts",result="accepted"}'), 2)
    assert.equal(value(text, 'phimq_connections_total{listener="mqtts",result="refused"}'), 1)
    assert.equal(value(text, 'phimq_messages_received_total{qos="2"}'), 2)
    assert.equal(value(text, 'phimq_messages_sent_total{qos="1"}'), 1)
    assert.equal(value(text, 'phimq_received_payload_bytes_total'), 10)
    assert.equal(
      value(text, 'phimq_denials_total{action="publish",reason="policy.default-deny"}'),
      1,
    )
    assert.equal(value(text, 'phimq_denials_total{action="connect",reason="auth.password"}'), 1)
    // No client id ever becomes a label (C26).
    assert.equal(text.includes('patient'), false)

    // Message counts are tallied between scrapes: a second scrape adds on.
    sink.emit(publishAllowedEvent(client, msg(2)))
    const again = await metrics.render()
    assert.equal(value(again, 'phimq_messages_received_total{qos="2"}'), 3)
    assert.equal(value(again, 'phimq_received_payload_bytes_total'), 15)
    assert.equal(value(again, 'phimq_messages_sent_total{qos="1"}'), 1)
    assert.equal(text.includes('078-05-1120'), false)
  })

  it('turns label values that do not look like fixed names into "other"', async () => {
    const metrics = new Metrics({ processMetrics: false })
    metrics.denied('publish', 'jane.doe@example.org rule')
    metrics.setCertificateExpiries([
      { listener: 'devices', cert: 'server', notAfter: Date.UTC(2027, 0, 1) },
      { listener: 'CN=Jane Doe', cert: 'ca.0', notAfter: Date.UTC(2028, 0, 1) },
    ])
    metrics.observeAuditWrite(10, 2)
    metrics.setQueuedMessages(7)
    const text = await metrics.render()
    assert.equal(value(text, 'phimq_denials_total{action="publish",reason="other"}'), 1)
    assert.equal(
      value(text, 'phimq_certificate_expiry_timestamp_seconds{listener="devices",cert="server"}'),
      Date.UTC(2027, 0, 1) / 1000,
    )
    assert.equal(
      value(text, 'phimq_certificate_expiry_timestamp_seconds{listener="other",cert="ca.0"}'),
      Date.UTC(2028, 0, 1) / 1000,
    )
    assert.equal(value(text, 'phimq_audit_records_written_total'), 10)
    assert.equal(value(text, 'phimq_audit_write_duration_seconds_count'), 1)
    assert.equal(value(text, 'phimq_queued_messages'), 7)
  })

  it('reports audit health 0 while the trail cannot write', async () => {
    const metrics = new Metrics({ processMetrics: false })
    let ok = true
    metrics.watchAuditSink(Object.assign(new MemoryAuditSink(), { healthy: () => ok }))
    assert.equal(value(await metrics.render(), 'phimq_audit_healthy'), 1)
    ok = false
    assert.equal(value(await metrics.render(), 'phimq_audit_healthy'), 0)
  })

  it('serves /metrics on a loopback operations port and nothing else', async () => {
    const metrics = new Metrics()
    const server = await startMetricsServer({ metrics, port: 0 })
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
      const res = await fetch(server.url)
      assert.equal(res.status, 200)
      const text = await res.text()
      assert.match(text, /# TYPE phimq_connections gauge/)
      assert.match(text, /phimq_process_cpu_seconds_total/)
      // Every metric is ours.
      const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1] as string)
      assert.ok(
        names.every((n) => n.startsWith('phimq_')),
        names.join(','),
      )
      const counters = [...text.matchAll(/^# TYPE (\S+) counter/gm)].map((m) => m[1] as string)
      assert.ok(
        counters.every((n) => n.endsWith('_total')),
        counters.join(','),
      )
      const other = await fetch(server.url.replace('/metrics', '/'))
      assert.equal(other.status, 404)
    } finally {
      await server.close()
    }
  })
})
