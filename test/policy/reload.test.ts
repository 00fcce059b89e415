import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { clinician, device1, makeGate, message, rpmPolicyInput } from './helpers.js'

type RawRule = Record<string, unknown>

function withoutRule(name: string): Record<string, unknown> {
  const input = rpmPolicyInput()
  input.rules = (input.rules as RawRule[]).filter((r) => r.name !== name)
  return input
}

describe('policy reload (C15: validated first, then takes effect on stored messages)', () => {
  it('swaps in a valid policy, reports what changed and audits it', () => {
    const { gate, audit } = makeGate()
    const result = gate.reload(withoutRule('clinical-read'))
    assert.equal(result.ok, true)
    if (!result.ok) return
    assert.equal(result.version, 2)
    assert.equal(gate.version, 2)
    assert.deepEqual(result.changes.rules, { added: [], removed: ['clinical-read'], changed: [] })
    assert.equal(result.changes.changed, true)
    const [event] = audit.ofType('policy.reloaded')
    assert.deepEqual(event?.changes['rules.removed'], ['clinical-read'])
  })

  it('refuses a queued message and a stored subscription once the rule is gone', () => {
    const { gate } = makeGate()
    const queued = message('acme/rpm/dev-1/vitals/hr')
    assert.equal(gate.authorizeDelivery(clinician, queued), true)
    assert.equal(gate.reload(withoutRule('clinical-read')).ok, true)
    assert.equal(gate.authorizeDelivery(clinician, queued), false)
    const stored = gate.authorizeSubscribe(clinician, { filter: 'acme/rpm/+/vitals/+', qos: 1 })
    assert.deepEqual(stored, { allow: false, reasonCode: 0x87, rule: 'policy.default-deny' })
  })

  it('withholds a retained message once its source loses the right to publish there', () => {
    const { gate } = makeGate()
    const m = message('acme/rpm/dev-1/status', { online: true }, { retain: true })
    const v = gate.authorizePublish(device1, m)
    assert.equal(v.allow, true)
    if (!v.allow) return
    assert.equal(v.message.originIdentity?.id, 'dev-1')
    assert.equal(gate.authorizeDelivery(clinician, v.message), true)
    assert.equal(gate.reload(withoutRule('device-telemetry')).ok, true)
    assert.equal(gate.authorizeDelivery(clinician, v.message), false)
    // A live (not retained) copy already in a queue is still judged by the reader's rights.
    assert.equal(gate.authorizeDelivery(clinician, { ...v.message, retain: false }), true)
  })

  it('reports a reload that changes nothing as unchanged', () => {
    const result = makeGate().gate.reload(rpmPolicyInput())
    assert.equal(result.ok && result.changes.changed, false)
  })

  const invalid: Array<[string, () => unknown, RegExp]> = [
    [
      'a placeholder that is not a whole level',
      () => {
        const input = rpmPolicyInput()
        ;(input.rules as RawRule[])[0] = {
          name: 'bad',
          actions: ['publish'],
          topics: ['{tenant}/dev-{id}/x'],
        }
        return input
      },
      /rules\.0\.topics\.0: topic pattern: a placeholder must be a whole level/,
    ],
    ['an unknown key', () => ({ ...rpmPolicyInput(), extra: 1 }), /policy: unrecognized key/i],
    [
      'guards turned off in prod',
      () => ({ ...rpmPolicyInput(), guards: { enabled: false } }),
      /guards cannot be turned off in prod/,
    ],
    [
      'a missing pseudonym key',
      () => {
        const input = rpmPolicyInput()
        input.pseudonymKeys = [{ tenant: 'acme', keyId: 'k2', env: 'PHIMQ_NOT_SET' }]
        return input
      },
      /pseudonym key k2: PHIMQ_NOT_SET is not set/,
    ],
  ]
  for (const [what, make, why] of invalid) {
    it(`refuses ${what}, says why, and changes nothing`, () => {
      const { gate, audit } = makeGate()
      const result = gate.reload(make())
      assert.equal(result.ok, false)
      if (result.ok) return
      assert.match(result.errors.join('\n'), why)
      assert.equal(gate.version, 1)
      // The old policy is still in force.
      const v = gate.authorizePublish(device1, message('acme/rpm/dev-1/vitals/hr'))
      assert.equal(v.allow, true)
      assert.equal(audit.ofType('policy.reload-refused').length, 1)
    })
  }

  it('refuses a pattern holding PHI and names it only masked', () => {
    const input = rpmPolicyInput()
    ;(input.rules as RawRule[]).push({
      name: 'leak',
      actions: ['subscribe'],
      topics: ['{tenant}/pt/123-45-6789/hr'],
    })
    const { gate, audit } = makeGate()
    const result = gate.reload(input)
    assert.equal(result.ok, false)
    const text = JSON.stringify([result, audit.events])
    assert.match(text, /\{tenant\}\/pt\/\*\*\*\/hr holds phi \(ssn\)/)
    assert.doesNotMatch(text, /123-45-6789/)
  })
})
