/**
 * SUBSCRIBE and UNSUBSCRIBE (MQTT 5.0 sections 3.8-3.11, 4.7, 4.8; 3.1.1
 * sections 3.8-3.11): subscription options, Subscription Identifiers,
 * overlapping subscriptions, shared subscriptions and UNSUBACK codes.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type {
  IConnackPacket,
  IDisconnectPacket,
  IPublishPacket,
  ISubackPacket,
  ISubscription,
  IUnsubackPacket,
} from 'mqtt-packet'
import type { Message } from '../../src/broker/types.js'
import { startBroker, type TestBroker } from '../helpers/broker.js'
import { RawClient } from '../helpers/raw-client.js'

let tb: TestBroker | undefined
const raws: RawClient[] = []

async function raw(
  version: 4 | 5,
  fields: Parameters<RawClient['connect']>[0] = {},
): Promise<{ client: RawClient; connack: IConnackPacket }> {
  tb ??= await startBroker()
  const result = await RawClient.connected(tb.port, version, fields)
  raws.push(result.client)
  return result
}

afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy()
  await tb?.close()
  tb = undefined
})

let nextId = 1

async function subscribe(
  client: RawClient,
  subscriptions: ISubscription[],
  subscriptionIdentifier?: number,
): Promise<ISubackPacket> {
  client.send({
    cmd: 'subscribe',
    messageId: nextId++,
    subscriptions,
    ...(subscriptionIdentifier === undefined ? {} : { properties: { subscriptionIdentifier } }),
  })
  return (await client.next('suback')) as ISubackPacket
}

function publish(
  client: RawClient,
  topic: string,
  payload: string,
  qos: 0 | 1 | 2 = 0,
  retain = false,
): void {
  client.send({
    cmd: 'publish',
    topic,
    payload: Buffer.from(payload),
    qos,
    retain,
    dup: false,
    ...(qos > 0 ? { messageId: nextId++ } : {}),
  })
}

/** The PUBLISH packets a client gets: `expected` of them waited for, then any extra. */
async function publishes(client: RawClient, expected = 0): Promise<IPublishPacket[]> {
  return (await client.collect('publish', expected, expected === 0 ? 150 : 100)) as IPublishPacket[]
}

/** A message from the broker itself (no origin), e.g. for '$' topics. */
function brokerMessage(topic: string, qos: 0 | 1 | 2 = 0): Message {
  return { topic, payload: Buffer.from('sys'), qos, retain: false }
}

for (const version of [4, 5] as const) {
  const v = version === 4 ? '3.1.1' : '5.0'

  describe(`subscription basics, MQTT ${v}`, () => {
    it('grants the requested QoS and delivers at the lower of published and granted QoS [MQTT-3.8.4-6] [MQTT-3.3.4-1]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      const suback = await subscribe(sub, [
        { topic: 'q/0', qos: 0 },
        { topic: 'q/1', qos: 1 },
        { topic: 'q/2', qos: 2 },
      ])
      assert.deepEqual(suback.granted, [0, 1, 2])
      const { client: pub } = await raw(version, { clientId: 'p' })
      publish(pub, 'q/0', 'a', 2)
      publish(pub, 'q/1', 'b', 2)
      publish(pub, 'q/2', 'c', 1)
      const got = await publishes(sub, 3)
      assert.deepEqual(
        got.map((p) => [p.topic, p.qos]),
        [
          ['q/0', 0],
          ['q/1', 1],
          ['q/2', 1],
        ],
      )
    })

    it('sends one copy at the highest granted QoS for overlapping subscriptions [MQTT-3.3.4-2] [MQTT-3.3.5-1]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [
        { topic: 'o/+/x', qos: 0 },
        { topic: 'o/#', qos: 2 },
        { topic: 'o/a/x', qos: 1 },
      ])
      const { client: pub } = await raw(version, { clientId: 'p' })
      publish(pub, 'o/a/x', 'once', 2)
      const got = await publishes(sub, 1)
      assert.equal(got.length, 1)
      assert.equal(got[0]?.qos, 2)
    })

    it('replaces a subscription to the same filter instead of adding one [MQTT-3.8.4-3]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [{ topic: 'r/1', qos: 2 }])
      await subscribe(sub, [{ topic: 'r/1', qos: 0 }])
      const { client: pub } = await raw(version, { clientId: 'p' })
      publish(pub, 'r/1', 'x', 2)
      const got = await publishes(sub, 1)
      assert.equal(got.length, 1)
      assert.equal(got[0]?.qos, 0)
    })

    it('stops delivery after UNSUBSCRIBE and answers UNSUBACK with its Packet Identifier [MQTT-3.10.4-1] [MQTT-3.10.4-4]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [{ topic: 'u/1', qos: 0 }])
      sub.send({ cmd: 'unsubscribe', messageId: 4242, unsubscriptions: ['u/1'] })
      const unsuback = (await sub.next('unsuback')) as IUnsubackPacket
      assert.equal(unsuback.messageId, 4242)
      const { client: pub } = await raw(version, { clientId: 'p' })
      publish(pub, 'u/1', 'x')
      assert.equal((await publishes(sub)).length, 0)
    })

    it('does not match $-topics with filters starting with a wildcard [MQTT-4.7.2-1]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [
        { topic: '#', qos: 0 },
        { topic: '+/monitor/clients', qos: 0 },
      ])
      const { client: sys } = await raw(version, { clientId: 'sys' })
      await subscribe(sys, [{ topic: '$SYS/#', qos: 0 }])
      tb?.broker.publish(brokerMessage('$SYS/monitor/clients'), undefined)
      assert.equal((await publishes(sub)).length, 0)
      assert.equal((await publishes(sys, 1)).length, 1)
    })
  })
}

