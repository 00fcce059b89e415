/**
 * QoS 1 and 2 in both directions (MQTT 5.0 sections 4.3, 4.4, 4.9; 3.1.1
 * sections 4.3, 4.4): acknowledgements, exactly once for QoS 2, DUP on
 * resend after reconnect, packet id reuse, and Receive Maximum flow control.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type {
  IConnackPacket,
  IDisconnectPacket,
  IPubackPacket,
  IPubcompPacket,
  IPublishPacket,
  IPubrecPacket,
  IPubrelPacket,
} from 'mqtt-packet'
import { startBroker, type TestBroker, type TestBrokerOptions } from '../helpers/broker.js'
import { closesHandled, RawClient, waitFor } from '../helpers/raw-client.js'

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

function keep(version: 4 | 5, clientId: string) {
  return version === 5
    ? { clientId, clean: false, properties: { sessionExpiryInterval: 300 } }
    : { clientId, clean: false }
}

async function subscribe(client: RawClient, topic: string, qos: 0 | 1 | 2): Promise<void> {
  client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] })
  await client.next('suback')
}

function publish(
  client: RawClient,
  topic: string,
  payload: string,
  qos: 0 | 1 | 2,
  messageId?: number,
  dup = false,
): void {
  client.send({
    cmd: 'publish',
    topic,
    payload: Buffer.from(payload),
    qos,
    retain: false,
    dup,
    ...(messageId === undefined ? {} : { messageId }),
  })
}

/** The PUBLISH packets a client gets: `expected` of them waited for, then any extra. */
async function publishes(client: RawClient, expected = 0): Promise<IPublishPacket[]> {
  return (await client.collect('publish', expected, expected === 0 ? 150 : 100)) as IPublishPacket[]
}

async function dropAndWait(client: RawClient): Promise<void> {
  client.destroy()
  await client.closed
  await closesHandled(() => (tb as TestBroker).broker.listClients(), [client])
}

