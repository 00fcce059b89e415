import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ConnectRequest, PublishVerdict } from '../../src/broker/gate.js'
import type { ClientInfo, Message } from '../../src/broker/types.js'
import { policySchema } from '../../src/config/policy.js'
import { pseudonymize } from '../../src/policy/pseudonym.js'
import {
  betaDevice,
  client,
  clinician,
  deid,
  device1,
  gateway,
  makeGate,
  message,
  rpmPolicyInput,
} from './helpers.js'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

function publish(c: ClientInfo, m: Message) {
  return makeGate().gate.authorizePublish(c, m)
}

function allowed(v: PublishVerdict): Message {
  if (!v.allow) assert.fail(`refused by ${v.rule} (0x${v.reasonCode.toString(16)})`)
  return v.message
}

function json(m: Message): Record<string, unknown> {
  return JSON.parse(m.payload.toString('utf8')) as Record<string, unknown>
}

function connectRequest(c: ClientInfo, extra: Partial<ConnectRequest> = {}): ConnectRequest {
  return { ...c, cleanStart: true, keepAliveSeconds: 60, sessionExpirySeconds: 0, ...extra }
}

describe('C21 PHI-free topic names, filters and client ids', () => {
  it('refuses a publish to clinic/pt/<ssn>/hr with 0x90 and masks it as ***', () => {
    const { gate } = makeGate()
    const topic = 'acme/rpm/123-45-6789/vitals/hr'
    const v = gate.authorizePublish(gateway, message(topic))
    assert.deepEqual(v, { allow: false, reasonCode: 0x90, rule: 'phi.topic.ssn' })
    assert.equal(gate.maskTopic(topic), 'acme/rpm/***/vitals/hr')
    assert.equal(gate.maskTopic('clinic/pt/123-45-6789/hr'), 'clinic/pt/***/hr')
  })

  const filters: Array<[string, string, string]> = [
    ['an e-mail', 'acme/rpm/jane.roe@example.org/vitals/+', 'phi.filter.email'],
    ['a full date', 'acme/rpm/+/vitals/1961-03-14', 'phi.filter.date'],
    ['a site MRN format from config', 'acme/rpm/AC12345678/vitals/+', 'phi.filter.mrn'],
  ]
  for (const [what, filter, rule] of filters) {
    it(`refuses a filter holding ${what} with 0x8F`, () => {
      const v = makeGate().gate.authorizeSubscribe(clinician, { filter, qos: 1 })
      assert.deepEqual(v, { allow: false, reasonCode: 0x8f, rule })
    })
  }

  it('refuses a client id holding a phone number with 0x85 and masks it', () => {
    const { gate } = makeGate()
    const c = client({ id: 'dev-1', role: 'device' }, { clientId: 'pt-212-555-0142' })
    const v = gate.authorizeConnect(connectRequest(c))
    assert.deepEqual(v, { allow: false, reasonCode: 0x85, rule: 'phi.client-id.phone' })
    assert.equal(gate.maskClientId('pt-212-555-0142'), 'pt-***')
  })

  it('keeps PHI out of the audit trail of a cross-tenant attempt', () => {
    const { gate, audit } = makeGate()
    gate.authorizePublish(device1, message('beta/rpm/dev-1/vitals/hr', { hr: 1 }))
    gate.authorizeSubscribe(clinician, { filter: 'beta/pt/1961-03-14/+', qos: 0 })
    const text = JSON.stringify(audit.events)
    assert.doesNotMatch(text, /1961-03-14/)
  })
})

