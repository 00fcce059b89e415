/**
 * The policy gate in a real broker over loopback TCP, with MQTT.js clients.
 * Identities are set per connection, as the TLS listener will set them.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import type { Identity } from '../../src/broker/types.js'
import { collectFor, nextMessages } from '../helpers/broker.js'
import { rpmPolicyInput } from './helpers.js'
import { type PolicyHarness, startPolicyBroker } from './policy-harness.js'

const device1: Identity = { tenant: 'acme', role: 'device', id: 'dev-1' }
const clinician: Identity = { tenant: 'acme', role: 'clinical-app', id: 'app-1' }
const betaClinician: Identity = { tenant: 'beta', role: 'clinical-app', id: 'app-9' }

/** The reason code MQTT.js reports for a refused PUBLISH (PUBACK >= 0x80). */
async function pubackCode(
  client: MqttClient,
  topic: string,
  body: unknown,
  opts: mqtt.IClientPublishOptions = {},
): Promise<number> {
  const payload = JSON.stringify(body)
  const properties = { contentType: 'application/json', ...opts.properties }
  try {
    await client.publishAsync(topic, payload, { qos: 1, ...opts, properties })
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

/** The SUBACK reason code for one filter; MQTT.js rejects on >= 0x80. */
async function subackCode(client: MqttClient, filter: string): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos: 1 })
    return granted[0]?.qos ?? -1
  } catch (err) {
    const granted = (err as { packet?: { granted?: Array<number | object> } }).packet?.granted
    return typeof granted?.[0] === 'number' ? granted[0] : -1
  }
}

