/**
 * Refusals before the handshake are summarised, not recorded one by one
 * (red-team finding 5; C13, C25): the first per source address and window
 * is a `tls.handshake` event, the rest one `tls.refused.summary` with the
 * count. Time moves only with a ManualClock.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { ManualClock } from '../../src/broker/clock.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import {
  OVERFLOW_ADDRESS,
  RefusalSummaries,
  SUMMARY_MAX_SOURCES,
} from '../../src/transport/refusal-summary.js'
import { makePki, type Pki, RecordingBroker, waitFor } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

const WINDOW_S = 10

function makeSummaries() {
  const clock = new ManualClock()
  const audit = new MemoryAuditSink('test', clock)
  const summaries = new RefusalSummaries({
    listener: 'devices',
    windowSeconds: WINDOW_S,
    clock,
    audit,
  })
  return { clock, audit, summaries }
}

describe('RefusalSummaries', () => {
  it('records the first refusal per source and window, then one summary with the count', () => {
    const { clock, audit, summaries } = makeSummaries()
    assert.equal(summaries.admitRecord('192.0.2.1', 'RATE_LIMITED'), true)
    for (let i = 0; i < 999; i++) {
      assert.equal(summaries.admitRecord('192.0.2.1', 'RATE_LIMITED'), false)
    }
    // Another source is recorded on its own, once.
    assert.equal(summaries.admitRecord('192.0.2.2', 'RATE_LIMITED'), true)
    assert.equal(audit.events.length, 0, 'nothing before the window ends')

    clock.advance(WINDOW_S * 1000 - 1)
    assert.equal(audit.ofType('tls.refused.summary').length, 0)
    clock.advance(1)
    const summaries1 = audit.ofType('tls.refused.summary')
    assert.equal(summaries1.length, 1)
    assert.equal(summaries1[0]?.remoteAddress, '192.0.2.1')
    assert.equal(summaries1[0]?.reason, 'RATE_LIMITED')
    assert.equal(summaries1[0]?.count, 999)
    assert.equal(summaries1[0]?.from, new Date(Date.UTC(2026, 0, 1)).toISOString())
    assert.equal(summaries1[0]?.to, new Date(Date.UTC(2026, 0, 1) + WINDOW_S * 1000).toISOString())

    // A new window: the first refusal is recorded again.
    assert.equal(summaries.admitRecord('192.0.2.1', 'RATE_LIMITED'), true)
    clock.advance(WINDOW_S * 1000)
    assert.equal(audit.ofType('tls.refused.summary').length, 1, 'no empty summary')
  })

  it('keeps reasons apart and emits pending counts at close, leaving no timer', () => {
    const { clock, audit, summaries } = makeSummaries()
    summaries.admitRecord('192.0.2.1', 'RATE_LIMITED')
    summaries.admitRecord('192.0.2.1', 'RATE_LIMITED')
    summaries.admitRecord('192.0.2.1', 'MAX_CONNECTIONS')
    summaries.admitRecord('192.0.2.1', 'MAX_CONNECTIONS')
    summaries.admitRecord('192.0.2.1', 'MAX_CONNECTIONS')
    summaries.close()
    const counts = audit.ofType('tls.refused.summary').map((e) => [e.reason, e.count])
    assert.deepEqual(counts, [
      ['RATE_LIMITED', 1],
      ['MAX_CONNECTIONS', 2],
    ])
    clock.advance(WINDOW_S * 1000 * 2)
    assert.equal(audit.ofType('tls.refused.summary').length, 2, 'the timer was cancelled')
  })

  it('tracks a bounded number of sources; the rest share one bucket', () => {
    const { clock, audit, summaries } = makeSummaries()
    for (let i = 0; i < SUMMARY_MAX_SOURCES; i++) {
      assert.equal(summaries.admitRecord(`10.0.${i >> 8}.${i & 255}`, 'RATE_LIMITED'), true)
    }
    // Source number SUMMARY_MAX_SOURCES + 1 and later go to the shared bucket.
    assert.equal(summaries.admitRecord('198.51.100.1', 'RATE_LIMITED'), true)
    for (let i = 2; i <= 50; i++) {
      assert.equal(summaries.admitRecord(`198.51.100.${i}`, 'RATE_LIMITED'), false)
    }
    clock.advance(WINDOW_S * 1000)
    const shared = audit.ofType('tls.refused.summary')
    assert.equal(shared.length, 1)
    assert.equal(shared[0]?.remoteAddress, OVERFLOW_ADDRESS)
    assert.equal(shared[0]?.count, 49)
  })
})

describe('mqtts listener under a connect flood', () => {
  const tmp = makeTempDir('phimq-flood-')
  const clock = new ManualClock(Date.now())
  const audit = new MemoryAuditSink('test', clock)
  let pki: Pki
  let listener: Awaited<ReturnType<typeof createMqttsListener>>

  before(async () => {
    pki = await makePki(tmp.dir)
    listener = await createMqttsListener(
      {
        name: 'devices',
        host: '127.0.0.1',
        port: 0,
        ...pki.paths,
        crl: [pki.paths.crl],
        connectionsPerAddress: 1,
        rateWindowSeconds: WINDOW_S,
      },
      new RecordingBroker(),
      { audit, clock },
    )
  })
  after(async () => {
    await listener.close()
    tmp.remove()
  })

  /** A bare TCP connect; resolves with the socket once the server has decided. */
  function bareConnect(): Promise<{ socket: Socket; refused: Promise<void> }> {
    return new Promise((resolve) => {
      const socket = connect(listener.port, '127.0.0.1')
      socket.on('error', () => {})
      const refused = new Promise<void>((r) => socket.once('close', () => r()))
      socket.once('connect', () => resolve({ socket, refused }))
    })
  }

  it('50 refused TCP connects make one tls.handshake and one summary, not 50 events', async () => {
    const first = await bareConnect()
    const flood = await Promise.all(Array.from({ length: 50 }, () => bareConnect()))
    // Each refused socket is closed by the server: all decided.
    await Promise.all(flood.map((c) => c.refused))

    const limited = audit.ofType('tls.handshake').filter((e) => e.reason === 'RATE_LIMITED')
    assert.equal(limited.length, 1)
    assert.equal(audit.ofType('tls.refused.summary').length, 0)

    clock.advance(WINDOW_S * 1000)
    const summary = await waitFor(() => audit.ofType('tls.refused.summary')[0])
    assert.equal(summary.count, 49)
    assert.equal(summary.remoteAddress, '127.0.0.1')
    assert.equal(summary.reason, 'RATE_LIMITED')
    assert.equal(audit.ofType('tls.handshake').filter((e) => e.reason === 'RATE_LIMITED').length, 1)
    first.socket.destroy()
  })
})
