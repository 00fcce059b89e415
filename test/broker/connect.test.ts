/**
 * CONNECT and CONNACK (MQTT 5.0 section 3.1/3.2, 3.1.1 section 3.1/3.2):
 * Client Identifiers, takeover, refusals, protocol levels, connect timeout,
 * keep alive and broker-initiated DISCONNECT. Raw sockets for exact packets.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet'
import { ManualClock } from '../../src/broker/clock.js'
import { allowAllGate, type Gate } from '../../src/broker/gate.js'
import { useRawHarness } from '../helpers/raw-harness.js'

const { broker, raw, open, current } = useRawHarness()

/** Wait until the broker has taken over `n` sockets (the accept may lag the client). */
async function brokerHasConnections(n: number): Promise<void> {
  const until = Date.now() + 3000
  while (current().broker.connections.size < n && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10))
  }
  // And let the bytes already written reach it.
  await new Promise((r) => setTimeout(r, 30))
}

/** Refuses CONNECT when the password is `wrong`. */
const passwordGate: Gate = {
  ...allowAllGate,
  authorizeConnect: (req) =>
    req.password?.toString() === 'wrong'
      ? { allow: false, reasonCode: 0x86, rule: 'test.password' }
      : { allow: true },
}

describe('Client Identifier', () => {
  it('assigns a Client Identifier to an empty one and returns it in CONNACK [MQTT-3.1.3-6] [MQTT-3.2.2-16]', async () => {
    await broker()
    const { connack } = await raw(5, { clientId: '' })
    assert.equal(connack.reasonCode, 0)
    const assigned = connack.properties?.assignedClientIdentifier
    assert.ok(assigned && assigned.length > 0, 'assigned && assigned.length > 0')
    assert.ok(current().broker.sessions.has(assigned), 'tb?.broker.sessions.has(assigned)')
  })

  it('keeps a session under an assigned Client Identifier that the client can resume [MQTT-3.1.3-6]', async () => {
    await broker()
    const client = await open(5)
    // mqtt-packet will not encode an empty id with Clean Start 0, so by hand:
    // 'MQTT' level 5, flags 0, keep alive 0, Session Expiry Interval 60, empty id.
    client.write(
      Buffer.from([
        0x10, 0x12, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x00, 0x00, 0x00, 0x05, 0x11, 0x00,
        0x00, 0x00, 0x3c, 0x00, 0x00,
      ]),
    )
    const connack = (await client.next('connack')) as IConnackPacket
    const first = { client, connack }
    const assigned = first.connack.properties?.assignedClientIdentifier as string
    first.client.send({ cmd: 'disconnect' })
    await first.client.waitClosed()
    await new Promise((r) => setTimeout(r, 20))
    const again = await raw(5, {
      clientId: assigned,
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    })
    assert.equal(again.connack.sessionPresent, true)
    assert.equal(again.connack.properties?.assignedClientIdentifier, undefined)
  })

  it('gives two clients with empty ids different assigned ids [MQTT-3.1.3-6]', async () => {
    await broker()
    const a = await raw(5)
    const b = await raw(5)
    assert.notEqual(
      a.connack.properties?.assignedClientIdentifier,
      b.connack.properties?.assignedClientIdentifier,
    )
  })

  it('accepts an empty Client Identifier with Clean Session 1 in 3.1.1 [MQTT-3.1.3-7]', async () => {
    await broker()
    const { connack } = await raw(4, { clientId: '', clean: true })
    assert.equal(connack.returnCode, 0)
  })

  it('refuses an empty Client Identifier with Clean Session 0 in 3.1.1 with 0x02 and closes [MQTT-3.1.3-8]', async () => {
    await broker()
    const client = await open(4)
    // mqtt-packet will not encode this CONNECT, so the bytes are written out:
    // 'MQTT' level 4, flags 0 (Clean Session 0), keep alive 0, empty id.
    client.write(
      Buffer.from([
        0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
      ]),
    )
    const connack = (await client.next('connack')) as IConnackPacket
    assert.equal(connack.returnCode, 0x02)
    await client.waitClosed()
  })

  it('refuses a Client Identifier not bound to the identity with 0x87 (C10) [MQTT-3.2.2-7]', async () => {
    await broker({ context: { identity: { id: 'dev-1' }, clientIdBinding: 'equal' } })
    const { client, connack } = await raw(5, { clientId: 'dev-2' })
    assert.equal(connack.reasonCode, 0x87)
    await client.waitClosed()
  })

  it('refuses a Client Identifier not bound to the identity with 0x05 in 3.1.1 (C10)', async () => {
    await broker({ context: { identity: { id: 'dev-1' }, clientIdBinding: 'equal' } })
    const { client, connack } = await raw(4, { clientId: 'dev-2' })
    assert.equal(connack.returnCode, 0x05)
    await client.waitClosed()
  })
})