for (const version of [4, 5] as const) {
  const v = version === 4 ? '3.1.1' : '5.0'

  describe(`inbound QoS 1 and 2, MQTT ${v}`, () => {
    it('answers a QoS 1 PUBLISH with PUBACK carrying its Packet Identifier [MQTT-4.3.2-4] [MQTT-2.2.1-5]', async () => {
      const { client } = await raw(version, { clientId: 'p' })
      publish(client, 'in/1', 'x', 1, 321)
      const ack = (await client.next('puback')) as IPubackPacket
      assert.equal(ack.messageId, 321)
    })

    for (const qos of [1, 2] as const) {
      it(`closes the connection on a QoS ${qos} PUBLISH with Packet Identifier 0 and routes nothing [MQTT-2.2.1-3]`, async () => {
        const { client: sub } = await raw(version, { clientId: 's' })
        await subscribe(sub, 'zero/#', 1)
        const { client } = await raw(version, { clientId: 'p' })
        publish(client, 'zero/1', 'x', qos, 0)
        await client.waitClosed()
        assert.equal(client.inbox.filter((p) => p.cmd === 'puback' || p.cmd === 'pubrec').length, 0)
        assert.deepEqual(await publishes(sub), [])
      })
    }

    it('routes a QoS 2 message once, even when the PUBLISH is resent before PUBREL [MQTT-4.3.3-2] (3.1.1) [MQTT-4.3.3-9] (5.0)', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, 'once/#', 0)
      const { client: pub } = await raw(version, { clientId: 'p' })
      publish(pub, 'once/a', 'exactly-once', 2, 7)
      const rec1 = (await pub.next('pubrec')) as IPubrecPacket
      assert.equal(rec1.messageId, 7)
      publish(pub, 'once/a', 'exactly-once', 2, 7, true)
      const rec2 = (await pub.next('pubrec')) as IPubrecPacket
      assert.equal(rec2.messageId, 7)
      pub.send({ cmd: 'pubrel', messageId: 7 })
      const comp = (await pub.next('pubcomp')) as IPubcompPacket
      assert.equal(comp.messageId, 7)
      assert.equal((await publishes(sub, 1)).length, 1)
    })

    it('treats a PUBLISH reusing a released QoS 2 Packet Identifier as a new message [MQTT-2.2.1-3] [MQTT-4.3.3-2]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, 'reuse', 0)
      const { client: pub } = await raw(version, { clientId: 'p' })
      for (const payload of ['first', 'second']) {
        publish(pub, 'reuse', payload, 2, 9)
        await pub.next('pubrec')
        pub.send({ cmd: 'pubrel', messageId: 9 })
        await pub.next('pubcomp')
      }
      const got = await publishes(sub, 2)
      assert.deepEqual(
        got.map((p) => p.payload.toString()),
        ['first', 'second'],
      )
    })

    it('keeps the QoS 2 state across a reconnect: a resent PUBLISH is not routed again [MQTT-4.4.0-1]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, 'across', 0)
      const first = await raw(version, keep(version, 'p2'))
      publish(first.client, 'across', 'x', 2, 11)
      await first.client.next('pubrec')
      await dropAndWait(first.client)
      const { client: again } = await raw(version, keep(version, 'p2'))
      publish(again, 'across', 'x', 2, 11, true)
      const rec = (await again.next('pubrec')) as IPubrecPacket
      assert.equal(rec.messageId, 11)
      again.send({ cmd: 'pubrel', messageId: 11 })
      await again.next('pubcomp')
      assert.equal((await publishes(sub, 1)).length, 1)
    })
  })

  describe(`outbound QoS 1 and 2, MQTT ${v}`, () => {
    it('completes an outbound QoS 2 flow: PUBLISH, PUBREC, PUBREL, PUBCOMP [MQTT-4.3.3-1] [MQTT-4.3.3-3]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, 'out2', 2)
      const { client: pub } = await raw(version, { clientId: 'p' })
      publish(pub, 'out2', 'x', 2, 1)
      const p = (await sub.next('publish')) as IPublishPacket
      assert.equal(p.qos, 2)
      assert.equal(p.dup, false)
      sub.send({ cmd: 'pubrec', messageId: p.messageId as number })
      const rel = (await sub.next('pubrel')) as IPubrelPacket
      assert.equal(rel.messageId, p.messageId)
      sub.send({ cmd: 'pubcomp', messageId: p.messageId as number })
      await waitFor(() => tb?.broker.sessions.get('s')?.inflight.size === 0)
      assert.equal(tb?.broker.sessions.get('s')?.inflight.size, 0)
    })

    it('does not pass the DUP flag of an incoming PUBLISH on to subscribers [MQTT-3.3.1-3]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, 'dup/in', 1)
      const { client: pub } = await raw(version, { clientId: 'p' })
      publish(pub, 'dup/in', 'x', 1, 5, true)
      const p = (await sub.next('publish')) as IPublishPacket
      assert.equal(p.dup, false)
    })

    it('uses a distinct Packet Identifier for each unacknowledged message [MQTT-2.2.1-3]', async () => {
      const { client: sub } = await raw(version, { clientId: 's' })
      await subscribe(sub, 'ids', 1)
      const { client: pub } = await raw(version, { clientId: 'p' })
      for (let i = 0; i < 5; i++) publish(pub, 'ids', `${i}`, 1, i + 1)
      const got = await publishes(sub, 5)
      assert.equal(got.length, 5)
      assert.equal(new Set(got.map((p) => p.messageId)).size, 5)
    })

    it('resends an unacknowledged QoS 1 PUBLISH with DUP 1 and the same id on resumption [MQTT-4.4.0-1] [MQTT-3.3.1-1]', async () => {
      const first = await raw(version, keep(version, 'dup1'))
      await subscribe(first.client, 'dup/1', 1)
      const { client: pub } = await raw(version, { clientId: 'p' })
      publish(pub, 'dup/1', 'again', 1, 1)
      const original = (await first.client.next('publish')) as IPublishPacket
      assert.equal(original.dup, false)
      await dropAndWait(first.client)
      const { client: again } = await raw(version, keep(version, 'dup1'))
      const resent = (await again.next('publish')) as IPublishPacket
      assert.equal(resent.dup, true)
      assert.equal(resent.messageId, original.messageId)
      assert.equal(resent.payload.toString(), 'again')
    })

    it('resends PUBREL, not PUBLISH, for a QoS 2 message already PUBREC-ed, on resumption [MQTT-4.4.0-1]', async () => {
      const first = await raw(version, keep(version, 'dup2'))
      await subscribe(first.client, 'dup/2', 2)
      const { client: pub } = await raw(version, { clientId: 'p' })
      publish(pub, 'dup/2', 'x', 2, 1)
      const p = (await first.client.next('publish')) as IPublishPacket
      first.client.send({ cmd: 'pubrec', messageId: p.messageId as number })
      await first.client.next('pubrel')
      await dropAndWait(first.client)
      const { client: again } = await raw(version, keep(version, 'dup2'))
      const rel = (await again.next('pubrel')) as IPubrelPacket
      assert.equal(rel.messageId, p.messageId)
      again.send({ cmd: 'pubcomp', messageId: p.messageId as number })
      assert.equal((await publishes(again)).length, 0)
    })
  })
}