describe('subscription options, MQTT 5.0', () => {
  it('does not send a message back to its publisher with No Local [MQTT-3.8.3-3]', async () => {
    const { client: me } = await raw(5, { clientId: 'me' })
    await subscribe(me, [
      { topic: 'nl/1', qos: 0, nl: true },
      { topic: 'nl/2', qos: 0, nl: false },
    ])
    publish(me, 'nl/1', 'mine')
    publish(me, 'nl/2', 'echo')
    const { client: other } = await raw(5, { clientId: 'other' })
    publish(other, 'nl/1', 'theirs')
    const got = await publishes(me, 2)
    assert.deepEqual(got.map((p) => p.payload.toString()).sort(), ['echo', 'theirs'])
  })

  it('forwards RETAIN 0 on live delivery unless Retain As Published is set [MQTT-3.3.1-12] [MQTT-3.3.1-13]', async () => {
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [
      { topic: 'rap/0', qos: 0, rap: false },
      { topic: 'rap/1', qos: 0, rap: true },
    ])
    const { client: pub } = await raw(5, { clientId: 'p' })
    publish(pub, 'rap/0', 'a', 0, true)
    publish(pub, 'rap/1', 'b', 0, true)
    const got = await publishes(sub, 2)
    assert.deepEqual(
      got.map((p) => [p.topic, p.retain]),
      [
        ['rap/0', false],
        ['rap/1', true],
      ],
    )
  })

  it('sends the Subscription Identifier of the matching subscription [MQTT-3.3.4-3]', async () => {
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: 'id/+', qos: 1 }], 77)
    await subscribe(sub, [{ topic: 'other/+', qos: 1 }])
    const { client: pub } = await raw(5, { clientId: 'p' })
    publish(pub, 'id/a', 'x')
    publish(pub, 'other/a', 'y')
    const got = await publishes(sub, 2)
    assert.equal(got[0]?.properties?.subscriptionIdentifier, 77)
    assert.equal(got[1]?.properties?.subscriptionIdentifier, undefined)
  })

  it('sends every matching Subscription Identifier on one delivery [MQTT-3.3.4-4] [MQTT-3.3.4-5]', async () => {
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: 'multi/+', qos: 1 }], 1)
    await subscribe(sub, [{ topic: 'multi/#', qos: 0 }], 2)
    await subscribe(sub, [{ topic: 'multi/a', qos: 0 }])
    const { client: pub } = await raw(5, { clientId: 'p' })
    publish(pub, 'multi/a', 'x', 1)
    const got = await publishes(sub, 1)
    assert.equal(got.length, 1)
    const ids = got[0]?.properties?.subscriptionIdentifier
    assert.deepEqual([ids].flat().sort(), [1, 2])
  })

  it('drops the Subscription Identifier when the subscription is replaced without one [MQTT-3.8.4-3]', async () => {
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: 'swap/+', qos: 0 }], 5)
    await subscribe(sub, [{ topic: 'swap/+', qos: 0 }])
    tb?.broker.publish(brokerMessage('swap/a'), undefined)
    const got = await publishes(sub, 1)
    assert.equal(got.length, 1)
    assert.equal(got[0]?.properties?.subscriptionIdentifier, undefined)
  })

  it('sends no Subscription Identifier to a 3.1.1 subscriber', async () => {
    const { client: sub } = await raw(4, { clientId: 's4' })
    await subscribe(sub, [{ topic: 'plain/+', qos: 0 }])
    tb?.broker.publish(brokerMessage('plain/a'), undefined)
    const got = await publishes(sub, 1)
    assert.equal(got.length, 1)
  })

  it('refuses a subscription over the per-client limit with 0x97, keeping the others', async () => {
    tb = await startBroker({ limits: { maxSubscriptionsPerClient: 2 } })
    const { client: sub } = await raw(5, { clientId: 's' })
    const suback = await subscribe(sub, [
      { topic: 'lim/1', qos: 1 },
      { topic: 'lim/2', qos: 1 },
    ])
    assert.deepEqual(suback.granted, [1, 1])
    const over = await subscribe(sub, [
      { topic: 'lim/3', qos: 1 },
      { topic: 'lim/1', qos: 0 },
    ])
    assert.deepEqual(over.granted, [0x97, 0], 'replacing an existing one is not a new one')
  })

  it('closes with 0x97 a SUBSCRIBE holding more filters than a client may hold: one audit record', async () => {
    tb = await startBroker({ limits: { maxSubscriptionsPerClient: 2 } })
    const { client: sub } = await raw(5, { clientId: 's' })
    const before = tb.audit.events.length
    sub.send({
      cmd: 'subscribe',
      messageId: nextId++,
      subscriptions: Array.from({ length: 500 }, (_, i) => ({
        topic: `lim/${i}`,
        qos: 0 as const,
      })),
    })
    const d = (await sub.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x97)
    const added = tb.audit.events.slice(before).filter((e) => e.type !== 'client.disconnected')
    assert.equal(added.length, 1, JSON.stringify(added.map((e) => e.type)))
  })

  for (const version of [4, 5] as const) {
    it(`closes the connection on a SUBSCRIBE or UNSUBSCRIBE with Packet Identifier 0 (${version === 5 ? '5.0' : '3.1.1'}) [MQTT-2.2.1-3]`, async () => {
      const { client: a } = await raw(version, { clientId: 'a' })
      a.send({ cmd: 'subscribe', messageId: 0, subscriptions: [{ topic: 'z', qos: 0 }] })
      await a.waitClosed()
      assert.equal(a.inbox.filter((p) => p.cmd === 'suback').length, 0)
      const { client: b } = await raw(version, { clientId: 'b' })
      b.send({ cmd: 'unsubscribe', messageId: 0, unsubscriptions: ['z'] })
      await b.waitClosed()
      assert.equal(b.inbox.filter((p) => p.cmd === 'unsuback').length, 0)
    })
  }

  it('answers UNSUBSCRIBE with 0x00 for a removed and 0x11 for an absent subscription [MQTT-3.11.3-1]', async () => {
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: 'have', qos: 0 }])
    sub.send({ cmd: 'unsubscribe', messageId: 9, unsubscriptions: ['have', 'never'] })
    const unsuback = (await sub.next('unsuback')) as IUnsubackPacket
    assert.deepEqual(unsuback.granted, [0x00, 0x11])
  })
})

