/**
 * Retained messages (MQTT 5.0 section 3.3.1.3, 3.8.3.1; 3.1.1 section
 * 3.3.1.3): set, replace, clear, delivery on subscribe per Retain Handling,
 * the RETAIN flag on delivery, and '$' topics [MQTT-4.7.2-1].
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type { IConnackPacket, IPublishPacket, ISubscription } from 'mqtt-packet'
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

async function subscribe(client: RawClient, subscriptions: ISubscription[]): Promise<void> {
  client.send({ cmd: 'subscribe', messageId: nextId++, subscriptions })
  await client.next('suback')
}

/** Publish with RETAIN at QoS 1 and wait for PUBACK, so the broker has it. */
async function retain(
  client: RawClient,
  topic: string,
  payload: string,
  flag = true,
): Promise<void> {
  client.send({
    cmd: 'publish',
    topic,
    payload: Buffer.from(payload),
    qos: 1,
    messageId: nextId++,
    retain: flag,
    dup: false,
  })
  await client.next('puback')
}

/** The PUBLISH packets a client gets: `expected` of them waited for, then any extra. */
async function publishes(client: RawClient, expected = 0): Promise<IPublishPacket[]> {
  return (await client.collect('publish', expected, expected === 0 ? 150 : 100)) as IPublishPacket[]
}

for (const version of [4, 5] as const) {
  const v = version === 4 ? '3.1.1' : '5.0'

  describe(`retained messages, MQTT ${v}`, () => {
    it('sends a retained message to a new subscriber with RETAIN 1 [MQTT-3.3.1-5] [MQTT-3.3.1-8]', async () => {
      const { client: pub } = await raw(version, { clientId: 'p' })
      await retain(pub, 'bed/4/status', 'occupied')
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [{ topic: 'bed/+/status', qos: 1 }])
      const got = await publishes(sub, 1)
      assert.equal(got.length, 1)
      assert.equal(got[0]?.payload.toString(), 'occupied')
      assert.equal(got[0]?.retain, true)
      assert.equal(got[0]?.qos, 1)
    })

    it('replaces the retained message of a topic with a newer one [MQTT-3.3.1-5]', async () => {
      const { client: pub } = await raw(version, { clientId: 'p' })
      await retain(pub, 'bed/5/status', 'old')
      await retain(pub, 'bed/5/status', 'new')
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [{ topic: 'bed/5/status', qos: 0 }])
      const got = await publishes(sub, 1)
      assert.deepEqual(
        got.map((p) => p.payload.toString()),
        ['new'],
      )
    })

    it('clears the retained message with an empty retained payload and stores nothing [MQTT-3.3.1-6] [MQTT-3.3.1-7]', async () => {
      const { client: pub } = await raw(version, { clientId: 'p' })
      await retain(pub, 'bed/6/status', 'x')
      await retain(pub, 'bed/6/status', '')
      assert.equal(tb?.broker.retained.get('bed/6/status'), undefined)
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [{ topic: 'bed/6/#', qos: 0 }])
      assert.equal((await publishes(sub)).length, 0)
    })

    it('forwards an empty retained message to current subscribers like any other [MQTT-3.3.1-10] (3.1.1)', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [{ topic: 'bed/9/status', qos: 0 }])
      const { client: pub } = await raw(version, { clientId: 'p' })
      await retain(pub, 'bed/9/status', '')
      const got = await publishes(sub, 1)
      assert.equal(got.length, 1)
      assert.equal(got[0]?.payload.length, 0)
    })

    it('does not store, replace or clear anything for a PUBLISH with RETAIN 0 [MQTT-3.3.1-12] (3.1.1)', async () => {
      const { client: pub } = await raw(version, { clientId: 'p' })
      await retain(pub, 'bed/7/status', 'kept')
      await retain(pub, 'bed/7/status', 'transient', false)
      await retain(pub, 'bed/7/other', 'transient', false)
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [{ topic: 'bed/7/#', qos: 0 }])
      const got = await publishes(sub, 1)
      assert.deepEqual(
        got.map((p) => p.payload.toString()),
        ['kept'],
      )
    })

    it('sets RETAIN 0 when forwarding a retained message to an existing subscription [MQTT-3.3.1-9] (3.1.1)', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [{ topic: 'live/r', qos: 0 }])
      const { client: pub } = await raw(version, { clientId: 'p' })
      await retain(pub, 'live/r', 'x')
      const got = await publishes(sub, 1)
      assert.equal(got[0]?.retain, false)
    })

    it('does not send retained $-topics to filters starting with # or + [MQTT-4.7.2-1]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      const t = tb as TestBroker
      t.broker.setRetained(
        { topic: '$SYS/broker/uptime', payload: Buffer.from('1'), qos: 0, retain: true },
        undefined,
      )
      await subscribe(sub, [
        { topic: '#', qos: 0 },
        { topic: '+/broker/uptime', qos: 0 },
      ])
      assert.equal((await publishes(sub)).length, 0)
      await subscribe(sub, [{ topic: '$SYS/#', qos: 0 }])
      const got = await publishes(sub, 1)
      assert.deepEqual(
        got.map((p) => p.topic),
        ['$SYS/broker/uptime'],
      )
    })

    it('sends every retained message matching a wildcard filter on subscribe', async () => {
      const { client: pub } = await raw(version, { clientId: 'p' })
      for (const bed of ['1', '2', '3']) await retain(pub, `ward/a/bed/${bed}`, bed)
      await retain(pub, 'ward/b/bed/1', 'other ward')
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, [{ topic: 'ward/a/#', qos: 0 }])
      const got = await publishes(sub, 3)
      assert.deepEqual(got.map((p) => p.payload.toString()).sort(), ['1', '2', '3'])
    })
  })
}

