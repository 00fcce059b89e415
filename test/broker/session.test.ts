/**
 * Sessions (MQTT 5.0 section 4.1, 3.1.2.4, 3.1.2.11.2; 3.1.1 section 3.1.2.4):
 * Clean Start / Clean Session, Session Present, Session Expiry (with the
 * clock), its change at DISCONNECT, resumption of subscriptions and queues.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type { IConnackPacket, IDisconnectPacket, IPublishPacket } from 'mqtt-packet'
import mqttPacket from 'mqtt-packet'
import { ManualClock } from '../../src/broker/clock.js'
import { startBroker, type TestBroker, type TestBrokerOptions } from '../helpers/broker.js'
import { RawClient } from '../helpers/raw-client.js'

let tb: TestBroker | undefined
const raws: RawClient[] = []

async function broker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  tb = await startBroker(options)
  return tb
}

async function raw(
  version: 4 | 5,
  fields: Parameters<RawClient['connect']>[0] = {},
): Promise<{ client: RawClient; connack: IConnackPacket }> {
  const result = await RawClient.connected((tb as TestBroker).port, version, fields)
  raws.push(result.client)
  return result
}

afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy()
  await tb?.close()
  tb = undefined
})

/** CONNECT fields for a session that outlives its connection. */
function keep(version: 4 | 5, clientId: string, expirySeconds = 300) {
  return version === 5
    ? { clientId, clean: false, properties: { sessionExpiryInterval: expirySeconds } }
    : { clientId, clean: false }
}

async function subscribe(client: RawClient, topic: string, qos: 0 | 1 | 2): Promise<void> {
  client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] })
  await client.next('suback')
}

/** Close normally: DISCONNECT 0x00, then wait for the broker to close. */
async function disconnect(client: RawClient): Promise<void> {
  client.send({ cmd: 'disconnect' })
  await client.waitClosed()
  // Let the broker run its close handling.
  await new Promise((r) => setTimeout(r, 20))
}

async function publishQos1(pub: RawClient, topic: string, payloads: string[]): Promise<void> {
  let id = 1
  for (const p of payloads) {
    pub.send({
      cmd: 'publish',
      topic,
      payload: Buffer.from(p),
      qos: 1,
      messageId: id++,
      retain: false,
      dup: false,
    })
    await pub.next('puback')
  }
}

for (const version of [4, 5] as const) {
  const v = version === 4 ? '3.1.1' : '5.0'

  describe(`session state, MQTT ${v}`, () => {
    it('sets Session Present 0 when there was no session [MQTT-3.2.2-2] [MQTT-3.2.2-3]', async () => {
      await broker()
      const { connack } = await raw(version, keep(version, 'first'))
      assert.equal(connack.sessionPresent, false)
    })

    it('resumes a kept session with Session Present 1 and its subscriptions [MQTT-3.2.2-3] [MQTT-4.1.0-1]', async () => {
      await broker()
      const a = await raw(version, keep(version, 'resume'))
      await subscribe(a.client, 'ward/7/#', 1)
      await disconnect(a.client)
      const b = await raw(version, keep(version, 'resume'))
      assert.equal(b.connack.sessionPresent, true)
      const { client: pub } = await raw(version, { clientId: 'pub' })
      await publishQos1(pub, 'ward/7/bp', ['still subscribed'])
      const got = (await b.client.next('publish')) as IPublishPacket
      assert.equal(got.payload.toString(), 'still subscribed')
    })

    it('discards a kept session on Clean Start 1: Session Present 0, no subscriptions [MQTT-3.1.2-4] [MQTT-3.2.2-2]', async () => {
      await broker()
      const a = await raw(version, keep(version, 'fresh'))
      await subscribe(a.client, 'ward/8/#', 1)
      await disconnect(a.client)
      const b = await raw(version, { clientId: 'fresh', clean: true })
      assert.equal(b.connack.sessionPresent, false)
      const { client: pub } = await raw(version, { clientId: 'pub' })
      await publishQos1(pub, 'ward/8/bp', ['gone'])
      assert.deepEqual(
        (await b.client.drain(150)).filter((p) => p.cmd === 'publish'),
        [],
      )
    })

    it('delivers QoS 1 messages queued while offline on resumption, in order [MQTT-4.6.0-6] [MQTT-3.1.2-5]', async () => {
      await broker()
      const a = await raw(version, keep(version, 'queued'))
      await subscribe(a.client, 'lab/+', 1)
      await disconnect(a.client)
      const { client: pub } = await raw(version, { clientId: 'lab-pub' })
      const sent = ['r1', 'r2', 'r3', 'r4', 'r5']
      await publishQos1(pub, 'lab/result', sent)
      const b = await raw(version, keep(version, 'queued'))
      assert.equal(b.connack.sessionPresent, true)
      const got: string[] = []
      for (let i = 0; i < sent.length; i++) {
        const p = (await b.client.next('publish')) as IPublishPacket
        assert.equal(p.qos, 1)
        got.push(p.payload.toString())
        b.client.send({ cmd: 'puback', messageId: p.messageId as number })
      }
      assert.deepEqual(got, sent)
    })

    it('ends a session on disconnect when it is not kept: Session Present 0 next time', async () => {
      await broker()
      const a = await raw(version, { clientId: 'short', clean: true })
      await subscribe(a.client, 'x/#', 1)
      await disconnect(a.client)
      const b = await raw(version, keep(version, 'short'))
      assert.equal(b.connack.sessionPresent, false)
    })
  })
}

