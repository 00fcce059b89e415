/**
 * MQTT.js over mqtts against the real broker core, with certificates made
 * by our PKI (controls C09, C10, C11).
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { Broker } from '../../src/broker/broker.js'
import { DenyList } from '../../src/transport/deny-list.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { makePki, type Pki, waitFor } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

interface Creds {
  cert: string
  key: string
}

describe('MQTT over mqtts with the broker core', () => {
  const tmp = makeTempDir('phimq-mqtts-core-')
  const audit = new MemoryAuditSink()
  const denyList = new DenyList()
  const clients: MqttClient[] = []
  let pki: Pki
  let broker: Broker
  let listener: Awaited<ReturnType<typeof createMqttsListener>>

  before(async () => {
    pki = await makePki(join(tmp.dir, 'pki'))
    broker = new Broker({ audit, nodeId: 'test' })
    await broker.start()
    listener = await createMqttsListener(
      {
        name: 'devices',
        host: '127.0.0.1',
        port: 0,
        ...pki.paths,
        crl: [pki.paths.crl],
        reloadPollMs: 50,
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

  async function device(id: string): Promise<Creds & { fingerprint256: string; serial: string }> {
    const issued = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id })
    return {
      cert: issued.chainPem,
      key: issued.keyPem,
      fingerprint256: issued.record.fingerprint256,
      serial: issued.record.serial,
    }
  }

  function connect(creds: Creds | undefined, options: IClientOptions): MqttClient {
    const client = mqtt.connect(listener.url, {
      ca: pki.ca.rootPem,
      servername: 'localhost',
      reconnectPeriod: 0,
      connectTimeout: 3000,
      protocolVersion: 5,
      ...creds,
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

  it('a device with its certificate connects, publishes and receives (C09, C10)', async () => {
    const creds = await device('bp-1')
    const client = connect(creds, { clientId: 'bp-1' })
    await connected(client)
    await client.subscribeAsync('acme/bp-1/hr', { qos: 1 })
    const got = new Promise<string>((resolve) =>
      client.once('message', (_t, payload) => resolve(payload.toString())),
    )
    await client.publishAsync('acme/bp-1/hr', 'synthetic-72', { qos: 1 })
    assert.equal(await got, 'synthetic-72')
    const e = audit.ofType('client.connected').find((x) => x.actor.clientId === 'bp-1')
    assert.deepEqual(e?.actor.identity, { tenant: 'acme', role: 'device', id: 'bp-1' })
    client.end(true)
  })

  it('a client id other than the certificate id is refused with CONNACK 0x87 (C10)', async () => {
    const creds = await device('dev-1')
    const client = connect(creds, { clientId: 'dev-2' })
    const err = await new Promise<Error & { code?: number }>((resolve) =>
      client.once('error', resolve),
    )
    assert.equal(err.code, 0x87)
    const refused = await waitFor(() =>
      audit.ofType('connect.refused').find((x) => x.rule === 'C10.client-id-binding'),
    )
    assert.equal(refused.reasonCode, 0x87)
  })

  it('the C10 refusal audit names the attempted client id and the certificate fingerprint', async () => {
    const creds = await device('dev-4')
    const client = connect(creds, { clientId: 'dev-5' })
    await new Promise((resolve) => client.once('error', resolve))
    const refused = await waitFor(() =>
      audit.ofType('connect.refused').find((x) => x.clientId === 'dev-5'),
    )
    assert.equal(refused.rule, 'C10.client-id-binding')
    assert.equal(refused.fingerprint, creds.fingerprint256)
  })

  it('a 3.1.1 client with a mismatched id gets return code 5 (C10)', async () => {
    const creds = await device('dev-3')
    const client = connect(creds, { clientId: 'dev-4', protocolVersion: 4 })
    const err = await new Promise<Error & { code?: number }>((resolve) =>
      client.once('error', resolve),
    )
    assert.equal(err.code, 5)
  })

  it('a client without a certificate never reaches MQTT (C09)', async () => {
    const before = audit.ofType('client.connected').length
    const client = connect(undefined, { clientId: 'anon' })
    await new Promise<void>((resolve) => {
      client.once('error', () => resolve())
      client.once('close', () => resolve())
    })
    assert.equal(client.connected, false)
    assert.equal(audit.ofType('client.connected').length, before)
    assert.ok(
      audit.ofType('tls.handshake').some((e) => e.reason === 'NO_CLIENT_CERT'),
      'refusal audited',
    )
  })

  it('a deny-listed live session gets DISCONNECT 0x98 within 1 s and its will is not sent (C11)', async () => {
    const watcher = connect(await device('watcher-1'), { clientId: 'watcher-1' })
    await connected(watcher)
    await watcher.subscribeAsync('acme/wills/#', { qos: 1 })
    let willSeen = false
    watcher.on('message', () => {
      willSeen = true
    })

    const creds = await device('bp-9')
    const client = connect(creds, {
      clientId: 'bp-9',
      will: { topic: 'acme/wills/bp-9', payload: Buffer.from('gone'), qos: 1, retain: false },
    })
    await connected(client)
    const disconnect = new Promise<number | undefined>((resolve) =>
      client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    )

    const start = Date.now()
    denyList.add(creds.fingerprint256)
    assert.equal(await disconnect, 0x98)
    assert.ok(Date.now() - start < 1000)
    await waitFor(() => !client.connected || undefined, 1000, 'client closed')
    await new Promise((r) => setTimeout(r, 200))
    assert.equal(willSeen, false, 'no will after revocation')
    const ev = audit.ofType('tls.session.revoked').find((x) => x.clientIds.includes('bp-9'))
    assert.equal(ev?.cause, 'deny-list')
  })

  it('a session whose certificate a new CRL revokes gets DISCONNECT 0x98 within 1 s (C11)', async () => {
    const creds = await device('bp-10')
    const client = connect(creds, { clientId: 'bp-10' })
    await connected(client)
    const disconnect = new Promise<number | undefined>((resolve) =>
      client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    )
    const start = Date.now()
    await pki.ca.revoke(creds.serial)
    await pki.ca.writeCrl()
    assert.equal(await disconnect, 0x98)
    assert.ok(Date.now() - start < 1000, `took ${Date.now() - start} ms`)

    // Reconnecting with the revoked certificate fails at the TLS layer.
    const again = connect(creds, { clientId: 'bp-10' })
    await new Promise<void>((resolve) => {
      again.once('error', () => resolve())
      again.once('close', () => resolve())
    })
    assert.equal(again.connected, false)
    await waitFor(() => audit.ofType('tls.handshake').find((e) => e.reason === 'CERT_REVOKED'))
  })
})