describe('CONNECT properties', () => {
  for (const props of [{ receiveMaximum: 0 }, { maximumPacketSize: 0 }]) {
    const name = Object.keys(props)[0]
    it(`closes a connection whose CONNECT has ${name} 0, a Protocol Error (section 3.1.2.11) [MQTT-4.13.1-1]`, async () => {
      await broker()
      const client = await open(5)
      client.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clean: true,
        clientId: 'zero',
        keepalive: 0,
        properties: props,
      })
      await client.waitClosed()
      // A CONNACK before the close is allowed, but only a refusal.
      for (const p of client.inbox) {
        assert.equal(p.cmd, 'connack')
        assert.ok(
          ((p as IConnackPacket).reasonCode ?? 0) >= 0x80,
          '((p as IConnackPacket).reasonCode ?? 0) >= 0x80',
        )
      }
    })
  }

  it('sends the capabilities it offers in CONNACK [MQTT-3.2.2-2]', async () => {
    await broker()
    const { connack } = await raw(5, { clientId: 'caps' })
    const p = connack.properties
    assert.equal(p?.retainAvailable, true)
    assert.equal(p?.wildcardSubscriptionAvailable, true)
    assert.equal(p?.subscriptionIdentifiersAvailable, true)
    assert.equal(p?.sharedSubscriptionAvailable, true)
    assert.equal(p?.maximumQoS, undefined, 'QoS 2 is supported')
  })
})

describe('session takeover', () => {
  it('closes the existing connection with DISCONNECT 0x8E when the same id connects [MQTT-3.1.4-3]', async () => {
    await broker()
    const old = await raw(5, { clientId: 'twin' })
    const fresh = await raw(5, { clientId: 'twin' })
    assert.equal(fresh.connack.reasonCode, 0)
    const disconnect = (await old.client.next('disconnect')) as IDisconnectPacket
    assert.equal(disconnect.reasonCode, 0x8e)
    await old.client.waitClosed()
    assert.equal(current().audit.ofType('session.taken-over').length, 1)
  })

  it('closes the existing 3.1.1 connection when the same id connects [MQTT-3.1.4-2]', async () => {
    await broker()
    const old = await raw(4, { clientId: 'twin4' })
    const fresh = await raw(4, { clientId: 'twin4' })
    assert.equal(fresh.connack.returnCode, 0)
    await old.client.waitClosed()
    assert.ok(!fresh.client.isClosed, '!fresh.client.isClosed')
  })

  for (const version of [4, 5] as const) {
    it(`never disturbs the live client when a new CONNECT with its id is refused (v${version}) [MQTT-3.2.2-7]`, async () => {
      const t = await broker({ gate: passwordGate })
      const live = await raw(version, {
        clientId: 'live',
        username: 'u',
        password: Buffer.from('ok'),
      })
      const bad = await raw(version, {
        clientId: 'live',
        username: 'u',
        password: Buffer.from('wrong'),
      })
      if (version === 5) assert.equal(bad.connack.reasonCode, 0x86)
      else assert.equal(bad.connack.returnCode, 0x04)
      await bad.client.waitClosed()
      // The live one still works: it subscribes and receives.
      live.client.send({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: 'still/here', qos: 0 }],
      })
      await live.client.next('suback')
      t.broker.publish(
        { topic: 'still/here', payload: Buffer.from('x'), qos: 0, retain: false },
        undefined,
      )
      const got = await live.client.next('publish')
      assert.equal(got.cmd, 'publish')
      assert.ok(!live.client.isClosed, '!live.client.isClosed')
      assert.equal(t.audit.ofType('session.taken-over').length, 0)
    })
  }
})