describe('shared subscriptions, MQTT 5.0', () => {
  it('delivers each message to one member of the group, round-robin [MQTT-4.8.2-4]', async () => {
    const members: RawClient[] = []
    for (const id of ['m1', 'm2', 'm3']) {
      const { client } = await raw(5, { clientId: id })
      await subscribe(client, [{ topic: '$share/workers/jobs/+', qos: 1 }])
      members.push(client)
    }
    const { client: pub } = await raw(5, { clientId: 'p' })
    for (let i = 0; i < 6; i++) publish(pub, `jobs/${i}`, `j${i}`, 1)
    const counts: number[] = []
    const seen: string[] = []
    for (const m of members) {
      const got = await publishes(m, 2)
      for (const p of got) m.send({ cmd: 'puback', messageId: p.messageId as number })
      counts.push(got.length)
      seen.push(...got.map((p) => p.payload.toString()))
    }
    assert.deepEqual(counts, [2, 2, 2])
    assert.deepEqual(seen.sort(), ['j0', 'j1', 'j2', 'j3', 'j4', 'j5'])
  })

  it('delivers to a shared group and to a plain subscription of the same client separately', async () => {
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [
      { topic: '$share/g/both/x', qos: 0 },
      { topic: 'both/x', qos: 0 },
    ])
    const { client: pub } = await raw(5, { clientId: 'p' })
    publish(pub, 'both/x', 'x')
    assert.equal((await publishes(sub, 2)).length, 2)
  })

  it('delivers at the QoS granted to the chosen member', async () => {
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: '$share/g/sq', qos: 1 }])
    const { client: pub } = await raw(5, { clientId: 'p' })
    publish(pub, 'sq', 'x', 2)
    const got = await publishes(sub, 1)
    assert.equal(got[0]?.qos, 1)
  })

  for (const bad of ['$share/a+b/x', '$share/a#/x', '$share//x', '$share/g']) {
    it(`refuses the ill-formed shared filter ${bad} with 0x8F [MQTT-4.8.2-1] [MQTT-4.8.2-2]`, async () => {
      const { client: sub } = await raw(5, { clientId: 's' })
      const suback = await subscribe(sub, [{ topic: bad, qos: 0 }])
      assert.deepEqual(suback.granted, [0x8f])
    })
  }

  it('refuses an ill-formed shared filter with 0x80 in 3.1.1', async () => {
    const { client: sub } = await raw(4, { clientId: 's4' })
    const suback = await subscribe(sub, [{ topic: '$share/a+b/x', qos: 0 }])
    assert.deepEqual(suback.granted, [0x80])
  })

  it('treats No Local on a shared subscription as a Protocol Error: DISCONNECT 0x82 [MQTT-3.8.3-4]', async () => {
    const { client: sub } = await raw(5, { clientId: 's' })
    sub.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: '$share/g/nl', qos: 0, nl: true }],
    })
    const d = (await sub.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x82)
    await sub.waitClosed()
  })

  it('removes a member with UNSUBSCRIBE of the full shared filter', async () => {
    const { client: a } = await raw(5, { clientId: 'a' })
    const { client: b } = await raw(5, { clientId: 'b' })
    await subscribe(a, [{ topic: '$share/g/leave', qos: 0 }])
    await subscribe(b, [{ topic: '$share/g/leave', qos: 0 }])
    a.send({ cmd: 'unsubscribe', messageId: 5, unsubscriptions: ['$share/g/leave'] })
    const unsuback = (await a.next('unsuback')) as IUnsubackPacket
    assert.deepEqual(unsuback.granted, [0])
    const { client: pub } = await raw(5, { clientId: 'p' })
    for (let i = 0; i < 4; i++) publish(pub, 'leave', `${i}`)
    assert.equal((await publishes(a)).length, 0)
    assert.equal((await publishes(b, 4)).length, 4)
  })
})

