/**
 * PHI in MQTT 5 properties (C21, red-team finding 2): Content Type,
 * Response Topic, Correlation Data and User Properties of a PUBLISH or a
 * will, and CONNECT User Properties, are screened by the PHI detectors.
 * A real broker over loopback TCP with MQTT.js v5 clients; identities are
 * set per connection, as the TLS listener sets them.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import type { Identity } from '../../src/broker/types.js'
import { PhiDetector } from '../../src/phi/detectors.js'
import { PropertyScreen } from '../../src/policy/property-screen.js'
import { nextMessages } from '../helpers/broker.js'
import { type PolicyHarness, startPolicyBroker } from './policy-harness.js'

// Synthetic identifiers only.
const SSN = '123-45-6789'
const EMAIL = 'jane.roe@example.org'
const PHONE = '212-555-0199'
const MRN = 'AC00001234'

const device = (id: string): Identity => ({ tenant: 'acme', role: 'device', id })
const clinician = (id: string): Identity => ({ tenant: 'acme', role: 'clinical-app', id })

/** PUBACK reason code of a vitals publish with these properties (0 = accepted). */
async function pubackCode(
  client: MqttClient,
  topic: string,
  properties: mqtt.IClientPublishOptions['properties'],
): Promise<number> {
  const payload = JSON.stringify({ hr: 72 })
  try {
    await client.publishAsync(topic, payload, {
      qos: 1,
      properties: { contentType: 'application/json', ...properties },
    })
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

describe('PHI in MQTT 5 properties is refused (C21)', () => {
  let h: PolicyHarness
  before(async () => {
    h = await startPolicyBroker()
  })
  after(async () => {
    await h.close()
  })

  /** Every audit event, as text: no raw identifier may be in it. */
  function auditText(): string {
    return JSON.stringify(h.audit.events)
  }

  /**
   * Publish the refused message then a clean one: the subscriber must see
   * only the clean one (ordered delivery, so no waiting on a timer).
   */
  async function refusedAndNotDelivered(
    id: string,
    properties: mqtt.IClientPublishOptions['properties'],
  ): Promise<{ code: number; rules: string[] }> {
    const app = await h.connect(clinician(`app-${id}`))
    await app.subscribeAsync(`acme/rpm/${id}/vitals/+`, { qos: 1 })
    const dev = await h.connect(device(id))
    const arriving = nextMessages(app, 1)
    const before = h.audit.ofType('publish.denied').length
    const code = await pubackCode(dev, `acme/rpm/${id}/vitals/hr`, properties)
    assert.equal(await pubackCode(dev, `acme/rpm/${id}/vitals/spo2`, {}), 0)
    const [got] = await arriving
    assert.equal(got?.topic, `acme/rpm/${id}/vitals/spo2`)
    const rules = h.audit
      .ofType('publish.denied')
      .slice(before)
      .map((e) => e.rule)
    return { code, rules }
  }

  it('a User Property value holding an SSN gets PUBACK 0x83 and one masked audit event', async () => {
    const r = await refusedAndNotDelivered('dev-1', { userProperties: { note: `ssn ${SSN}` } })
    assert.equal(r.code, 0x83)
    assert.deepEqual(r.rules, ['phi.user-property.ssn'])
    assert.ok(!auditText().includes(SSN), 'audit holds the raw value')
  })

  it('a User Property name holding an e-mail address gets PUBACK 0x83', async () => {
    const r = await refusedAndNotDelivered('dev-2', { userProperties: { [EMAIL]: 'x' } })
    assert.equal(r.code, 0x83)
    assert.deepEqual(r.rules, ['phi.user-property.email'])
    assert.ok(!auditText().includes(EMAIL))
  })

  it('a Response Topic holding an SSN gets PUBACK 0x90 (a Topic Name refused)', async () => {
    const r = await refusedAndNotDelivered('dev-3', {
      responseTopic: `acme/rpm/${SSN}/reply`,
    })
    assert.equal(r.code, 0x90)
    assert.deepEqual(r.rules, ['phi.response-topic.ssn'])
    assert.ok(!auditText().includes(SSN))
  })

  it("a Response Topic in another tenant's tree gets PUBACK 0x87 and a cross-tenant event", async () => {
    const r = await refusedAndNotDelivered('dev-4', { responseTopic: 'beta/rpm/dev-1/reply' })
    assert.equal(r.code, 0x87)
    assert.deepEqual(r.rules, ['tenant.cross-tenant'])
    const cross = h.audit.ofType('tenant.cross-tenant').at(-1)
    assert.equal(cross?.op, 'publish.response-topic')
    assert.equal(cross?.topic, 'beta/rpm/dev-1/reply')
  })

  it('textual Correlation Data holding a phone number gets PUBACK 0x83', async () => {
    const correlationData = Buffer.from(`call ${PHONE}`)
    const r = await refusedAndNotDelivered('dev-5', { correlationData })
    assert.equal(r.code, 0x83)
    assert.deepEqual(r.rules, ['phi.correlation-data.phone'])
    assert.ok(!auditText().includes(PHONE))
  })

  it('a Content Type parameter holding a site MRN gets PUBACK 0x83', async () => {
    const contentType = `application/json; patient=${MRN}`
    const r = await refusedAndNotDelivered('dev-6', { contentType })
    assert.equal(r.code, 0x83)
    assert.deepEqual(r.rules, ['phi.content-type.mrn'])
    assert.ok(!auditText().includes(MRN))
  })

  it('clean properties and opaque binary Correlation Data pass untouched', async () => {
    const app = await h.connect(clinician('app-clean'))
    await app.subscribeAsync('acme/rpm/dev-7/vitals/+', { qos: 1 })
    const dev = await h.connect(device('dev-7'))
    const arriving = nextMessages(app, 1)
    // Not valid UTF-8, so opaque: a random request id is never read as text.
    const correlationData = Buffer.from([0xff, 0xfe, 0x31, 0x32, 0x33, 0x2d, 0x34, 0x35])
    const properties = {
      responseTopic: 'acme/rpm/dev-7/cmd/reply',
      correlationData,
      userProperties: { unit: 'bpm', firmware: '2.10.3' },
    }
    assert.equal(await pubackCode(dev, 'acme/rpm/dev-7/vitals/hr', properties), 0)
    const [got] = await arriving
    const p = got?.packet.properties
    assert.equal(p?.responseTopic, 'acme/rpm/dev-7/cmd/reply')
    assert.deepEqual(p?.correlationData, correlationData)
    assert.deepEqual({ ...p?.userProperties }, { unit: 'bpm', firmware: '2.10.3' })
  })

  it('a will whose User Property holds PHI refuses the CONNECT with 0x83', async () => {
    const will = {
      topic: 'acme/rpm/dev-8/status',
      payload: Buffer.from('offline'),
      qos: 0 as const,
      properties: { userProperties: { owner: EMAIL } },
    }
    await assert.rejects(h.connect(device('dev-8'), { will }), { code: 0x83 })
    const refused = h.audit.ofType('connect.refused').at(-1)
    assert.equal(refused?.rule, 'phi.user-property.email')
    assert.ok(!auditText().includes(EMAIL))
  })

  it('a will whose Response Topic holds PHI refuses the CONNECT with 0x90', async () => {
    const will = {
      topic: 'acme/rpm/dev-9/status',
      payload: Buffer.from('offline'),
      qos: 0 as const,
      properties: { responseTopic: `acme/reply/${SSN}` },
    }
    await assert.rejects(h.connect(device('dev-9'), { will }), { code: 0x90 })
    assert.equal(h.audit.ofType('connect.refused').at(-1)?.rule, 'phi.response-topic.ssn')
  })

  it('CONNECT User Properties holding PHI refuse the CONNECT with 0x83', async () => {
    const properties = { userProperties: { contact: `phone ${PHONE}` } }
    await assert.rejects(h.connect(device('dev-10'), { properties }), { code: 0x83 })
    const refused = h.audit.ofType('connect.refused').at(-1)
    assert.equal(refused?.rule, 'phi.connect-user-property.phone')
    assert.ok(!auditText().includes(PHONE))
    // Clean ones connect.
    const ok = await h.connect(device('dev-11'), { properties: { userProperties: { fw: '1' } } })
    assert.equal(ok.connected, true)
  })
})

describe('PropertyScreen', () => {
  const screen = new PropertyScreen(new PhiDetector())

  it('reads Correlation Data as text only when it is valid UTF-8', () => {
    const text = screen.screenMessage({ correlationData: Buffer.from(SSN) })
    assert.equal(text?.rule, 'phi.correlation-data.ssn')
    const opaque = Buffer.concat([Buffer.from([0xc0]), Buffer.from(SSN)])
    assert.equal(screen.screenMessage({ correlationData: opaque }), undefined)
  })

  it('checks every User Property pair, repeated names included', () => {
    const pairs: Array<[string, string]> = [
      ['tag', 'a'],
      ['tag', `dob 1961-03-14`],
    ]
    assert.equal(screen.screenMessage({ userProperties: pairs })?.rule, 'phi.user-property.date')
  })

  it('gives the same answer the second time (clean texts are cached, hits are not)', () => {
    const clean = {
      contentType: 'application/json',
      userProperties: [['unit', 'bpm']] as Array<[string, string]>,
    }
    assert.equal(screen.screenMessage(clean), undefined)
    assert.equal(screen.screenMessage(clean), undefined)
    const phi = { userProperties: [['note', `ssn ${SSN}`]] as Array<[string, string]> }
    assert.equal(screen.screenMessage(phi)?.rule, 'phi.user-property.ssn')
    assert.equal(screen.screenMessage(phi)?.rule, 'phi.user-property.ssn')
  })
})