describe('refusals next to a live client', () => {
  it('leaves the live client alone when a CONNECT failing the identity binding is refused with 0x87 (C10)', async () => {
    const t = await broker({ context: { identity: { id: 'dev' }, clientIdBinding: 'prefix' } })
    const live = await raw(5, { clientId: 'dev-1' })
    assert.equal(live.connack.reasonCode, 0)
    const bad = await raw(5, { clientId: 'intruder' })
    assert.equal(bad.connack.reasonCode, 0x87)
    await bad.client.waitClosed()
    live.client.send({ cmd: 'pingreq' })
    await live.client.next('pingresp')
    assert.deepEqual(t.broker.listClients(), ['dev-1'])
    assert.equal(t.audit.ofType('connect.refused')[0]?.rule, 'C10.client-id-binding')
  })
})

describe('data after a refused CONNECT', () => {
  for (const version of [4, 5] as const) {
    it(`processes nothing sent after a refused CONNECT (v${version}) [MQTT-3.1.4-6]`, async () => {
      const slowRefusal: Gate = {
        ...allowAllGate,
        authorizeConnect: async (req) => {
          await new Promise((r) => setTimeout(r, 20))
          return passwordGate.authorizeConnect(req)
        },
      }
      await broker({ gate: slowRefusal })
      const { client: watcher } = await raw(version, {
        clientId: 'watcher',
        username: 'u',
        password: Buffer.from('ok'),
      })
      watcher.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'sneak', qos: 0 }] })
      await watcher.next('suback')
      const client = await open(version)
      const mqttPacket = (await import('mqtt-packet')).default
      const opts = { protocolVersion: version }
      client.write(
        Buffer.concat([
          mqttPacket.generate(
            {
              cmd: 'connect',
              protocolId: 'MQTT',
              protocolVersion: version,
              clean: true,
              clientId: 'refused',
              keepalive: 0,
              username: 'u',
              password: Buffer.from('wrong'),
            },
            opts,
          ),
          mqttPacket.generate(
            {
              cmd: 'publish',
              topic: 'sneak',
              payload: Buffer.from('x'),
              qos: 0,
              retain: false,
              dup: false,
            },
            opts,
          ),
        ]),
      )
      await client.waitClosed()
      const got = (await watcher.drain(150)).filter((p) => p.cmd === 'publish')
      assert.deepEqual(got, [])
    })
  }
})

describe('broker shutdown', () => {
  it('sends DISCONNECT 0x8B to 5.0 clients when the broker closes [MQTT-3.14.2-1]', async () => {
    const t = await broker()
    const { client } = await raw(5, { clientId: 'bye' })
    // The broker itself; the harness closes its listener afterwards.
    const closing = t.broker.close()
    const d = (await client.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x8b)
    await closing
    await client.waitClosed()
  })
})