describe('C22 payload minimization and pseudonyms', () => {
  it('drops a field not on the allowlist (a name) and keeps the rest', () => {
    const m = message('acme/rpm/dev-1/vitals/hr', { hr: 72, unit: 'bpm', name: 'Jane Roe' })
    const out = allowed(publish(device1, m))
    assert.deepEqual(json(out), { hr: 72, unit: 'bpm' })
  })

  it('drops a __proto__ field as data, without touching any prototype', () => {
    const raw = '{"__proto__": {"polluted": true}, "hr": 61}'
    const out = allowed(publish(device1, message('acme/rpm/dev-1/vitals/hr', raw)))
    assert.equal(out.payload.toString(), '{"hr":61}')
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })

  it('leaves an allowed payload byte-for-byte unchanged', () => {
    const m = message('acme/rpm/dev-1/vitals/hr', { hr: 72 })
    assert.equal(allowed(publish(device1, m)).payload, m.payload)
  })

  it('refuses an unknown field with 0x99 where the class says refuse', () => {
    const m = message('acme/deid/weekly', { cohort: 'c1', value: 3, zip3: '021' })
    const v = publish(deid, m)
    assert.deepEqual(v, {
      allow: false,
      reasonCode: 0x99,
      rule: 'class.deidentified.payload-field',
    })
  })

  it('gives the same MRN the same pseudonym within a tenant and a different one across tenants', () => {
    const body = { hr: 70, mrn: 'AC00001234' }
    const a1 = json(allowed(publish(device1, message('acme/rpm/dev-1/vitals/hr', body))))
    const a2 = json(allowed(publish(gateway, message('acme/rpm/dev-2/vitals/hr', body))))
    const b = json(allowed(publish(betaDevice, message('beta/rpm/dev-1/vitals/hr', body))))
    assert.equal(a1.mrn, a2.mrn)
    assert.notEqual(a1.mrn, b.mrn)
    assert.match(String(a1.mrn), /^hmac-sha256:acme-2026a:[A-Za-z0-9_-]{43}$/)
    assert.match(String(b.mrn), /^hmac-sha256:beta-2026a:/)
    assert.doesNotMatch(JSON.stringify([a1, b]), /AC00001234/)
  })

  it('refuses to pseudonymize without a key for the tenant (0x83), never falling back to a plain hash', () => {
    const gammaDevice = client({ id: 'dev-1', role: 'device', tenant: 'gamma' })
    const m = message('gamma/rpm/dev-1/vitals/hr', { hr: 70, mrn: 'AC00001234' })
    const v = publish(gammaDevice, m)
    assert.deepEqual(v, { allow: false, reasonCode: 0x83, rule: 'pseudonym.no-key' })
  })

  const bad: Array<[string, Message, number, string]> = [
    [
      'a payload that is not JSON',
      message('acme/rpm/dev-1/vitals/hr', 'hr=72'),
      0x99,
      'class.vitals.payload-json',
    ],
    [
      'a JSON array instead of an object',
      message('acme/rpm/dev-1/vitals/hr', [72]),
      0x99,
      'class.vitals.payload-json',
    ],
    [
      'a wrong MQTT 5 Content Type',
      message('acme/rpm/dev-1/vitals/hr', { hr: 1 }, { properties: { contentType: 'text/plain' } }),
      0x99,
      'class.vitals.content-type',
    ],
    [
      'a payload above the class maximum',
      message('acme/rpm/dev-1/vitals/hr', { hr: 1, plan: 'x'.repeat(5000) }),
      0x97,
      'class.vitals.payload-size',
    ],
    [
      'an object where a pseudonymized value belongs',
      message('acme/rpm/dev-1/vitals/hr', { mrn: { v: 1 } }),
      0x99,
      'class.vitals.payload-field',
    ],
  ]
  for (const [what, m, code, rule] of bad) {
    it(`refuses ${what} with 0x${code.toString(16)}`, () => {
      assert.deepEqual(publish(device1, m), { allow: false, reasonCode: code, rule })
    })
  }

  it('accepts a content type with parameters and states it for a 3.1.1 publisher', () => {
    const withParams = message(
      'acme/rpm/dev-1/vitals/hr',
      { hr: 1 },
      { properties: { contentType: 'application/json; charset=utf-8' } },
    )
    allowed(publish(device1, withParams))
    const v4 = client({ id: 'dev-1', role: 'device' }, { protocolVersion: 4 })
    const out = allowed(
      publish(v4, message('acme/rpm/dev-1/vitals/hr', { hr: 1 }, { properties: undefined })),
    )
    assert.equal(out.properties?.contentType, 'application/json')
  })

  it('passes a binary PHI payload untouched (its class names why)', () => {
    const m = message('acme/rpm/dev-1/vitals/ecg', Buffer.from([1, 2, 3, 250]), {
      properties: { contentType: 'application/octet-stream' },
    })
    assert.equal(allowed(publish(device1, m)).payload, m.payload)
  })
})

