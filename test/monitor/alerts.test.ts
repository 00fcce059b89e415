import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AuditEvent } from '../../src/audit/events.js'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { ManualClock } from '../../src/broker/clock.js'
import {
  AlertingAuditSink,
  type AlertingOptions,
  isBroadWildcard,
  type WatchedCertificate,
} from '../../src/monitor/alerts.js'
import { ClockJumpDetector } from '../../src/monitor/clock-jump.js'
import { createLogger } from '../../src/monitor/logger.js'
import { actor, denied } from '../audit/helpers.js'
import { collector } from './helpers.js'

function setup(options: AlertingOptions = {}) {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0))
  const memory = new MemoryAuditSink('n1', clock)
  const out = collector()
  const logger = createLogger({ destination: out })
  const sink = new AlertingAuditSink(memory, { clock, logger, ...options })
  const alerts = (rule?: string) =>
    memory.ofType('alert.raised').filter((a) => rule === undefined || a.rule === rule)
  return { clock, memory, sink, alerts, out }
}

/** Emit `n` events spread evenly over `spanMs`. */
function burst(
  sink: AlertingAuditSink,
  clock: ManualClock,
  n: number,
  spanMs: number,
  make: (i: number) => AuditEvent,
) {
  for (let i = 0; i < n; i++) {
    sink.emit(make(i))
    clock.advance(Math.floor(spanMs / n))
  }
}

const subscribe = (filter: string, clientId = 'app-1', tenant = 'clinic-a'): AuditEvent => ({
  type: 'subscribe.denied',
  actor: actor(clientId, tenant),
  filter,
  reasonCode: 0x87,
  rule: 'policy.wildcard',
})

const refused = (address: string, reasonCode = 0x86): AuditEvent => ({
  type: 'connect.refused',
  remoteAddress: address,
  listener: 'mqtts',
  reasonCode,
  rule: 'auth.password',
})

const qos2 = (): AuditEvent => ({
  type: 'publish.allowed',
  actor: actor('pump-1'),
  topic: 'clinic-a/pump/1',
  qos: 2,
  retain: false,
  bytes: 10,
})