describe('mixed protocol versions', () => {
  it('delivers a 5.0 message with properties to a 3.1.1 subscriber as a plain 3.1.1 PUBLISH', async () => {
    const { client: sub } = await raw(4, { clientId: 'old' })
    await subscribe(sub, [{ topic: 'mix/#', qos: 1 }])
    const { client: pub } = await raw(5, { clientId: 'new' })
    pub.send({
      cmd: 'publish',
      topic: 'mix/1',
      payload: Buffer.from('x'),
      qos: 1,
      messageId: 1,
      retain: false,
      dup: false,
      properties: {
        messageExpiryInterval: 60,
        contentType: 'text/plain',
        userProperties: { a: '1' },
      },
    })
    const [got] = await publishes(sub, 1)
    assert.equal(got?.payload.toString(), 'x')
    assert.equal(got?.properties, undefined)
    // Byte-exact: fixed header, topic, packet id, payload; no property length.
    const frame = sub.frames.find((f) => (f[0] as number) >> 4 === 3)
    assert.equal(frame?.length, 2 + 2 + 'mix/1'.length + 2 + 1)
  })

  it('delivers a 3.1.1 message to a 5.0 subscriber with no properties', async () => {
    const { client: sub } = await raw(5, { clientId: 'new' })
    await subscribe(sub, [{ topic: 'mix/#', qos: 1 }])
    const { client: pub } = await raw(4, { clientId: 'old' })
    publish(pub, 'mix/2', 'y', 1)
    const [got] = await publishes(sub, 1)
    assert.equal(got?.payload.toString(), 'y')
    assert.deepEqual(got?.properties ?? {}, {})
  })
})
