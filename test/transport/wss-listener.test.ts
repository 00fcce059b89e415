/**
 * MQTT over WebSocket over TLS (`wss`) against the broker core: the same
 * certificate checks, audit and revocation as on mqtts (C09, C11, C13).
 */
import assert from 'node:assert/strict'
import { request } from 'node:https'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import WebSocket from 'ws'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { Broker } from '../../src/broker/broker.js'
import { DenyList } from '../../src/transport/deny-list.js'
import { createWssListener } from '../../src/transport/wss-listener.js'
import { makePki, type Pki, waitFor } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

describe('wss listener with the broker core', () => {
  const tmp = makeTempDir('phimq-wss-')
  const audit = new MemoryAuditSink()
  const denyList = new DenyList()
  const clients: MqttClient[] = []
  let pki: Pki
  let broker: Broker
  let listener: Awaited<ReturnType<typeof createWssListener>>

  before(async () => {
    pki = await makePki(join(tmp.dir, 'pki'))
    broker = new Broker({ audit, nodeId: 'test' })
    await broker.start()
    listener = await createWssListener(
      {
        name: 'web',
        host: '127.0.0.1',
        port: 0,
        ...pki.paths,
        crl: [pki.paths.crl],
        maxPayloadBytes: 4096,
      },
      broker,
      { audit, denyList },
    )
  })
  after(async () => {
    for (const c of clients) c.end(true)
    await listener.close()
    await broker.close()
    tmp.remove()
  })

  async function device(id: string) {
    return pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id })
  }

  function connect(options: IClientOptions): MqttClient {
    const client = mqtt.connect(listener.url, {
      ca: pki.ca.rootPem,
      servername: 'localhost',
      reconnectPeriod: 0,
      connectTimeout: 3000,
      protocolVersion: 5,
      ...options,
    })
    clients.push(client)
    return client
  }

  function connected(client: MqttClient): Promise<void> {
    return new Promise((resolve, reject) => {
      client.once('connect', () => resolve())
      client.once('error', reject)
    })
  }

  it('serves wss on /mqtt', () => {
    assert.match(listener.url, /^wss:\/\/127\.0\.0\.1:\d+\/mqtt$/)
  })

  it('a device connects over wss with its certificate and exchanges a message (C09)', async () => {
    const issued = await device('ws-1')
    const client = connect({ clientId: 'ws-1', cert: issued.chainPem, key: issued.keyPem })
    await connected(client)
    await client.subscribeAsync('acme/ws-1/spo2', { qos: 1 })
    const got = new Promise<string>((resolve) =>
      client.once('message', (_t, p) => resolve(p.toString())),
    )
    await client.publishAsync('acme/ws-1/spo2', 'synthetic-98', { qos: 1 })
    assert.equal(await got, 'synthetic-98')
    const hs = audit.ofType('tls.handshake').find((e) => e.identity?.id === 'ws-1')
    assert.equal(hs?.listener, 'web')
    assert.equal(hs?.result, 'accepted')
    client.end(true)
  })

  it('a wss client without a certificate is refused and audited (C09, C13)', async () => {
    const before = audit.ofType('client.connected').length
    const client = connect({ clientId: 'anon' })
    await new Promise<void>((resolve) => {
      client.once('error', () => resolve())
      client.once('close', () => resolve())
    })
    assert.equal(client.connected, false)
    assert.equal(audit.ofType('client.connected').length, before)
    await waitFor(() => audit.ofType('tls.handshake').find((e) => e.reason === 'NO_CLIENT_CERT'))
  })

  it('refuses another path, a missing mqtt subprotocol, and plain https requests', async () => {
    const issued = await device('ws-2')
    const tlsOpts = {
      cert: issued.chainPem,
      key: issued.keyPem,
      ca: pki.ca.rootPem,
      servername: 'localhost',
    }
    const status = (url: string, protocols: string[]) =>
      new Promise<number | string>((resolve) => {
        const ws = new WebSocket(url, protocols, tlsOpts)
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.once('open', () => {
          resolve('open')
          ws.close()
        })
        ws.once('error', (e) => resolve(e.message))
      })
    const base = listener.url.replace(/\/mqtt$/, '')
    assert.equal(await status(`${base}/other`, ['mqtt']), 404)
    assert.equal(await status(listener.url, ['graphql-ws']), 400)
    assert.equal(await status(listener.url, ['mqtt']), 'open')

    const plain = await new Promise<number>((resolve, reject) => {
      const req = request(`${base.replace('wss:', 'https:')}/mqtt`, tlsOpts, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(plain, 426)
  })

  it('refuses a WebSocket message above maxPayload', async () => {
    const issued = await device('ws-3')
    const client = connect({ clientId: 'ws-3', cert: issued.chainPem, key: issued.keyPem })
    await connected(client)
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    client.publish('acme/ws-3/blob', Buffer.alloc(8192, 1), { qos: 0 })
    await closed
    assert.equal(client.connected, false)
  })

  it('a deny-listed wss session gets DISCONNECT 0x98 within 1 s (C11)', async () => {
    const issued = await device('ws-4')
    const client = connect({ clientId: 'ws-4', cert: issued.chainPem, key: issued.keyPem })
    await connected(client)
    const disconnect = new Promise<number | undefined>((resolve) =>
      client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    )
    const start = Date.now()
    denyList.add(issued.record.fingerprint256)
    assert.equal(await disconnect, 0x98)
    assert.ok(Date.now() - start < 1000)
    assert.deepEqual(
      audit.ofType('tls.session.revoked').find((e) => e.listener === 'web')?.clientIds,
      ['ws-4'],
    )
  })
})
