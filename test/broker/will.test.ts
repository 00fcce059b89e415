/**
 * Will messages (MQTT 5.0 sections 3.1.2.5, 3.1.3.2; 3.1.1 section 3.1.2.5):
 * when a will is published and when not, its flags and properties, and the
 * Will Delay Interval against reconnection and session expiry.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type { IConnackPacket, IConnectPacket, IPublishPacket } from 'mqtt-packet'
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

type Will = NonNullable<IConnectPacket['will']>

function will(fields: Partial<Will> = {}): Will {
  return {
    topic: 'alarms/device-1',
    payload: Buffer.from('offline'),
    qos: 1,
    retain: false,
    ...fields,
  } as Will
}

/** A subscriber to the will topic. */
async function watcher(version: 4 | 5): Promise<RawClient> {
  const { client } = await raw(version, { clientId: `watch-${version}` })
  client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'alarms/#', qos: 1 }] })
  await client.next('suback')
  return client
}

/** The PUBLISH packets a client gets: `expected` of them waited for, then any extra. */
async function publishes(client: RawClient, expected = 0): Promise<IPublishPacket[]> {
  return (await client.collect('publish', expected, expected === 0 ? 150 : 100)) as IPublishPacket[]
}

/** Until the broker has handled the closes the test caused. */
async function settle(): Promise<void> {
  await closesHandled(() => (tb as TestBroker).broker.listClients(), raws)
}

for (const version of [4, 5] as const) {
  const v = version === 4 ? '3.1.1' : '5.0'

  describe(`wills, MQTT ${v}`, () => {
    it('publishes the will when the network connection closes without DISCONNECT [MQTT-3.1.2-8]', async () => {
      const w = await watcher(version)
      const { client } = await raw(version, { clientId: 'dev', will: will() })
      client.destroy()
      const got = await publishes(w, 1)
      assert.equal(got.length, 1)
      assert.equal(got[0]?.topic, 'alarms/device-1')
      assert.equal(got[0]?.payload.toString(), 'offline')
      assert.equal(got[0]?.qos, 1)
    })

    it('does not publish the will after DISCONNECT 0x00 [MQTT-3.1.2-10] [MQTT-3.14.4-3]', async () => {
      const w = await watcher(version)
      const { client } = await raw(version, { clientId: 'dev', will: will() })
      client.send({ cmd: 'disconnect' })
      await client.waitClosed()
      assert.equal((await publishes(w)).length, 0)
    })

    it('publishes the will when the keep alive runs out [MQTT-3.1.2-8]', async () => {
      const clock = new ManualClock()
      await broker({ clock })
      const w = await watcher(version)
      const { client } = await raw(version, { clientId: 'dev', keepalive: 4, will: will() })
      clock.advance(6_000)
      await client.waitClosed()
      assert.equal((await publishes(w, 1)).length, 1)
    })

    it('stores a will with Will Retain 1 as a retained message [MQTT-3.1.2-17]', async () => {
      const { client } = await raw(version, {
        clientId: 'dev',
        will: will({ retain: true, topic: 'alarms/kept' }),
      })
      client.destroy()
      await client.closed
      await settle()
      assert.equal(tb?.broker.retained.get('alarms/kept')?.payload.toString(), 'offline')
    })
  })
}