describe('pseudonym helper (C22)', () => {
  it('refuses a key shorter than 32 bytes, so no unkeyed or weakly keyed hash is offered', () => {
    const weak = { tenant: 'acme', keyId: 'k0', key: Buffer.alloc(0) }
    assert.throws(() => pseudonymize(weak, 'AC00001234'), { code: 'PHIMQ_PSEUDONYM_KEY' })
  })
})

describe('C23 retained PHI off', () => {
  it('refuses a retained publish on a PHI topic with 0x87', () => {
    const v = publish(device1, message('acme/rpm/dev-1/vitals/hr', { hr: 1 }, { retain: true }))
    assert.deepEqual(v, { allow: false, reasonCode: 0x87, rule: 'class.vitals.retain' })
  })

  it('refuses a will with RETAIN on a PHI topic with CONNACK 0x9A', () => {
    const will = message('acme/rpm/dev-1/vitals/hr', { hr: 0 }, { retain: true })
    const v = makeGate().gate.authorizeConnect(connectRequest(device1, { will }))
    assert.deepEqual(v, { allow: false, reasonCode: 0x9a, rule: 'class.vitals.retain' })
  })

  it('lets an empty retained publish clear a PHI topic', () => {
    const m = message('acme/rpm/dev-1/vitals/hr', Buffer.alloc(0), { retain: true })
    allowed(publish(device1, m))
  })

  it('allows retain on a non-PHI class whose rule allows it', () => {
    const m = message('acme/rpm/dev-1/status', { online: true }, { retain: true })
    allowed(publish(device1, m))
  })

  it('refuses retain where the class allows it but the rule does not', () => {
    const c = client({ id: 'app-1', role: 'clinical-app' })
    const m = message('acme/rpm/dev-1/cmd/stop', { hr: 1 }, { retain: true })
    // The cmd topics fall to the built-in PHI class; the rule refuses first.
    assert.deepEqual(publish(c, m), { allow: false, reasonCode: 0x87, rule: 'policy.retain' })
  })

  it('honours a documented exception until it expires, and caps the message at its expiry', () => {
    const { gate, clock } = makeGate()
    const topic = 'acme/rpm/dev-1/vitals/care-plan'
    const m = message(topic, { plan: 'p1' }, { retain: true })
    const out = allowed(gate.authorizePublish(device1, m))
    assert.equal(out.retain, true)
    assert.ok((out.expiresAt ?? 0) <= clock.now() + DAY_MS)
    assert.equal(gate.authorizeDelivery(clinician, out), true)

    // 2026-07-01: the exception (expires 2026-06-30) has lapsed.
    clock.advance(Date.UTC(2026, 6, 1) - clock.now())
    const again = gate.authorizePublish(device1, m)
    assert.deepEqual(again, { allow: false, reasonCode: 0x87, rule: 'class.vitals.retain' })
    const stored = { ...out, expiresAt: undefined }
    assert.equal(gate.authorizeDelivery(clinician, stored), false)
  })

  it('caps a retained message under an exception at the exception end', () => {
    const { gate, clock } = makeGate()
    clock.advance(Date.UTC(2026, 5, 29, 12) - clock.now())
    // The client asks for a day; the exception ends in 12 hours.
    const expiresAt = clock.now() + DAY_MS
    const m = message('acme/rpm/dev-1/vitals/care-plan', { plan: 'p' }, { retain: true, expiresAt })
    const out = allowed(gate.authorizePublish(device1, m))
    assert.equal(out.expiresAt, Date.UTC(2026, 5, 30))
  })
})