describe('Session Expiry Interval, MQTT 5.0', () => {
  it('keeps the session until the Session Expiry Interval passes, then deletes it [MQTT-3.1.2-23]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const a = await raw(5, keep(5, 'expiring', 10))
    await disconnect(a.client)
    clock.advance(9_000)
    const b = await raw(5, keep(5, 'expiring', 10))
    assert.equal(b.connack.sessionPresent, true, 'present within the interval')
    await disconnect(b.client)
    clock.advance(10_000)
    assert.equal(tb?.broker.sessions.has('expiring'), false)
    assert.equal(tb?.audit.ofType('session.expired').length, 1)
    const c = await raw(5, keep(5, 'expiring', 10))
    assert.equal(c.connack.sessionPresent, false, 'gone after the interval')
  })

  it('drops messages queued for a session that expired', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const a = await raw(5, keep(5, 'exp-q', 5))
    await subscribe(a.client, 'q/1', 1)
    await disconnect(a.client)
    const { client: pub } = await raw(5, { clientId: 'exp-pub' })
    await publishQos1(pub, 'q/1', ['lost'])
    clock.advance(5_000)
    const b = await raw(5, keep(5, 'exp-q', 5))
    assert.equal(b.connack.sessionPresent, false)
    assert.deepEqual(
      (await b.client.drain(150)).filter((p) => p.cmd === 'publish'),
      [],
    )
  })

  it('ends the session at disconnect when Session Expiry Interval is absent [MQTT-3.1.2-23]', async () => {
    await broker()
    const a = await raw(5, { clientId: 'no-expiry', clean: false })
    await disconnect(a.client)
    const b = await raw(5, { clientId: 'no-expiry', clean: false })
    assert.equal(b.connack.sessionPresent, false)
  })

  it('caps Session Expiry at the configured maximum and says so in CONNACK [MQTT-3.2.2-11]', async () => {
    await broker({ limits: { sessionExpiryMaxSeconds: 60 } })
    const { connack } = await raw(5, keep(5, 'capped', 3600))
    assert.equal(connack.properties?.sessionExpiryInterval, 60)
  })

  it('treats DISCONNECT raising Session Expiry from 0 as a Protocol Error: DISCONNECT 0x82 [MQTT-3.14.2-2]', async () => {
    await broker()
    const { client } = await raw(5, { clientId: 'raise', clean: true })
    client.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } })
    const d = (await client.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x82)
    await client.waitClosed()
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(tb?.broker.sessions.has('raise'), false, 'the session is not kept')
  })

  it('lets DISCONNECT set Session Expiry to 0, ending the session [MQTT-3.1.2-23]', async () => {
    await broker()
    const a = await raw(5, keep(5, 'lower', 300))
    a.client.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } })
    await a.client.waitClosed()
    await new Promise((r) => setTimeout(r, 20))
    const b = await raw(5, keep(5, 'lower', 300))
    assert.equal(b.connack.sessionPresent, false)
  })

  it('lets DISCONNECT change a non-zero Session Expiry, and the new one applies', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const a = await raw(5, keep(5, 'change', 10))
    a.client.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 100 } })
    await a.client.waitClosed()
    await new Promise((r) => setTimeout(r, 20))
    clock.advance(50_000)
    const b = await raw(5, keep(5, 'change', 10))
    assert.equal(b.connack.sessionPresent, true)
  })
})

