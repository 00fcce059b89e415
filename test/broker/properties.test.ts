/**
 * MQTT 5.0 properties (section 3.3.2.3 and 3.1.2.11, 3.2.2.3): Message
 * Expiry, Topic Alias, Maximum Packet Size both ways, Payload Format
 * Indicator, the forwarded message properties, and Request Problem
 * Information.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type {
  IConnackPacket,
  IDisconnectPacket,
  IPubackPacket,
  IPublishPacket,
  IPubrecPacket,
} from 'mqtt-packet'
import { ManualClock } from '../../src/broker/clock.js'
import { startBroker, type TestBroker, type TestBrokerOptions } from '../helpers/broker.js'
import { closesHandled, publishUserProperties, RawClient } from '../helpers/raw-client.js'

let tb: TestBroker | undefined
const raws: RawClient[] = []

async function broker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  tb = await startBroker(options)
  return tb
}

async function raw(
  fields: Parameters<RawClient['connect']>[0] = {},
  version: 4 | 5 = 5,
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

async function subscribe(client: RawClient, topic: string, qos: 0 | 1 | 2 = 1): Promise<void> {
  client.send({ cmd: 'subscribe', messageId: nextId++, subscriptions: [{ topic, qos }] })
  await client.next('suback')
}

/** The PUBLISH packets a client gets: `expected` of them waited for, then any extra. */
async function publishes(client: RawClient, expected = 0): Promise<IPublishPacket[]> {
  return (await client.collect('publish', expected, expected === 0 ? 150 : 100)) as IPublishPacket[]
}

type PublishProperties = NonNullable<IPublishPacket['properties']>

function publish(
  client: RawClient,
  topic: string,
  payload: Buffer | string,
  qos: 0 | 1 | 2,
  properties?: PublishProperties,
): void {
  client.send({
    cmd: 'publish',
    topic,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    qos,
    retain: false,
    dup: false,
    ...(qos > 0 ? { messageId: nextId++ } : {}),
    ...(properties ? { properties } : {}),
  })
}

const KEEP = { clean: false, properties: { sessionExpiryInterval: 3600 } }

/** Until the broker has handled the closes the test caused. */
async function settle(): Promise<void> {
  await closesHandled(() => (tb as TestBroker).broker.listClients(), raws)
}

describe('Message Expiry Interval', () => {
  it('forwards what remains of the Message Expiry Interval after queueing [MQTT-3.3.2-6]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const first = await raw({ clientId: 'sub', ...KEEP })
    await subscribe(first.client, 'exp/+')
    first.client.destroy()
    await first.client.closed
    await settle()
    const { client: pub } = await raw({ clientId: 'pub' })
    publish(pub, 'exp/a', 'x', 1, { messageExpiryInterval: 60 })
    await pub.next('puback')
    clock.advance(20_000)
    const { client: sub } = await raw({ clientId: 'sub', ...KEEP })
    const [got] = await publishes(sub, 1)
    assert.equal(got?.properties?.messageExpiryInterval, 40)
  })

  it('never delivers a queued message whose Message Expiry Interval has passed [MQTT-3.3.2-5]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const first = await raw({ clientId: 'sub', ...KEEP })
    await subscribe(first.client, 'exp/+')
    first.client.destroy()
    await first.client.closed
    await settle()
    const { client: pub } = await raw({ clientId: 'pub' })
    publish(pub, 'exp/gone', 'old', 1, { messageExpiryInterval: 10 })
    publish(pub, 'exp/kept', 'new', 1, { messageExpiryInterval: 100 })
    await pub.next('puback')
    await pub.next('puback')
    clock.advance(10_000)
    const { client: sub } = await raw({ clientId: 'sub', ...KEEP })
    const got = await publishes(sub, 1)
    assert.deepEqual(
      got.map((p) => p.topic),
      ['exp/kept'],
    )
  })

  it('does not send a retained message whose Message Expiry Interval has passed [MQTT-3.3.2-5]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const { client: pub } = await raw({ clientId: 'pub' })
    pub.send({
      cmd: 'publish',
      topic: 'exp/retained',
      payload: Buffer.from('x'),
      qos: 1,
      messageId: 1,
      retain: true,
      dup: false,
      properties: { messageExpiryInterval: 10 },
    })
    await pub.next('puback')
    clock.advance(4_000)
    const { client: early } = await raw({ clientId: 'early' })
    await subscribe(early, 'exp/retained')
    const [got] = await publishes(early, 1)
    assert.equal(got?.properties?.messageExpiryInterval, 6)
    clock.advance(6_000)
    const { client: late } = await raw({ clientId: 'late' })
    await subscribe(late, 'exp/retained')
    assert.equal((await publishes(late)).length, 0)
  })
})

