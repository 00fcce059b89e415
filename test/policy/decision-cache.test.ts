import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TOPIC_DECISIONS_MAX_ENTRIES, TopicDecisions } from '../../src/policy/decision-cache.js'
import { betaDevice, device1, makeGate, message, rpmPolicyInput } from './helpers.js'

type RawRule = Record<string, unknown>

function withoutRule(name: string): Record<string, unknown> {
  const input = rpmPolicyInput()
  input.rules = (input.rules as RawRule[]).filter((r) => r.name !== name)
  return input
}

describe('remembered topic decisions (issue #7 hot path)', () => {
  it('a reload forgets a remembered publish allow', () => {
    const { gate } = makeGate()
    const m = message('acme/rpm/dev-1/status', { online: true })
    // Twice: the second answer comes from the cache.
    assert.equal(gate.authorizePublish(device1, m).allow, true)
    assert.equal(gate.authorizePublish(device1, m).allow, true)
    assert.equal(gate.reload(withoutRule('device-telemetry')).ok, true)
    const after = gate.authorizePublish(device1, m)
    assert.deepEqual(after, { allow: false, reasonCode: 0x87, rule: 'policy.default-deny' })
  })

  it('still applies the class to every message on a remembered topic', () => {
    const { gate } = makeGate()
    const topic = 'acme/rpm/dev-1/status'
    assert.equal(gate.authorizePublish(device1, message(topic, { online: true })).allow, true)
    // Same identity and topic, but QoS 2 is above the rule's maximum.
    const qos2 = gate.authorizePublish(device1, message(topic, { online: true }, { qos: 2 }))
    assert.equal(qos2.allow ? 'allowed' : qos2.rule, 'policy.qos')
  })

  it('audits every cross-tenant attempt: refusals are never remembered', () => {
    const { gate, audit } = makeGate()
    const m = message('acme/rpm/dev-1/status', { online: true })
    assert.equal(gate.authorizePublish(betaDevice, m).allow, false)
    assert.equal(gate.authorizePublish(betaDevice, m).allow, false)
    assert.equal(audit.ofType('tenant.cross-tenant').length, 2)
  })

  it('holds at most TOPIC_DECISIONS_MAX_ENTRIES topics per identity', () => {
    const cache = new TopicDecisions<number>()
    const who = { id: 'dev-1' }
    for (let i = 0; i <= TOPIC_DECISIONS_MAX_ENTRIES; i++) cache.set(who, `t/${i}`, i)
    // The map started over when full: the newest is there, the oldest is not.
    assert.equal(cache.get(who, `t/${TOPIC_DECISIONS_MAX_ENTRIES}`), TOPIC_DECISIONS_MAX_ENTRIES)
    assert.equal(cache.get(who, 't/0'), undefined)
    assert.equal(cache.get({ id: 'dev-1' }, 't/1'), undefined)
  })
})