describe('anomaly alerts (C29)', () => {
  it('passes every event through to the inner sink', () => {
    const { sink, memory } = setup()
    sink.emit(denied(1))
    assert.equal(memory.ofType('publish.denied').length, 1)
  })

  it('a "#" subscription attempt raises a high alert at once, and a log line (C16)', () => {
    const { sink, alerts, out } = setup()
    sink.emit(subscribe('#'))
    const [alert] = alerts('wildcard-subscribe')
    assert.equal(alert?.severity, 'high')
    assert.equal(alert?.subject, 'app-1')
    const line = out.lines.map((l) => JSON.parse(l) as Record<string, unknown>)[0]
    assert.equal(line?.msg, 'alert raised')
    assert.equal(line?.rule, 'wildcard-subscribe')
    // The log shows a pseudonym, never the client id (C26).
    assert.match(String(line?.subject), /^~[0-9a-f]{12}$/)
  })

  it('narrow filters raise no wildcard alert; tenant-wide "#" does', () => {
    assert.equal(isBroadWildcard('clinic-a/ward/#', 'clinic-a'), false)
    assert.equal(isBroadWildcard('clinic-a/+/vitals', 'clinic-a'), false)
    assert.equal(isBroadWildcard('+/#', undefined), true)
    assert.equal(isBroadWildcard('clinic-a/#', 'clinic-a'), true)
    const { sink, alerts } = setup()
    sink.emit(subscribe('clinic-a/ward/#'))
    assert.equal(alerts().length, 0)
  })

  it('a cross-tenant refusal raises a high alert at once (C18)', () => {
    const { sink, alerts } = setup()
    sink.emit({ ...subscribe('clinic-b/ward/1'), rule: 'tenant.cross' } as AuditEvent)
    assert.equal(alerts('cross-tenant').length, 1)
  })

  it('21 ACL denials in a minute from one client raise one alert; 20 raise none', () => {
    const under = setup()
    burst(under.sink, under.clock, 20, 55_000, (i) => denied(i))
    assert.equal(under.alerts('acl-denials').length, 0)

    const over = setup()
    burst(over.sink, over.clock, 25, 50_000, (i) => denied(i))
    const raised = over.alerts('acl-denials')
    assert.equal(raised.length, 1)
    assert.equal(raised[0]?.observed, 21)
    assert.equal(raised[0]?.threshold, 20)
  })

  it('ACL denials spread over more than a minute raise nothing', () => {
    const { sink, clock, alerts } = setup()
    burst(sink, clock, 40, 130_000, (i) => denied(i))
    assert.equal(alerts().length, 0)
  })

  it('ACL denials are counted per client', () => {
    const { sink, clock, alerts } = setup()
    burst(sink, clock, 30, 30_000, (i) => denied(i, `c-${i % 2}`))
    assert.equal(alerts().length, 0)
  })

  it('11 auth failures in a minute from one address raise one alert; 10 raise none', () => {
    const under = setup()
    burst(under.sink, under.clock, 10, 50_000, () => refused('10.0.0.9'))
    assert.equal(under.alerts('auth-failures').length, 0)

    const over = setup()
    burst(over.sink, over.clock, 11, 50_000, () => refused('10.0.0.9'))
    assert.equal(over.alerts('auth-failures').length, 1)
    assert.equal(over.alerts()[0]?.subject, '10.0.0.9')
  })

  it('refusals that are not about authentication do not count as auth failures', () => {
    const { sink, clock, alerts } = setup()
    burst(
      sink,
      clock,
      30,
      30_000,
      () => ({ ...refused('10.0.0.9', 0x84), rule: 'protocol.version' }) as AuditEvent,
    )
    assert.equal(alerts().length, 0)
  })

  it('QoS 2 above 5x its 15-minute baseline raises an alert; 5x does not', () => {
    const run = (spike: number) => {
      const s = setup()
      // 15 minutes at 4 QoS 2 publishes per minute.
      for (let m = 0; m < 15; m++) burst(s.sink, s.clock, 4, 60_000, qos2)
      burst(s.sink, s.clock, spike, 30_000, qos2)
      return s.alerts('qos2-spike')
    }
    assert.equal(run(20).length, 0)
    const raised = run(21)
    assert.equal(raised.length, 1)
    assert.equal(raised[0]?.threshold, 20)
  })

  it('a fresh broker with no QoS 2 history raises no spike alert', () => {
    const { sink, clock, alerts } = setup()
    burst(sink, clock, 200, 30_000, qos2)
    assert.equal(alerts().length, 0)
  })

  it('51 retained changes in a minute in one tenant raise an alert; 50 do not', () => {
    const retained = (i: number): AuditEvent =>
      i % 2 === 0
        ? { type: 'retained.set', actor: actor(`d-${i}`), topic: `clinic-a/beds/${i}`, bytes: 3 }
        : { type: 'retained.cleared', actor: actor(`d-${i}`), topic: `clinic-a/beds/${i}` }
    const under = setup()
    burst(under.sink, under.clock, 50, 55_000, retained)
    assert.equal(under.alerts('retained-churn').length, 0)
    const over = setup()
    burst(over.sink, over.clock, 51, 55_000, retained)
    const raised = over.alerts('retained-churn')
    assert.equal(raised.length, 1)
    assert.equal(raised[0]?.subject, 'clinic-a')
  })

  it('a certificate within 30 days of expiry raises an alert; one beyond does not', () => {
    const start = Date.UTC(2026, 5, 1, 12, 0, 0)
    let certs: WatchedCertificate[] = [
      { name: 'server', notAfter: start + 31 * 86_400_000 },
      { name: 'client-ca', notAfter: start + 90 * 86_400_000 },
    ]
    const { alerts, clock } = setup({ certificates: () => certs })
    assert.equal(alerts().length, 0)
    // A day later the server certificate is 30 days out: the hourly check sees it.
    clock.advance(86_400_000 + 3_600_000)
    const raised = alerts('cert-expiry')
    assert.equal(raised.length, 1)
    assert.equal(raised[0]?.subject, 'server')
    assert.equal(raised[0]?.severity, 'medium')
    certs = []
  })

  it('re-raises a rule for the same subject only after the cooldown', () => {
    const { sink, clock, alerts } = setup()
    sink.emit(subscribe('#'))
    clock.advance(30_000)
    sink.emit(subscribe('#'))
    assert.equal(alerts().length, 1)
    clock.advance(31_000)
    sink.emit(subscribe('#'))
    assert.equal(alerts().length, 2)
  })

  it('thresholds come from options (config)', () => {
    const { sink, clock, alerts } = setup({ thresholds: { aclDenialsPerMinute: 3 } })
    burst(sink, clock, 4, 10_000, (i) => denied(i))
    assert.equal(alerts('acl-denials').length, 1)
  })

  it('a wall clock jump of more than 1 s against the monotonic clock is recorded and alerted', () => {
    const { sink, clock, alerts, memory } = setup()
    let mono = 0
    const detector = new ClockJumpDetector({ sink, clock, monotonicNow: () => mono })
    detector.start()
    // Both clocks move together: nothing.
    mono += 10_000
    clock.advance(10_000)
    assert.equal(memory.ofType('clock.jumped').length, 0)
    // The wall clock moves 1.5 s further than the monotonic one.
    mono += 8_500
    clock.advance(10_000)
    const [jump] = memory.ofType('clock.jumped')
    assert.equal(jump?.skewMs, 1500)
    assert.equal(alerts('clock-jump').length, 1)
    // A skew of exactly 1 s is within the limit.
    mono += 9_000
    clock.advance(10_000)
    assert.equal(memory.ofType('clock.jumped').length, 1)
    detector.stop()
  })
})