describe('Topic Alias', () => {
  it('sends our Topic Alias Maximum in CONNACK [MQTT-3.2.2-17]', async () => {
    await broker({ limits: { topicAliasMaximum: 5 } })
    const { connack } = await raw({ clientId: 'c' })
    assert.equal(connack.properties?.topicAliasMaximum, 5)
  })

  it('maps an inbound Topic Alias and routes by the full Topic Name [MQTT-3.3.2-12]', async () => {
    const { client: sub } = await raw({ clientId: 'sub' })
    await subscribe(sub, 'alias/#', 0)
    const { client: pub } = await raw({ clientId: 'pub' })
    publish(pub, 'alias/long/topic', 'one', 0, { topicAlias: 3 })
    publish(pub, '', 'two', 0, { topicAlias: 3 })
    const got = await publishes(sub, 2)
    assert.deepEqual(
      got.map((p) => [p.topic, p.payload.toString(), p.properties?.topicAlias]),
      [
        ['alias/long/topic', 'one', undefined],
        ['alias/long/topic', 'two', undefined],
      ],
    )
  })

  it('lets a later PUBLISH change the topic an alias stands for [MQTT-3.3.2-12]', async () => {
    const { client: sub } = await raw({ clientId: 'sub' })
    await subscribe(sub, 'alias/#', 0)
    const { client: pub } = await raw({ clientId: 'pub' })
    publish(pub, 'alias/a', '1', 0, { topicAlias: 1 })
    publish(pub, 'alias/b', '2', 0, { topicAlias: 1 })
    publish(pub, '', '3', 0, { topicAlias: 1 })
    const got = await publishes(sub, 3)
    assert.deepEqual(
      got.map((p) => p.topic),
      ['alias/a', 'alias/b', 'alias/b'],
    )
  })

  for (const [alias, rule] of [
    [0, 'MQTT-3.3.2-8'],
    [17, 'MQTT-3.3.2-9'],
  ] as const) {
    it(`disconnects with 0x94 for Topic Alias ${alias} [${rule}]`, async () => {
      await broker({ limits: { topicAliasMaximum: 16 } })
      const { client } = await raw({ clientId: 'bad-alias' })
      publish(client, 't', 'x', 0, { topicAlias: alias })
      const d = (await client.next('disconnect')) as IDisconnectPacket
      assert.equal(d.reasonCode, 0x94)
      await client.waitClosed()
    })
  }

  it('does not carry Topic Alias mappings over to a new connection [MQTT-3.3.2-7]', async () => {
    const first = await raw({ clientId: 'aliaser', ...KEEP })
    publish(first.client, 'alias/kept', 'x', 0, { topicAlias: 1 })
    first.client.destroy()
    await first.client.closed
    await settle()
    const { client } = await raw({ clientId: 'aliaser', ...KEEP })
    publish(client, '', 'y', 0, { topicAlias: 1 })
    const d = (await client.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x82)
  })

  it('treats an empty Topic Name with an unknown alias as a Protocol Error: DISCONNECT 0x82', async () => {
    const { client } = await raw({ clientId: 'unknown-alias' })
    publish(client, '', 'x', 0, { topicAlias: 2 })
    const d = (await client.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x82)
    await client.waitClosed()
  })
})