describe('Receive Maximum, MQTT 5.0', () => {
  it('never has more unacknowledged QoS 1/2 PUBLISH toward a client than its Receive Maximum [MQTT-3.3.4-9]', async () => {
    const { client: sub } = await raw(5, { clientId: 's', properties: { receiveMaximum: 2 } })
    await subscribe(sub, 'rm/#', 2)
    const { client: pub } = await raw(5, { clientId: 'p' })
    for (let i = 0; i < 5; i++) publish(pub, `rm/${i}`, `${i}`, i % 2 === 0 ? 1 : 2, i + 1)
    const firstTwo = await publishes(sub, 2)
    assert.equal(firstTwo.length, 2)
    const order: string[] = firstTwo.map((p) => p.payload.toString())
    // Acknowledge one at a time; each frees one slot.
    let pending = firstTwo
    while (order.length < 5 || pending.length > 0) {
      const p = pending.shift()
      if (!p) break
      if (p.qos === 1) sub.send({ cmd: 'puback', messageId: p.messageId as number })
      else {
        sub.send({ cmd: 'pubrec', messageId: p.messageId as number })
        await sub.next('pubrel')
        sub.send({ cmd: 'pubcomp', messageId: p.messageId as number })
      }
      const more = await publishes(sub, order.length < 5 ? 1 : 0)
      assert.ok(more.length <= 1, 'one freed slot, at most one new message')
      pending = [...pending, ...more]
      order.push(...more.map((m) => m.payload.toString()))
    }
    assert.deepEqual(order, ['0', '1', '2', '3', '4'])
  })

  it('sends our Receive Maximum in CONNACK [MQTT-3.2.2-9]', async () => {
    await broker({ limits: { receiveMaximum: 7 } })
    const { connack } = await raw(5, { clientId: 'c' })
    assert.equal(connack.properties?.receiveMaximum, 7)
  })

  it('disconnects a client exceeding our Receive Maximum with 0x93 [MQTT-3.3.4-8]', async () => {
    await broker({ limits: { receiveMaximum: 2 } })
    const { client } = await raw(5, { clientId: 'greedy' })
    for (let id = 1; id <= 3; id++) publish(client, 'flood', 'x', 2, id)
    const d = (await client.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x93)
    await client.waitClosed()
  })

  it('does not count a resent QoS 2 PUBLISH (same id, DUP) against Receive Maximum [MQTT-3.3.4-8]', async () => {
    await broker({ limits: { receiveMaximum: 2 } })
    const { client } = await raw(5, { clientId: 'resender' })
    publish(client, 'rs', 'a', 2, 1)
    publish(client, 'rs', 'b', 2, 2)
    await client.next('pubrec')
    await client.next('pubrec')
    publish(client, 'rs', 'b', 2, 2, true)
    const rec = (await client.next('pubrec')) as IPubrecPacket
    assert.equal(rec.messageId, 2)
    assert.ok(!client.isClosed, '!client.isClosed')
  })

  it('ends an outbound QoS 2 flow on PUBREC with a failure code, freeing the window [MQTT-4.3.3-4] [MQTT-4.9.0-2]', async () => {
    const { client: sub } = await raw(5, { clientId: 's', properties: { receiveMaximum: 1 } })
    await subscribe(sub, 'fail/#', 2)
    const { client: pub } = await raw(5, { clientId: 'p' })
    publish(pub, 'fail/1', 'refused', 2, 1)
    publish(pub, 'fail/2', 'next', 2, 2)
    const first = (await sub.next('publish')) as IPublishPacket
    sub.send({ cmd: 'pubrec', messageId: first.messageId as number, reasonCode: 0x80 })
    const second = (await sub.next('publish')) as IPublishPacket
    assert.equal(second.payload.toString(), 'next')
    const others = (await sub.drain(100)).filter((p) => p.cmd === 'pubrel')
    assert.deepEqual(others, [], 'no PUBREL for the failed flow')
  })

  it('answers PUBREL for an unknown Packet Identifier with PUBCOMP 0x92', async () => {
    const { client } = await raw(5, { clientId: 'lost' })
    client.send({ cmd: 'pubrel', messageId: 99 })
    const comp = (await client.next('pubcomp')) as IPubcompPacket
    assert.equal(comp.reasonCode, 0x92)
  })
})