describe('wills, MQTT 5.0 only', () => {
  it('publishes the will after DISCONNECT with 0x04 [MQTT-3.14.2-1]', async () => {
    const w = await watcher(5)
    const { client } = await raw(5, { clientId: 'dev', will: will() })
    client.send({ cmd: 'disconnect', reasonCode: 0x04 })
    await client.waitClosed()
    assert.equal((await publishes(w, 1)).length, 1)
  })

  it('publishes the will after a client DISCONNECT with an error code such as 0x80 [MQTT-3.1.2-8]', async () => {
    const w = await watcher(5)
    const { client } = await raw(5, { clientId: 'dev', will: will() })
    client.send({ cmd: 'disconnect', reasonCode: 0x80 })
    await client.waitClosed()
    assert.equal((await publishes(w, 1)).length, 1)
  })

  it('forwards the will properties with the will [MQTT-3.1.3-10]', async () => {
    const w = await watcher(5)
    const { client } = await raw(5, {
      clientId: 'dev',
      will: will({
        properties: {
          contentType: 'text/plain',
          responseTopic: 'alarms/ack',
          correlationData: Buffer.from('c-1'),
          payloadFormatIndicator: true,
          userProperties: { site: 'north' },
        },
      }),
    })
    client.destroy()
    const [got] = await publishes(w, 1)
    assert.equal(got?.properties?.contentType, 'text/plain')
    assert.equal(got?.properties?.responseTopic, 'alarms/ack')
    assert.equal(got?.properties?.correlationData?.toString(), 'c-1')
    assert.equal(got?.properties?.payloadFormatIndicator, true)
    assert.deepEqual({ ...got?.properties?.userProperties }, { site: 'north' })
  })

  it('keeps the order of the will User Properties, repeats included [MQTT-3.1.3-10]', async () => {
    const w = await watcher(5)
    const pairs: Array<[string, string]> = [
      ['b', '1'],
      ['2', 'x'],
      ['b', '3'],
      ['a', '4'],
    ]
    const client = await RawClient.open((tb as TestBroker).port, 5)
    raws.push(client)
    client.write(connectWithWillUserProperties('wdev', 'alarms/ordered', pairs))
    await client.next('connack')
    client.destroy()
    await publishes(w, 1)
    const frame = w.frames.find((f) => (f[0] as number) >> 4 === 3)
    assert.ok(frame, 'the will arrived')
    assert.deepEqual(publishUserProperties(frame), pairs)
  })

  it('counts the will Message Expiry Interval from when the will is sent [MQTT-3.1.3-15]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const w = await watcher(5)
    const { client } = await raw(5, {
      clientId: 'dev',
      properties: { sessionExpiryInterval: 300 },
      will: will({ properties: { willDelayInterval: 30, messageExpiryInterval: 20 } }),
    })
    client.destroy()
    await client.closed
    await settle()
    clock.advance(30_000)
    const [got] = await publishes(w, 1)
    assert.equal(got?.properties?.messageExpiryInterval, 20)
  })

  it('delays the will by the Will Delay Interval [MQTT-3.1.3-9]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const w = await watcher(5)
    const { client } = await raw(5, {
      clientId: 'dev',
      properties: { sessionExpiryInterval: 300 },
      will: will({ properties: { willDelayInterval: 10 } }),
    })
    client.destroy()
    await client.closed
    await settle()
    clock.advance(9_999)
    assert.equal((await publishes(w)).length, 0)
    clock.advance(1)
    assert.equal((await publishes(w, 1)).length, 1)
  })

  it('does not send a delayed will when the client reconnects within the delay [MQTT-3.1.3-9]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const w = await watcher(5)
    const fields = {
      clientId: 'dev',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      will: will({ properties: { willDelayInterval: 10 } }),
    }
    const first = await raw(5, fields)
    first.client.destroy()
    await first.client.closed
    await settle()
    clock.advance(5_000)
    const { will: _dropped, ...withoutWill } = fields
    const second = await raw(5, withoutWill)
    assert.equal(second.connack.sessionPresent, true)
    clock.advance(60_000)
    assert.equal((await publishes(w)).length, 0)
  })

  it('does not send a delayed will when the client reconnects with Clean Start 1 within the delay [MQTT-3.1.2-8]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const w = await watcher(5)
    const first = await raw(5, {
      clientId: 'dev',
      properties: { sessionExpiryInterval: 300 },
      will: will({ properties: { willDelayInterval: 10 } }),
    })
    first.client.destroy()
    await first.client.closed
    await settle()
    clock.advance(5_000)
    const second = await raw(5, { clientId: 'dev', clean: true })
    assert.equal(second.connack.sessionPresent, false)
    clock.advance(60_000)
    assert.equal((await publishes(w)).length, 0)
  })

  it('sends the will when the session expires before the Will Delay Interval [MQTT-3.1.2-8]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const w = await watcher(5)
    const { client } = await raw(5, {
      clientId: 'dev',
      properties: { sessionExpiryInterval: 5 },
      will: will({ properties: { willDelayInterval: 60 } }),
    })
    client.destroy()
    await client.closed
    await settle()
    clock.advance(4_999)
    assert.equal((await publishes(w)).length, 0)
    clock.advance(1)
    assert.equal((await publishes(w, 1)).length, 1)
  })

  it('sends the will at once when the session ends at disconnect, whatever the delay [MQTT-3.1.2-8]', async () => {
    const w = await watcher(5)
    const { client } = await raw(5, {
      clientId: 'dev',
      will: will({ properties: { willDelayInterval: 60 } }),
    })
    client.destroy()
    assert.equal((await publishes(w, 1)).length, 1)
  })

  it('does not send the will when the broker disconnects a client by default (API contract)', async () => {
    const t = await broker()
    const w = await watcher(5)
    const { client } = await raw(5, { clientId: 'dev', will: will() })
    t.broker.disconnectClient('dev', 0x98)
    await client.waitClosed()
    assert.equal((await publishes(w)).length, 0)
  })

  it('sends the will when the broker disconnects a client with sendWill [MQTT-3.1.2-8]', async () => {
    const t = await broker()
    const w = await watcher(5)
    const { client } = await raw(5, { clientId: 'dev', will: will() })
    t.broker.disconnectClient('dev', 0x98, { sendWill: true })
    await client.waitClosed()
    assert.equal((await publishes(w, 1)).length, 1)
  })
})

/** A 5.0 CONNECT (Clean Start, will QoS 1) whose will has User Properties in this order, by hand. */
function connectWithWillUserProperties(
  clientId: string,
  topic: string,
  pairs: Array<[string, string]>,
): Buffer {
  const str = (v: string): Buffer => {
    const b = Buffer.from(v)
    const len = Buffer.alloc(2)
    len.writeUInt16BE(b.length)
    return Buffer.concat([len, b])
  }
  const willProps = Buffer.concat(
    pairs.map(([n, v]) => Buffer.concat([Buffer.from([0x26]), str(n), str(v)])),
  )
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([5, 0x0e, 0, 0, 0]),
    str(clientId),
    Buffer.from([willProps.length]),
    willProps,
    str(topic),
    str('gone'),
  ])
  assert.ok(
    body.length < 128 && willProps.length < 128,
    'body.length < 128 && willProps.length < 128',
  )
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}