describe('protocol level and packet order', () => {
  it('answers CONNECT with an unsupported protocol level with CONNACK 0x01 and closes [MQTT-3.1.2-2]', async () => {
    await broker()
    const client = await open(4)
    // CONNECT 'MQTT' level 6, clean, keep alive 0, empty client id.
    client.write(
      Buffer.from([
        0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x00, 0x00, 0x00,
      ]),
    )
    const connack = (await client.next('connack')) as IConnackPacket
    assert.equal(connack.returnCode, 0x01)
    await client.waitClosed()
  })

  it('answers a 3.1 (MQIsdp, level 3) CONNECT with CONNACK 0x01 and closes [MQTT-3.1.2-2]', async () => {
    await broker()
    const client = await open(4)
    client.send({
      cmd: 'connect',
      protocolId: 'MQIsdp',
      protocolVersion: 3,
      clean: true,
      clientId: 'old',
      keepalive: 0,
    })
    const connack = (await client.next('connack')) as IConnackPacket
    assert.equal(connack.returnCode, 0x01)
    await client.waitClosed()
  })

  it('closes a 3.1.1 CONNECT with a password but no user name without CONNACK [MQTT-3.1.2-22] [MQTT-3.1.4-1]', async () => {
    await broker()
    const client = await open(4)
    // 'MQTT' level 4, flags: password, clean; keep alive 0; id 'a'; password 'p'.
    client.write(
      Buffer.from([
        0x10, 0x10, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x42, 0x00, 0x00, 0x00, 0x01, 0x61,
        0x00, 0x01, 0x70,
      ]),
    )
    await client.waitClosed()
    assert.deepEqual(client.inbox, [])
  })

  it('closes a 3.1.1 CONNECT whose Will Topic has a wildcard without CONNACK [MQTT-3.1.4-1]', async () => {
    await broker()
    const client = await open(4)
    client.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'w',
      keepalive: 0,
      will: { topic: 'alarms/#', payload: Buffer.from('x'), qos: 0, retain: false },
    })
    await client.waitClosed()
    assert.deepEqual(client.inbox, [])
  })

  it('refuses a 5.0 CONNECT whose Will Topic has a wildcard with CONNACK 0x90 [MQTT-3.1.3-11] [MQTT-4.13.1-1]', async () => {
    await broker()
    const { client, connack } = await raw(5, {
      clientId: 'w5',
      will: { topic: 'alarms/+', payload: Buffer.from('x'), qos: 0, retain: false },
    })
    assert.equal(connack.reasonCode, 0x90)
    await client.waitClosed()
  })

  it('refuses a 5.0 CONNECT with an Authentication Method with CONNACK 0x8C (no enhanced authentication) [MQTT-4.12.0-1]', async () => {
    await broker()
    const { client, connack } = await raw(5, {
      clientId: 'auth',
      properties: { authenticationMethod: 'SCRAM-SHA-1' },
    })
    assert.equal(connack.reasonCode, 0x8c)
    await client.waitClosed()
  })

  it('closes a connection whose first packet is not CONNECT, without a reply [MQTT-3.1.0-1]', async () => {
    await broker()
    const client = await open(5)
    client.send({ cmd: 'pingreq' })
    await client.waitClosed()
    assert.equal(client.inbox.length, 0)
  })

  it('treats a second CONNECT as a Protocol Error: DISCONNECT 0x82 and close [MQTT-3.1.0-2]', async () => {
    await broker()
    const { client } = await raw(5, { clientId: 'twice' })
    client.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      clientId: 'twice',
      keepalive: 0,
    })
    const d = (await client.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x82)
    await client.waitClosed()
  })
})

describe('connect timeout', () => {
  it('closes a socket that sends no CONNECT within connectTimeoutSeconds', async () => {
    const clock = new ManualClock()
    await broker({ clock, limits: { connectTimeoutSeconds: 10 } })
    const client = await open(5)
    await brokerHasConnections(1)
    clock.advance(9_999)
    await new Promise((r) => setTimeout(r, 50))
    assert.ok(!client.isClosed, 'still open before the timeout')
    clock.advance(1)
    await client.waitClosed()
  })

  it('closes a socket that sent only part of a CONNECT within connectTimeoutSeconds', async () => {
    const clock = new ManualClock()
    await broker({ clock, limits: { connectTimeoutSeconds: 5 } })
    const client = await open(5)
    // A CONNECT header declaring 18 bytes, and only 3 of them.
    client.write(Buffer.from([0x10, 0x12, 0x00, 0x04, 0x4d]))
    await brokerHasConnections(1)
    clock.advance(5_000)
    await client.waitClosed()
  })

  it('closes a connection whose CONNECT the gate has not decided within connectTimeoutSeconds', async () => {
    const clock = new ManualClock()
    const stalling: Gate = { ...allowAllGate, authorizeConnect: () => new Promise(() => {}) }
    await broker({ clock, gate: stalling, limits: { connectTimeoutSeconds: 5 } })
    const client = await open(5)
    client.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      clientId: 'stalled',
      keepalive: 0,
    })
    await brokerHasConnections(1)
    clock.advance(5_000)
    await client.waitClosed()
    assert.equal(client.inbox.length, 0, 'no CONNACK')
  })

  it('does not close a client that connected in time', async () => {
    const clock = new ManualClock()
    await broker({ clock, limits: { connectTimeoutSeconds: 10 } })
    const { client } = await raw(5, { clientId: 'in-time' })
    clock.advance(60_000)
    await new Promise((r) => setTimeout(r, 50))
    assert.ok(!client.isClosed, '!client.isClosed')
  })
})

