/**
 * Sessions belong to the identity that made them (C10, C18): another
 * identity presenting the same Client Identifier is refused and touches
 * nothing of the session.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import { after, before, describe, it } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { Broker } from '../../src/broker/broker.js'
import type { Identity } from '../../src/broker/types.js'
import { nextMessages } from '../helpers/broker.js'

const acmeDevice: Identity = { tenant: 'acme', role: 'device', id: 'dev-1' }
const betaDevice: Identity = { tenant: 'beta', role: 'device', id: 'dev-1' }
const keep = {
  clean: false,
  protocolVersion: 5 as const,
  properties: { sessionExpiryInterval: 600 },
}

describe('session ownership', () => {
  const audit = new MemoryAuditSink('test')
  const broker = new Broker({ audit })
  let server: Server
  let port = 0
  let nextIdentity: Identity | undefined
  const clients: MqttClient[] = []

  /** Connect as `identity`; resolves with the client, or rejects with the CONNACK error. */
  async function connect(identity: Identity, options: IClientOptions = {}): Promise<MqttClient> {
    nextIdentity = identity
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      clientId: identity.id,
      reconnectPeriod: 0,
      ...options,
    })
    clients.push(client)
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve())
      client.once('error', reject)
    })
    return client
  }

  before(async () => {
    await broker.start()
    server = createServer((socket) => {
      broker.handleConnection(socket, {
        listener: 'test',
        remoteAddress: '127.0.0.1',
        identity: nextIdentity,
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    port = typeof address === 'object' && address ? address.port : 0
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    server.close()
    await broker.close()
  })

  it("another tenant's device with the same client id is refused with 0x87 and the session is untouched", async () => {
    const first = await connect(acmeDevice, keep)
    await first.subscribeAsync('acme/rpm/dev-1/cmd/+', { qos: 1 })
    await first.endAsync()

    await assert.rejects(connect(betaDevice, keep), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x87)
      return true
    })
    const refused = audit.ofType('connect.refused').at(-1)
    assert.equal(refused?.rule, 'C10.session-owner')

    const back = await connect(acmeDevice, keep)
    const got = nextMessages(back, 1)
    const app = await connect({ tenant: 'acme', role: 'app', id: 'app-1' })
    await app.publishAsync('acme/rpm/dev-1/cmd/dose', 'd', { qos: 1 })
    assert.equal((await got)[0]?.topic, 'acme/rpm/dev-1/cmd/dose')
  })

  it('a refused identity does not take over the live connection', async () => {
    const live = await connect({ tenant: 'acme', role: 'device', id: 'dev-2' })
    await assert.rejects(connect({ tenant: 'beta', role: 'device', id: 'dev-2' }))
    assert.equal(live.connected, true)
    await live.publishAsync('acme/rpm/dev-2/vitals/hr', '70', { qos: 1 })
  })

  it('a user name other than the certificate identity is refused with 0x87 (C10)', async () => {
    await assert.rejects(
      connect(
        { tenant: 'acme', role: 'device', id: 'dev-3' },
        { username: 'dev-4', protocolVersion: 5 },
      ),
      (err: Error & { code?: number }) => err.code === 0x87,
    )
    assert.equal(audit.ofType('connect.refused').at(-1)?.rule, 'C10.username-binding')
    const ok = await connect({ tenant: 'acme', role: 'device', id: 'dev-3' }, { username: 'dev-3' })
    assert.equal(ok.connected, true)
  })
})
