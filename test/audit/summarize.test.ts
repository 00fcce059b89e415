import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { messageDeliveredEvent, publishAllowedEvent } from '../../src/audit/build.js'
import { isSinkHealthy } from '../../src/audit/health.js'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { SummarizingAuditSink } from '../../src/audit/summarize.js'
import { ManualClock } from '../../src/broker/clock.js'
import type { ClientInfo, Message, Qos } from '../../src/broker/types.js'
import { denied } from './helpers.js'

function client(clientId: string): ClientInfo {
  return {
    clientId,
    identity: { id: clientId, tenant: 'clinic-a' },
    username: 'user-should-not-appear',
    listener: 'mqtts',
    remoteAddress: '127.0.0.1',
    protocolVersion: 5,
  }
}

function message(topic: string, bytes: number, qos: Qos = 1): Message {
  return { topic, payload: Buffer.alloc(bytes, 0x41), qos, retain: false }
}

function setup(mode?: 'summary' | 'per-message') {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 10))
  const memory = new MemoryAuditSink('n1', clock)
  const sink = new SummarizingAuditSink(memory, { clock, mode })
  return { clock, memory, sink }
}

describe('traffic summaries (C25 volume control)', () => {
  it('sums allowed publishes per client, topic and minute with counts, bytes and QoS', () => {
    const { clock, memory, sink } = setup()
    const a = client('pump-1')
    sink.emit(publishAllowedEvent(a, message('clinic-a/pump/1', 10, 1)))
    sink.emit(publishAllowedEvent(a, message('clinic-a/pump/1', 30, 2)))
    sink.emit(publishAllowedEvent(a, message('clinic-a/pump/2', 5, 0)))
    sink.emit(messageDeliveredEvent(client('nurse-app'), message('clinic-a/pump/1', 10)))
    assert.equal(memory.events.length, 0)

    // The window ends at 12:01:00; its timer emits the summaries.
    clock.advance(50_000)
    const summaries = memory.ofType('traffic.summary')
    assert.equal(summaries.length, 3)
    const pump1 = summaries.find((s) => s.direction === 'in' && s.topic === 'clinic-a/pump/1')
    assert.equal(pump1?.messages, 2)
    assert.equal(pump1?.bytes, 40)
    assert.deepEqual(pump1?.byQos, [0, 1, 1])
    assert.equal(pump1?.from, '2026-06-01T12:00:00.000Z')
    assert.equal(pump1?.to, '2026-06-01T12:01:00.000Z')
    const out = summaries.find((s) => s.direction === 'out')
    assert.equal(out?.clientId, 'nurse-app')
    assert.equal(out?.tenant, 'clinic-a')
  })

  it('starts a new summary when the minute changes', () => {
    const { clock, memory, sink } = setup()
    sink.emit(publishAllowedEvent(client('pump-1'), message('t/1', 1)))
    clock.advance(60_000)
    sink.emit(publishAllowedEvent(client('pump-1'), message('t/1', 1)))
    clock.advance(60_000)
    const froms = memory.ofType('traffic.summary').map((s) => s.from)
    assert.deepEqual(froms, ['2026-06-01T12:00:00.000Z', '2026-06-01T12:01:00.000Z'])
  })

  it('passes refusals and other events through one by one, at once', () => {
    const { memory, sink } = setup()
    sink.emit(denied(1))
    sink.emit(denied(2))
    assert.equal(memory.ofType('publish.denied').length, 2)
  })

  it('per-message mode records every allowed publish and delivery', () => {
    const { memory, sink } = setup('per-message')
    sink.emit(publishAllowedEvent(client('pump-1'), message('t/1', 7)))
    sink.emit(messageDeliveredEvent(client('app'), message('t/1', 7)))
    assert.equal(memory.ofType('publish.allowed')[0]?.bytes, 7)
    assert.equal(memory.ofType('message.delivered').length, 1)
  })

  it('close emits the open window, ending at the close time', async () => {
    const { clock, memory, sink } = setup()
    sink.emit(publishAllowedEvent(client('pump-1'), message('t/1', 3)))
    clock.advance(5_000)
    await sink.close()
    const [s] = memory.ofType('traffic.summary')
    assert.equal(s?.to, '2026-06-01T12:00:15.000Z')
  })

  it('builders keep payload length only, never payload bytes or the username (C26)', () => {
    const event = publishAllowedEvent(client('pump-1'), message('t/1', 4))
    const text = JSON.stringify(event)
    assert.equal(text.includes('AAAA'), false)
    assert.equal(text.includes('user-should-not-appear'), false)
  })

  it('reports the inner sink health', () => {
    let ok = true
    const inner = Object.assign(new MemoryAuditSink(), { healthy: () => ok })
    const sink = new SummarizingAuditSink(inner)
    assert.equal(isSinkHealthy(sink), true)
    ok = false
    assert.equal(isSinkHealthy(sink), false)
  })

  it('masks a flagged topic when the summary is built; it never appears raw (C21, C26)', () => {
    const { clock, memory, sink } = setup()
    const a = client('pump-1')
    for (const level of ['(555) 010-1234', 'jane.doe%40example.com', '19610314']) {
      sink.emit(publishAllowedEvent(a, message(`clinic-a/pump/${level}/hr`, 4)))
      sink.emit(messageDeliveredEvent(client('nurse-app'), message(`clinic-a/pump/${level}/hr`, 4)))
    }
    sink.emit(publishAllowedEvent(a, message('clinic-a/pump/fw/v20260105', 4)))
    clock.advance(50_000)
    const topics = memory.ofType('traffic.summary').map((s) => s.topic)
    assert.equal(topics.length, 7)
    assert.deepEqual([...new Set(topics)].sort(), [
      'clinic-a/pump/***/hr',
      'clinic-a/pump/fw/v20260105',
    ])
    const text = JSON.stringify(memory.events)
    for (const raw of ['010-1234', 'jane.doe', '19610314']) assert.equal(text.includes(raw), false)
  })

  it('uses the masker it is given (the policy gate in the broker), in per-message mode too', () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 10))
    const memory = new MemoryAuditSink('n1', clock)
    const maskTopic = (topic: string) => topic.replace('secret', '***')
    const summary = new SummarizingAuditSink(memory, { clock, maskTopic })
    summary.emit(publishAllowedEvent(client('pump-1'), message('t/secret', 1)))
    summary.flush()
    const perMessage = new SummarizingAuditSink(memory, { clock, maskTopic, mode: 'per-message' })
    perMessage.emit(publishAllowedEvent(client('pump-1'), message('t/secret', 1)))
    assert.equal(memory.ofType('traffic.summary')[0]?.topic, 't/***')
    assert.equal(memory.ofType('publish.allowed')[0]?.topic, 't/***')
  })
})