describe('C24 expiry and session caps', () => {
  const cases: Array<[string, number | undefined, number]> = [
    ['applies the default Message Expiry when none is asked', undefined, HOUR_MS],
    ['caps a Message Expiry above the class maximum', 7 * DAY_MS, DAY_MS],
    ['keeps a Message Expiry below the maximum', 60_000, 60_000],
  ]
  for (const [name, askedMs, expectedMs] of cases) {
    it(name, () => {
      const { gate, clock } = makeGate()
      const expiresAt = askedMs === undefined ? undefined : clock.now() + askedMs
      const out = allowed(
        gate.authorizePublish(
          device1,
          message('acme/rpm/dev-1/vitals/hr', { hr: 1 }, { expiresAt }),
        ),
      )
      assert.equal(out.expiresAt, clock.now() + expectedMs)
    })
  }

  it('caps the Message Expiry interval of a will without fixing a time (it counts from sending)', () => {
    const { gate } = makeGate()
    const will = message('acme/rpm/dev-1/vitals/hr', { hr: 0 }, { willExpirySeconds: 999_999 })
    const out = allowed(gate.authorizePublish(device1, will))
    assert.equal(out.willExpirySeconds, 86_400)
    assert.equal(out.expiresAt, undefined)
  })

  it('applies expiry to a 3.1.1 publisher too', () => {
    const { gate, clock } = makeGate()
    const v4 = client({ id: 'dev-1', role: 'device' }, { protocolVersion: 4 })
    const out = allowed(gate.authorizePublish(v4, message('acme/rpm/dev-1/vitals/hr', { hr: 1 })))
    assert.equal(out.expiresAt, clock.now() + HOUR_MS)
  })

  it('never delivers an expired message', () => {
    const { gate, clock } = makeGate()
    const out = allowed(gate.authorizePublish(device1, message('acme/rpm/dev-1/vitals/hr')))
    assert.equal(gate.authorizeDelivery(clinician, out), true)
    clock.advance(HOUR_MS)
    assert.equal(gate.authorizeDelivery(clinician, out), false)
  })

  it('caps Session Expiry per role', () => {
    const { gate } = makeGate()
    const dev = gate.authorizeConnect(connectRequest(device1, { sessionExpirySeconds: 99_999 }))
    assert.deepEqual(dev, { allow: true, sessionExpiryMaxSeconds: 3600 })
    const app = gate.authorizeConnect(connectRequest(clinician))
    assert.deepEqual(app, { allow: true, sessionExpiryMaxSeconds: 86_400 })
  })

  it('refuses a QoS above the maximum on publish with 0x87, and on a will with 0x9B', () => {
    const m = message('acme/rpm/dev-1/vitals/hr', { hr: 1 }, { qos: 2 })
    assert.deepEqual(publish(device1, m), { allow: false, reasonCode: 0x87, rule: 'policy.qos' })
    const v = makeGate().gate.authorizeConnect(connectRequest(device1, { will: m }))
    assert.deepEqual(v, { allow: false, reasonCode: 0x9b, rule: 'policy.qos' })
  })

  it('refuses a QoS above the class maximum even when the rule allows it', () => {
    const input = rpmPolicyInput()
    const rules = input.rules as Array<Record<string, unknown>>
    for (const r of rules) if (r.name === 'device-telemetry') r.maxQos = 2
    const { gate } = makeGate({ policy: policySchema.parse(input) })
    const m = message('acme/rpm/dev-1/vitals/hr', { hr: 1 }, { qos: 2 })
    const v = gate.authorizePublish(device1, m)
    assert.deepEqual(v, { allow: false, reasonCode: 0x87, rule: 'class.vitals.qos' })
  })
})

describe('wills (C15): checked at CONNECT and again when sent', () => {
  it("refuses a will aimed at another device's subtree at CONNECT and via authorizePublish", () => {
    const { gate } = makeGate()
    const will = message('acme/rpm/dev-2/status', { online: false })
    const v = gate.authorizeConnect(connectRequest(device1, { will }))
    assert.deepEqual(v, { allow: false, reasonCode: 0x87, rule: 'policy.default-deny' })
    const sent = gate.authorizePublish(device1, will)
    assert.deepEqual(sent, { allow: false, reasonCode: 0x87, rule: 'policy.default-deny' })
  })

  it('accepts a will at its own status topic', () => {
    const will = message('acme/rpm/dev-1/status', { online: false })
    const v = makeGate().gate.authorizeConnect(connectRequest(device1, { will }))
    assert.equal(v.allow, true)
  })
})