describe('PolicyGate in the broker over MQTT.js (C15–C18, C21–C24)', () => {
  let h: PolicyHarness
  before(async () => {
    h = await startPolicyBroker()
  })
  after(async () => {
    await h.close()
  })

  it("refuses a device publishing into another device's subtree with PUBACK 0x87 (C15)", async () => {
    const dev = await h.connect(device1)
    assert.equal(await pubackCode(dev, 'acme/rpm/dev-2/vitals/hr', { hr: 1 }), 0x87)
    const denied = h.audit.ofType('publish.denied').at(-1)
    assert.equal(denied?.rule, 'policy.default-deny')
  })

  it('refuses SUBSCRIBE "#" with SUBACK 0x87 (C16)', async () => {
    const app = await h.connect(clinician)
    assert.equal(await subackCode(app, '#'), 0x87)
  })

  it('refuses a shared subscription to a forbidden filter (C17)', async () => {
    const app = await h.connect({ ...clinician, id: 'app-2' })
    assert.equal(await subackCode(app, '$share/clinical/acme/rpm/+/cmd/+'), 0x87)
    assert.equal(await subackCode(app, '$share/clinical/acme/rpm/+/vitals/+'), 1)
  })

  it('keeps tenants apart: a cross-tenant subscribe is refused and nothing crosses (C18)', async () => {
    const beta = await h.connect(betaClinician)
    assert.equal(await subackCode(beta, 'acme/rpm/+/vitals/+'), 0x87)
    assert.equal(h.audit.ofType('tenant.cross-tenant').at(-1)?.severity, 'high')
    assert.equal(await subackCode(beta, 'beta/rpm/+/vitals/+'), 1)
    const dev = await h.connect({ ...device1, id: 'dev-3' })
    assert.equal(await pubackCode(dev, 'acme/rpm/dev-3/vitals/hr', { hr: 60 }), 0)
    assert.deepEqual(await collectFor(beta, 200), [])
  })

  it('refuses PHI in a topic with PUBACK 0x90 and in a filter with SUBACK 0x8F (C21)', async () => {
    const dev = await h.connect({ ...device1, id: 'dev-4' })
    assert.equal(await pubackCode(dev, 'acme/rpm/123-45-6789/vitals/hr', { hr: 1 }), 0x90)
    const app = await h.connect({ ...clinician, id: 'app-3' })
    assert.equal(await subackCode(app, 'acme/rpm/jane.roe@example.org/vitals/+'), 0x8f)
  })

  it('refuses a formatted phone, an encoded e-mail and a compact date in its own subtree with 0x90 (C21)', async () => {
    const app = await h.connect({ ...clinician, id: 'app-20' })
    await app.subscribeAsync('acme/rpm/dev-20/vitals/+', { qos: 1 })
    const dev = await h.connect({ ...device1, id: 'dev-20' })
    const own = 'acme/rpm/dev-20/vitals/'
    for (const level of ['(555) 010-1234', '555-010-1234', 'jane.doe%40example.com', '19610314']) {
      assert.equal(await pubackCode(dev, own + level, { hr: 1 }), 0x90, level)
    }
    assert.equal(await pubackCode(dev, `${own}jane.doe@example`, { hr: 1 }), 0x90)
    // The same device may publish in its subtree: the refusals are the PHI, not the rules.
    assert.equal(await pubackCode(dev, `${own}v20260105`, { hr: 1 }), 0)
    const got = await collectFor(app, 200)
    assert.deepEqual(
      got.map((m) => m.topic),
      [`${own}v20260105`],
    )
    const denied = h.audit.ofType('publish.denied').filter((e) => e.actor.clientId === 'dev-20')
    assert.deepEqual(
      denied.map((e) => e.rule),
      [
        'phi.topic.phone',
        'phi.topic.phone',
        'phi.topic.email',
        'phi.topic.date',
        'phi.topic.email',
      ],
    )
    const trail = JSON.stringify(h.audit.events)
    for (const raw of ['010-1234', 'jane.doe', '19610314']) assert.equal(trail.includes(raw), false)
  })

  it('refuses a phone User Property with 0x83 and a phone Response Topic with 0x90 (C21)', async () => {
    const dev = await h.connect({ ...device1, id: 'dev-21' })
    const topic = 'acme/rpm/dev-21/vitals/hr'
    const userProperties = { tel: '(555) 010-1234' }
    assert.equal(await pubackCode(dev, topic, { hr: 1 }, { properties: { userProperties } }), 0x83)
    const responseTopic = 'acme/reply/(555) 010-1234'
    assert.equal(await pubackCode(dev, topic, { hr: 1 }, { properties: { responseTopic } }), 0x90)
    const encoded = { note: 'jane.doe%40example.com' }
    const props = { userProperties: encoded }
    assert.equal(await pubackCode(dev, topic, { hr: 1 }, { properties: props }), 0x83)
    assert.equal(JSON.stringify(h.audit.events).includes('010-1234'), false)
  })

  it('refuses a client id holding PHI with CONNACK 0x85 (C21)', async () => {
    const id = 'pt-212-555-0142'
    await assert.rejects(h.connect({ ...device1, id }), { code: 0x85 })
    // The same detector: any formatted number, an encoded or TLD-less e-mail.
    for (const other of ['pt-555-010-1234', 'jane.doe%40example.com', 'jane.doe@example']) {
      await assert.rejects(h.connect({ ...device1, id: other }), { code: 0x85 }, other)
    }
  })

  it('refuses a client named "#" with CONNACK 0x85 (C16)', async () => {
    await assert.rejects(h.connect(device1, { clientId: '#' }, 'free'), { code: 0x85 })
  })

  it('refuses a will aimed at a forbidden topic at CONNECT (C15)', async () => {
    const will = { topic: 'acme/rpm/dev-2/status', payload: Buffer.from('{}'), qos: 0 as const }
    await assert.rejects(h.connect({ ...device1, id: 'dev-5' }, { will }), { code: 0x87 })
  })

  it('drops a field off the allowlist and pseudonymizes the MRN end to end (C22)', async () => {
    const app = await h.connect({ ...clinician, id: 'app-4' })
    await app.subscribeAsync('acme/rpm/dev-6/vitals/+', { qos: 1 })
    const dev = await h.connect({ ...device1, id: 'dev-6' })
    const arriving = nextMessages(app, 1)
    const body = { hr: 71, name: 'Jane Roe', mrn: 'AC00001234' }
    assert.equal(await pubackCode(dev, 'acme/rpm/dev-6/vitals/hr', body), 0)
    const [got] = await arriving
    const out = JSON.parse(got?.payload.toString() ?? '{}') as Record<string, unknown>
    assert.equal(out.hr, 71)
    assert.equal(out.name, undefined)
    assert.match(String(out.mrn), /^hmac-sha256:acme-2026a:/)
  })

  it('refuses retained PHI; a new subscriber receives nothing (C23)', async () => {
    const dev = await h.connect({ ...device1, id: 'dev-7' })
    const code = await pubackCode(dev, 'acme/rpm/dev-7/vitals/hr', { hr: 1 }, { retain: true })
    assert.equal(code, 0x87)
    const app = await h.connect({ ...clinician, id: 'app-5' })
    await app.subscribeAsync('acme/rpm/dev-7/vitals/+', { qos: 1 })
    assert.deepEqual(await collectFor(app, 200), [])
  })

  it('caps Message Expiry, for a 3.1.1 publisher too (C24)', async () => {
    const app = await h.connect({ ...clinician, id: 'app-6' })
    await app.subscribeAsync('acme/rpm/+/vitals/+', { qos: 1 })
    const dev = await h.connect({ ...device1, id: 'dev-8' })
    const arriving = nextMessages(app, 2)
    const week = { properties: { messageExpiryInterval: 7 * 86_400 } }
    assert.equal(await pubackCode(dev, 'acme/rpm/dev-8/vitals/hr', { hr: 1 }, week), 0)
    const v4 = await h.connect({ ...device1, id: 'dev-9' }, { protocolVersion: 4 })
    await v4.publishAsync('acme/rpm/dev-9/vitals/hr', JSON.stringify({ hr: 2 }), { qos: 1 })
    const got = await arriving
    const expiry = got.map((m) => m.packet.properties?.messageExpiryInterval ?? 0)
    assert.ok(expiry[0]! <= 86_400 && expiry[0]! > 86_000, `first ${expiry[0]}`)
    assert.ok(expiry[1]! <= 3600 && expiry[1]! > 3500, `second ${expiry[1]}`)
    assert.equal(got[1]?.packet.properties?.contentType, 'application/json')
  })

  it('stops delivery on a live subscription once a reload removes the rule (C15)', async () => {
    const app = await h.connect({ ...clinician, id: 'app-7' })
    await app.subscribeAsync('acme/rpm/dev-10/vitals/+', { qos: 1 })
    const input = rpmPolicyInput()
    input.rules = (input.rules as Array<{ name: string }>).filter((r) => r.name !== 'clinical-read')
    const result = h.gate.reload(input)
    assert.equal(result.ok, true)
    const dev = await h.connect({ ...device1, id: 'dev-10' })
    assert.equal(await pubackCode(dev, 'acme/rpm/dev-10/vitals/hr', { hr: 1 }), 0)
    assert.deepEqual(await collectFor(app, 200), [])
    assert.equal(h.gate.reload(rpmPolicyInput()).ok, true)
  })

  it('withholds a retained message whose source lost its rights, from a new subscriber (C15)', async () => {
    const dev = await h.connect({ ...device1, id: 'dev-11' })
    const online = { properties: { contentType: 'text/plain' }, retain: true }
    assert.equal(await pubackCode(dev, 'acme/rpm/dev-11/status', { up: 1 }, online), 0)
    const before = await h.connect({ ...clinician, id: 'app-8' })
    const first = nextMessages(before, 1)
    await before.subscribeAsync('acme/rpm/dev-11/status', { qos: 1 })
    assert.equal((await first)[0]?.packet.retain, true)

    const input = rpmPolicyInput()
    const rules = input.rules as Array<{ name: string }>
    input.rules = rules.filter((r) => r.name !== 'device-telemetry')
    assert.equal(h.gate.reload(input).ok, true)
    const afterReload = await h.connect({ ...clinician, id: 'app-10' })
    await afterReload.subscribeAsync('acme/rpm/dev-11/status', { qos: 1 })
    assert.deepEqual(await collectFor(afterReload, 200), [])
    assert.equal(h.gate.reload(rpmPolicyInput()).ok, true)
  })

  it('delivers nothing to a resumed session whose subscription was revoked while offline (C15)', async () => {
    const session = { clean: false, properties: { sessionExpiryInterval: 600 } }
    const id = { ...clinician, id: 'app-11' }
    const first = await h.connect(id, session)
    await first.subscribeAsync('acme/rpm/dev-12/vitals/+', { qos: 1 })
    await first.endAsync()

    const input = rpmPolicyInput()
    input.rules = (input.rules as Array<{ name: string }>).filter((r) => r.name !== 'clinical-read')
    assert.equal(h.gate.reload(input).ok, true)
    const dev = await h.connect({ ...device1, id: 'dev-12' })
    assert.equal(await pubackCode(dev, 'acme/rpm/dev-12/vitals/hr', { hr: 1 }), 0)

    const resumed = await h.connect(id, session)
    assert.equal(await pubackCode(dev, 'acme/rpm/dev-12/vitals/hr', { hr: 2 }), 0)
    assert.deepEqual(await collectFor(resumed, 200), [])
    assert.equal(h.gate.reload(rpmPolicyInput()).ok, true)
  })

  it('removes a stored subscription the new policy refuses, with one audit event (C15)', async () => {
    const id = { ...clinician, id: 'app-12' }
    const app = await h.connect(id)
    await app.subscribeAsync('acme/rpm/dev-13/vitals/+', { qos: 1 })
    const input = rpmPolicyInput()
    input.rules = (input.rules as Array<{ name: string }>).filter((r) => r.name !== 'clinical-read')
    assert.equal(h.gate.reload(input).ok, true)
    const result = h.broker.reevaluateSessions('policy.reloaded')
    assert.ok(result.subscriptionsRemoved >= 1)
    assert.equal(h.broker.sessions.get('app-12')?.subscriptions.size, 0)
    const revoked = h.audit.ofType('subscription.revoked').filter((e) => e.clientId === 'app-12')
    assert.equal(revoked.length, 1)
    assert.equal(revoked[0]?.cause, 'policy.reloaded')
    assert.equal(h.gate.reload(rpmPolicyInput()).ok, true)
  })

  it('masks PHI in the topics of the audit events the core writes (C21, C26)', async () => {
    const dev = await h.connect({ ...device1, id: 'dev-14' })
    const code = await pubackCode(dev, 'acme/rpm/123-45-6789/vitals/hr', { hr: 1 })
    assert.notEqual(code, 0)
    const denied = h.audit.ofType('publish.denied').filter((e) => e.actor.clientId === 'dev-14')
    assert.equal(denied.length, 1)
    assert.equal(denied[0]?.topic, 'acme/rpm/***/vitals/hr')
    assert.equal(JSON.stringify(h.audit.events).includes('123-45-6789'), false)
  })
})