describe('keep alive', () => {
  for (const version of [4, 5] as const) {
    it(`closes a v${version} client silent for 1.5 times its Keep Alive [MQTT-3.1.2-24]`, async () => {
      const clock = new ManualClock()
      await broker({ clock })
      const { client } = await raw(version, { clientId: `ka${version}`, keepalive: 10 })
      clock.advance(14_999)
      await new Promise((r) => setTimeout(r, 50))
      assert.ok(!client.isClosed, 'open before 1.5 x keep alive')
      clock.advance(1)
      if (version === 5) {
        const d = (await client.next('disconnect')) as IDisconnectPacket
        assert.equal(d.reasonCode, 0x8d)
      }
      await client.waitClosed()
    })
  }

  it('keeps a client that sends PINGREQ within the Keep Alive open and answers PINGRESP [MQTT-3.12.4-1]', async () => {
    const clock = new ManualClock()
    await broker({ clock })
    const { client } = await raw(5, { clientId: 'pinger', keepalive: 10 })
    for (let i = 0; i < 3; i++) {
      clock.advance(9_000)
      client.send({ cmd: 'pingreq' })
      await client.next('pingresp')
    }
    clock.advance(14_000)
    await new Promise((r) => setTimeout(r, 50))
    assert.ok(!client.isClosed, '!client.isClosed')
  })

  it('sends Server Keep Alive when the client asks for more than the maximum [MQTT-3.2.2-21]', async () => {
    await broker({ limits: { maxKeepAliveSeconds: 60 } })
    const { connack } = await raw(5, { clientId: 'long-ka', keepalive: 600 })
    assert.equal(connack.properties?.serverKeepAlive, 60)
  })

  it('sends no Server Keep Alive when the client keep alive is within the maximum', async () => {
    await broker({ limits: { maxKeepAliveSeconds: 60 } })
    const { connack } = await raw(5, { clientId: 'short-ka', keepalive: 30 })
    assert.equal(connack.properties?.serverKeepAlive, undefined)
  })

  it('enforces the Server Keep Alive it sent, not the client value [MQTT-3.1.2-21]', async () => {
    const clock = new ManualClock()
    await broker({ clock, limits: { maxKeepAliveSeconds: 20 } })
    const { client } = await raw(5, { clientId: 'ska', keepalive: 600 })
    clock.advance(30_000)
    const d = (await client.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x8d)
    await client.waitClosed()
  })
})

describe('broker-initiated DISCONNECT', () => {
  it('sends DISCONNECT with the given reason code to a 5.0 client and closes [MQTT-3.14.2-1]', async () => {
    const t = await broker()
    const { client } = await raw(5, { clientId: 'kick-me' })
    assert.equal(t.broker.disconnectClient('kick-me', 0x98), true)
    const d = (await client.next('disconnect')) as IDisconnectPacket
    assert.equal(d.reasonCode, 0x98)
    await client.waitClosed()
  })

  it('closes a 3.1.1 client without a DISCONNECT packet', async () => {
    const t = await broker()
    const { client } = await raw(4, { clientId: 'kick-me-4' })
    assert.equal(t.broker.disconnectClient('kick-me-4', 0x98), true)
    await client.waitClosed()
    assert.equal(client.inbox.length, 0)
  })

  it('reports false for a client that is not connected', async () => {
    const t = await broker()
    assert.equal(t.broker.disconnectClient('nobody', 0x98), false)
  })
})