describe('Clean Session, MQTT 3.1.1', () => {
  it('sets Session Present 0 whenever Clean Session is 1, even with a kept session [MQTT-3.2.2-1]', async () => {
    await broker()
    const a = await raw(4, keep(4, 'cs'))
    await disconnect(a.client)
    const b = await raw(4, { clientId: 'cs', clean: true })
    assert.equal(b.connack.sessionPresent, false)
    await disconnect(b.client)
    const c = await raw(4, keep(4, 'cs'))
    assert.equal(c.connack.sessionPresent, false, 'Clean Session 1 ended the old session')
  })
})

describe('session takeover with a kept session', () => {
  for (const version of [4, 5] as const) {
    it(`hands the session to the new connection: Session Present 1, unacknowledged QoS 1 resent with DUP (v${version}) [MQTT-3.1.4-3] [MQTT-4.4.0-1]`, async () => {
      await broker()
      const old = await raw(version, keep(version, 'moving'))
      await subscribe(old.client, 'move/#', 1)
      const { client: pub } = await raw(version, { clientId: 'mover-pub' })
      await publishQos1(pub, 'move/1', ['in flight'])
      const first = (await old.client.next('publish')) as IPublishPacket
      const fresh = await raw(version, keep(version, 'moving'))
      assert.equal(fresh.connack.sessionPresent, true)
      const again = (await fresh.client.next('publish')) as IPublishPacket
      assert.equal(again.dup, true)
      assert.equal(again.messageId, first.messageId)
      await old.client.waitClosed()
      // The subscription came along too.
      await publishQos1(pub, 'move/2', ['after'])
      const next = (await fresh.client.next('publish')) as IPublishPacket
      assert.equal(next.payload.toString(), 'after')
    })
  }

  it('does not publish a delayed will when the session is taken over within the Will Delay [MQTT-3.1.3-9]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const { client: w } = await raw(5, { clientId: 'watch' })
    await subscribe(w, 'wills/#', 0)
    const fields = {
      ...keep(5, 'taken'),
      will: {
        topic: 'wills/taken',
        payload: Buffer.from('gone'),
        qos: 0 as const,
        retain: false,
        properties: { willDelayInterval: 30 },
      },
    }
    await raw(5, fields)
    await raw(5, keep(5, 'taken'))
    clock.advance(60_000)
    const got = (await w.drain(150)).filter((p) => p.cmd === 'publish')
    assert.deepEqual(got, [])
  })

  it('sends at most Receive Maximum queued messages at once on resumption [MQTT-3.3.4-9]', async () => {
    await broker()
    const a = await raw(5, keep(5, 'window'))
    await subscribe(a.client, 'win/#', 1)
    await disconnect(a.client)
    const { client: pub } = await raw(5, { clientId: 'win-pub' })
    await publishQos1(pub, 'win/1', ['1', '2', '3', '4', '5'])
    const b = await raw(5, {
      ...keep(5, 'window'),
      properties: { sessionExpiryInterval: 300, receiveMaximum: 2 },
    })
    const got = await b.client.collect('publish', 2, 200)
    assert.equal(got.length, 2)
  })
})

describe('queued message memory', () => {
  it('queues a copy of a small payload, not a view pinning the read buffer', async () => {
    await broker()
    const a = await raw(5, keep(5, 'offline'))
    await subscribe(a.client, 'pin/#', 1)
    await disconnect(a.client)
    const { client: pub } = await raw(5, { clientId: 'pin-pub' })
    const small = mqttPacket.generate(
      {
        cmd: 'publish',
        topic: 'pin/1',
        payload: Buffer.from('tiny'),
        qos: 1,
        messageId: 1,
        retain: false,
        dup: false,
      },
      { protocolVersion: 5 },
    )
    const padding = mqttPacket.generate(
      {
        cmd: 'publish',
        topic: 'pad',
        payload: Buffer.alloc(100_000),
        qos: 0,
        retain: false,
        dup: false,
      },
      { protocolVersion: 5 },
    )
    // One write, so both packets share the broker's read buffer.
    pub.write(Buffer.concat([small, padding]))
    await pub.next('puback')
    const queued = tb?.broker.sessions.get('offline')?.queue[0]
    assert.equal(queued?.message.payload.toString(), 'tiny')
    const backing = queued?.message.payload.buffer.byteLength ?? 0
    assert.ok(backing <= Buffer.poolSize, `payload backed by ${backing} bytes`)
  })
})