describe('Maximum Packet Size', () => {
  it('sends our Maximum Packet Size in CONNACK [MQTT-3.2.2-15]', async () => {
    await broker({ limits: { maxPacketSizeBytes: 4096 } })
    const { connack } = await raw({ clientId: 'c' })
    assert.equal(connack.properties?.maximumPacketSize, 4096)
  })

  it('disconnects with 0x95 a client that sends a packet larger than ours [MQTT-3.2.2-15] [MQTT-4.13.1-1]', async () => {
    await broker({ limits: { maxPacketSizeBytes: 1024 } })
    const { client } = await raw({ clientId: 'big' })
    publish(client, 'big', Buffer.alloc(2000, 1), 0)
    const d = (await client.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x95)
    await client.waitClosed()
  })

  it('never sends a client a packet larger than its Maximum Packet Size, and carries on [MQTT-3.1.2-24] [MQTT-3.1.2-25]', async () => {
    const { client: sub } = await raw({
      clientId: 'small',
      properties: { maximumPacketSize: 200, receiveMaximum: 1 },
    })
    await subscribe(sub, 'mps/+', 1)
    const { client: pub } = await raw({ clientId: 'pub' })
    publish(pub, 'mps/big', Buffer.alloc(500, 1), 1)
    publish(pub, 'mps/small', 'fits', 1)
    const got = await publishes(sub, 1)
    assert.deepEqual(
      got.map((p) => p.topic),
      ['mps/small'],
    )
    assert.ok(
      sub.frames.every((f) => f.length <= 200),
      'sub.frames.every((f) => f.length <= 200)',
    )
    assert.equal(tb?.audit.ofType('message.dropped')[0]?.reason, 'too-large')
  })
})

describe('Payload Format Indicator', () => {
  const invalid = Buffer.from([0x68, 0xc3, 0x28, 0xff])

  it('refuses a QoS 1 PUBLISH with Payload Format Indicator 1 and invalid UTF-8 with PUBACK 0x99 [MQTT-3.3.2-4]', async () => {
    const { client: sub } = await raw({ clientId: 'sub' })
    await subscribe(sub, 'pfi/#', 0)
    const { client: pub } = await raw({ clientId: 'pub' })
    publish(pub, 'pfi/1', invalid, 1, { payloadFormatIndicator: true })
    const ack = (await pub.next('puback')) as IPubackPacket
    assert.equal(ack.reasonCode, 0x99)
    assert.equal((await publishes(sub)).length, 0)
  })

  it('refuses a QoS 2 PUBLISH with invalid UTF-8 under Payload Format Indicator 1 with PUBREC 0x99', async () => {
    const { client: pub } = await raw({ clientId: 'pub' })
    publish(pub, 'pfi/2', invalid, 2, { payloadFormatIndicator: true })
    const rec = (await pub.next('pubrec')) as IPubrecPacket
    assert.equal(rec.reasonCode, 0x99)
  })

  it('forwards the Payload Format Indicator with a valid UTF-8 payload [MQTT-3.3.2-4]', async () => {
    const { client: sub } = await raw({ clientId: 'sub' })
    await subscribe(sub, 'pfi/#', 0)
    const { client: pub } = await raw({ clientId: 'pub' })
    publish(pub, 'pfi/ok', 'température', 0, { payloadFormatIndicator: true })
    const [got] = await publishes(sub, 1)
    assert.equal(got?.properties?.payloadFormatIndicator, true)
  })
})