describe('Retain Handling and Retain As Published, MQTT 5.0', () => {
  it('Retain Handling 0 sends retained messages on every SUBSCRIBE, also a repeated one [MQTT-3.3.1-9]', async () => {
    const { client: pub } = await raw(5, { clientId: 'p' })
    await retain(pub, 'rh/0', 'x')
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: 'rh/0', qos: 0, rh: 0 }])
    await subscribe(sub, [{ topic: 'rh/0', qos: 0, rh: 0 }])
    assert.equal((await publishes(sub, 2)).length, 2)
  })

  it('Retain Handling 1 sends retained messages only for a new subscription [MQTT-3.3.1-10]', async () => {
    const { client: pub } = await raw(5, { clientId: 'p' })
    await retain(pub, 'rh/1', 'x')
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: 'rh/1', qos: 0, rh: 1 }])
    assert.equal((await publishes(sub, 1)).length, 1)
    await subscribe(sub, [{ topic: 'rh/1', qos: 0, rh: 1 }])
    assert.equal((await publishes(sub)).length, 0)
  })

  it('Retain Handling 2 never sends retained messages on SUBSCRIBE [MQTT-3.3.1-11]', async () => {
    const { client: pub } = await raw(5, { clientId: 'p' })
    await retain(pub, 'rh/2', 'x')
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: 'rh/2', qos: 0, rh: 2 }])
    assert.equal((await publishes(sub)).length, 0)
  })

  it('sends retained messages on SUBSCRIBE with RETAIN 1 whatever Retain As Published says [MQTT-3.3.1-9]', async () => {
    const { client: pub } = await raw(5, { clientId: 'p' })
    await retain(pub, 'rap/sub', 'x')
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: 'rap/sub', qos: 0, rap: false }])
    const got = await publishes(sub, 1)
    assert.equal(got[0]?.retain, true)
  })

  it('keeps RETAIN 1 on live delivery with Retain As Published 1 [MQTT-3.3.1-13]', async () => {
    const { client: sub } = await raw(5, { clientId: 's' })
    await subscribe(sub, [{ topic: 'rap/live', qos: 0, rap: true }])
    const { client: pub } = await raw(5, { clientId: 'p' })
    await retain(pub, 'rap/live', 'x')
    const got = await publishes(sub, 1)
    assert.equal(got[0]?.retain, true)
  })

  it('sends the Subscription Identifier with retained messages sent on SUBSCRIBE [MQTT-3.3.4-3]', async () => {
    const { client: pub } = await raw(5, { clientId: 'p' })
    await retain(pub, 'sid/r', 'x')
    const { client: sub } = await raw(5, { clientId: 's' })
    sub.send({
      cmd: 'subscribe',
      messageId: 3,
      subscriptions: [{ topic: 'sid/+', qos: 0 }],
      properties: { subscriptionIdentifier: 12 },
    })
    await sub.next('suback')
    const got = await publishes(sub, 1)
    assert.equal(got[0]?.properties?.subscriptionIdentifier, 12)
  })
})

describe('retained message memory', () => {
  it('keeps a copy of a retained payload, not a view pinning the read buffer', async () => {
    const { client } = await raw(5, { clientId: 'pinning' })
    const mqttPacket = (await import('mqtt-packet')).default
    const small = mqttPacket.generate(
      {
        cmd: 'publish',
        topic: 'pin/1',
        payload: Buffer.from('tiny'),
        qos: 0,
        retain: true,
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
    client.write(Buffer.concat([small, padding]))
    const until = Date.now() + 3000
    while (!tb?.broker.retained.get('pin/1') && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 10))
    }
    const kept = tb?.broker.retained.get('pin/1')
    assert.equal(kept?.payload.toString(), 'tiny')
    // At most Node's shared pool slab for small buffers, never the read buffer.
    assert.ok(
      (kept?.payload.buffer.byteLength ?? 0) <= Buffer.poolSize,
      'not a view into the read buffer',
    )
  })
})