describe('Receive Maximum across a reconnection, MQTT 5.0', () => {
  it('resends no more unacknowledged messages than the new Receive Maximum after a reconnect [MQTT-3.3.4-9] [MQTT-4.4.0-1]', async () => {
    const first = await raw(5, {
      clientId: 'shrink',
      clean: false,
      properties: { sessionExpiryInterval: 300, receiveMaximum: 5 },
    })
    await subscribe(first.client, 'shrink/#', 1)
    const { client: pub } = await raw(5, { clientId: 'p' })
    for (let i = 1; i <= 5; i++) publish(pub, 'shrink/x', `${i}`, 1, i)
    assert.equal((await publishes(first.client, 5)).length, 5)
    await dropAndWait(first.client)
    const { client: again } = await raw(5, {
      clientId: 'shrink',
      clean: false,
      properties: { sessionExpiryInterval: 300, receiveMaximum: 2 },
    })
    const resent = await publishes(again, 2)
    assert.equal(resent.length, 2)
    // Each acknowledgement lets the next original one out, DUP and same id.
    const seen = resent.map((p) => p.payload.toString())
    let pending = resent
    while (pending.length > 0) {
      const p = pending.shift() as IPublishPacket
      assert.equal(p.dup, true)
      again.send({ cmd: 'puback', messageId: p.messageId as number })
      const more = await publishes(again, seen.length < 5 ? 1 : 0)
      assert.ok(more.length <= 1, 'more.length <= 1')
      pending = [...pending, ...more]
      seen.push(...more.map((m) => m.payload.toString()))
    }
    assert.deepEqual(seen, ['1', '2', '3', '4', '5'])
  })
})

describe('queue caps, online and offline (C24, issue #7)', () => {
  it('holds up to maxQueuedMessagesOnline for a connected client, trims to maxQueuedMessages when it leaves; every drop audited', async () => {
    const limits = { maxInflightMessages: 1, maxQueuedMessages: 2, maxQueuedMessagesOnline: 5 }
    const { audit } = await broker({ limits })
    const { client: sub } = await raw(4, keep(4, 'slow'))
    await subscribe(sub, 'q/#', 1)
    const { client: pub } = await raw(4, { clientId: 'p' })
    // One goes out and is never acknowledged; five wait; four are dropped.
    for (let i = 0; i < 10; i++) publish(pub, `q/${i}`, `${i}`, 1, i + 1)
    await waitFor(() => audit.ofType('message.dropped').length === 4)
    assert.equal((await publishes(sub, 1)).length, 1)
    const queued = () => (tb as TestBroker).broker.sessions.get('slow')?.queue.length
    assert.equal(queued(), 5)

    // Away: the offline cap applies at once, oldest first.
    await dropAndWait(sub)
    assert.equal(queued(), 2)
    const dropped = audit.ofType('message.dropped')
    assert.equal(dropped.length, 7)
    assert.ok(dropped.every((e) => e.clientId === 'slow' && e.reason === 'queue-full'))
    assert.deepEqual(
      dropped.map((e) => e.topic),
      ['q/1', 'q/2', 'q/3', 'q/4', 'q/5', 'q/6', 'q/7'],
    )
  })
})