describe('forwarded message properties', () => {
  it('forwards Content Type, Response Topic and Correlation Data unaltered [MQTT-3.3.2-20] [MQTT-3.3.2-15] [MQTT-3.3.2-16]', async () => {
    const { client: sub } = await raw({ clientId: 'sub' })
    await subscribe(sub, 'req/#', 1)
    const { client: pub } = await raw({ clientId: 'pub' })
    publish(pub, 'req/1', '{}', 1, {
      contentType: 'application/fhir+json',
      responseTopic: 'resp/1',
      correlationData: Buffer.from([0, 1, 2, 250]),
    })
    const [got] = await publishes(sub, 1)
    assert.equal(got?.properties?.contentType, 'application/fhir+json')
    assert.equal(got?.properties?.responseTopic, 'resp/1')
    assert.deepEqual(got?.properties?.correlationData, Buffer.from([0, 1, 2, 250]))
  })

  for (const responseTopic of ['resp/+', 'resp/#']) {
    it(`disconnects with 0x82 a PUBLISH whose Response Topic is ${responseTopic} [MQTT-3.3.2-14]`, async () => {
      const { client: sub } = await raw({ clientId: 'sub' })
      await subscribe(sub, 'req/#', 1)
      const { client: pub } = await raw({ clientId: 'pub' })
      publish(pub, 'req/1', '{}', 1, { responseTopic })
      const d = (await pub.next('disconnect')) as IDisconnectPacket
      assert.equal(d.reasonCode, 0x82)
      assert.deepEqual(await publishes(sub), [])
    })
  }

  it('refuses a CONNECT whose Will Response Topic holds a wildcard with 0x82 (MQTT-5.0 3.1.3.2.5)', async () => {
    const { connack } = await raw({
      clientId: 'w',
      will: {
        topic: 'alarms/w',
        payload: Buffer.from('gone'),
        qos: 0,
        retain: false,
        properties: { responseTopic: 'alarms/+' },
      },
    })
    assert.equal(connack.reasonCode, 0x82)
  })

  it('forwards User Properties in the order they were sent, repeats included [MQTT-3.3.2-17] [MQTT-3.3.2-18]', async () => {
    const { client: sub } = await raw({ clientId: 'sub' })
    await subscribe(sub, 'up/#', 1)
    const { client: pub } = await raw({ clientId: 'pub' })
    const pairs: Array<[string, string]> = [
      ['b', '1'],
      ['2', 'x'],
      ['a', '2'],
      ['b', '3'],
      ['1', 'y'],
    ]
    pub.write(publishWithUserProperties('up/1', pairs))
    await publishes(sub, 1)
    const frame = sub.frames.find((f) => (f[0] as number) >> 4 === 3)
    assert.ok(frame, 'a PUBLISH arrived')
    assert.deepEqual(publishUserProperties(frame), pairs)
  })

  it('keeps the User Properties order on a queued message, too [MQTT-3.3.2-18]', async () => {
    const first = await raw({ clientId: 'sub', ...KEEP })
    await subscribe(first.client, 'up/#', 1)
    first.client.destroy()
    await first.client.closed
    await settle()
    const { client: pub } = await raw({ clientId: 'pub' })
    const pairs: Array<[string, string]> = [
      ['z', '1'],
      ['a', '2'],
      ['z', '3'],
    ]
    pub.write(publishWithUserProperties('up/q', pairs, 1))
    await pub.next('puback')
    const { client: sub } = await raw({ clientId: 'sub', ...KEEP })
    await publishes(sub, 1)
    const frame = sub.frames.find((f) => (f[0] as number) >> 4 === 3)
    assert.ok(frame, 'a PUBLISH arrived')
    assert.deepEqual(publishUserProperties(frame), pairs)
  })
})

describe('Request Problem Information', () => {
  it('sends no Reason String or User Property on PUBACK when Request Problem Information is 0 [MQTT-3.1.2-29]', async () => {
    const { client: pub } = await raw({
      clientId: 'quiet',
      properties: { requestProblemInformation: false },
    })
    publish(pub, 'rpi/1', Buffer.from([0xff]), 1, { payloadFormatIndicator: true })
    const ack = (await pub.next('puback')) as IPubackPacket
    assert.equal(ack.reasonCode, 0x99)
    assert.equal(ack.properties?.reasonString, undefined)
    assert.equal(ack.properties?.userProperties, undefined)
  })
})

/** A 5.0 PUBLISH (QoS 0, or 1 with packet id 1) with User Properties in exactly this order, by hand. */
function publishWithUserProperties(
  topic: string,
  pairs: Array<[string, string]>,
  qos: 0 | 1 = 0,
): Buffer {
  const str = (s: string): Buffer => {
    const b = Buffer.from(s)
    const len = Buffer.alloc(2)
    len.writeUInt16BE(b.length)
    return Buffer.concat([len, b])
  }
  const props = Buffer.concat(
    pairs.map(([n, v]) => Buffer.concat([Buffer.from([0x26]), str(n), str(v)])),
  )
  assert.ok(props.length < 128, 'props.length < 128')
  const id = qos === 1 ? Buffer.from([0, 1]) : Buffer.alloc(0)
  const body = Buffer.concat([str(topic), id, Buffer.from([props.length]), props, Buffer.from('p')])
  assert.ok(body.length < 128, 'body.length < 128')
  return Buffer.concat([Buffer.from([0x30 | (qos << 1), body.length]), body])
}
