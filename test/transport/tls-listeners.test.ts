import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import mqtt from 'mqtt'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { loadConfigFile, parseConfig } from '../../src/config/load.js'
import { startServer } from '../../src/server.js'
import {
  configBaseDir,
  startListener,
  startTlsListener,
} from '../../src/transport/tls-listeners.js'
import { makePki, RecordingBroker, tlsClient, waitFor } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

/** Send a plaintext MQTT 3.1.1 CONNECT; resolve with what came back before close or 3 s. */
function plainConnect(port: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(Buffer.from('101000044d5154540402003c000470686931', 'hex'))
    })
    const done = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(Buffer.concat(chunks))
    }
    const timer = setTimeout(done, 3000)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', done)
    socket.on('close', done)
  })
}

describe('startTlsListener from config', () => {
  const tmp = makeTempDir('phimq-tls-cfg-')
  after(() => tmp.remove())

  it('starts an mqtts and a wss listener from one config file, paths relative to it', async () => {
    const pki = await makePki(join(tmp.dir, 'pki'))
    const text = `
environment: prod
listeners:
  - type: mqtts
    name: devices
    port: 0
    clientIdBinding: prefix
    tls: { cert: pki/server.crt, key: pki/server.key, ca: pki/ca.pem, crl: [pki/ca/crl.pem] }
  - type: wss
    name: web
    port: 0
    tls: { cert: pki/server.crt, key: pki/server.key, ca: pki/ca.pem }
    allowedOrigins: []
`
    const loaded = parseConfig(text, join(tmp.dir, 'phimq.yaml'), tmp.dir)
    const audit = new MemoryAuditSink()
    const broker = new RecordingBroker()
    const [mqtts, wss] = loaded.config.listeners
    assert.ok(mqtts?.type === 'mqtts' && wss?.type === 'wss')
    const a = await startTlsListener(mqtts, tmp.dir, broker, { audit })
    const b = await startTlsListener(wss, tmp.dir, broker, { audit })
    try {
      assert.match(a.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/)
      assert.match(b.url, /^wss:\/\/127\.0\.0\.1:\d+\/mqtt$/)
      const issued = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'cfg-1' })
      const c = await tlsClient(a.port, {
        cert: issued.chainPem,
        key: issued.keyPem,
        ca: pki.ca.rootPem,
      })
      const rec = await waitFor(() => broker.connections[0])
      assert.equal(rec.context.clientIdBinding, 'prefix')
      assert.equal(rec.context.listener, 'devices')
      c.socket.destroy()
    } finally {
      await a.close()
      await b.close()
    }
  })
})

describe('startListener dispatch', () => {
  const tmp = makeTempDir('phimq-dispatch-')
  after(() => tmp.remove())

  it('starts tcp as plaintext and mqtts with TLS from one call', async () => {
    const pki = await makePki(join(tmp.dir, 'pki'))
    const loaded = parseConfig(
      `
environment: dev
listeners:
  - { type: tcp, name: plain, port: 0 }
  - type: mqtts
    name: secure
    port: 0
    tls: { cert: pki/server.crt, key: pki/server.key, ca: pki/ca.pem }
`,
      join(tmp.dir, 'phimq.yaml'),
      tmp.dir,
    )
    assert.equal(configBaseDir(loaded), tmp.dir)
    const broker = new RecordingBroker()
    const deps = { audit: new MemoryAuditSink() }
    const running = []
    for (const l of loaded.config.listeners) {
      running.push(await startListener(l, configBaseDir(loaded), broker, deps))
    }
    try {
      assert.match(running[0]?.url ?? '', /^mqtt:\/\//)
      assert.match(running[1]?.url ?? '', /^mqtts:\/\//)
      // The mqtts port speaks TLS: a TLS client with a device cert is handed over.
      const issued = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'd-1' })
      const c = await tlsClient(running[1]?.port ?? 0, {
        cert: issued.chainPem,
        key: issued.keyPem,
        ca: pki.ca.rootPem,
      })
      assert.equal(c.secure, true)
      await waitFor(() => broker.connections.find((x) => x.context.listener === 'secure'))
      c.socket.destroy()
    } finally {
      for (const r of running) await r.close()
    }
  })

  it('startServer serves an mqtts entry with TLS, never as plaintext (C05)', async () => {
    const { ca: pki } = await makePki(join(tmp.dir, 'srv'))
    const file = join(tmp.dir, 'server.yaml')
    writeFileSync(
      file,
      `
environment: dev
dataDir: srv-data
metrics: { enabled: false }
listeners:
  - type: mqtts
    name: secure
    port: 0
    tls: { cert: srv/server.crt, key: srv/server.key, ca: srv/ca.pem }
`,
    )
    const server = await startServer(loadConfigFile(file), { audit: new MemoryAuditSink() })
    try {
      const url = server.listeners[0]?.url ?? ''
      assert.match(url, /^mqtts:\/\/127\.0\.0\.1:\d+$/)
      const port = server.listeners[0]?.port ?? 0
      // A plaintext CONNECT to that port gets no CONNACK: it is not a plaintext listener.
      const reply = await plainConnect(port)
      assert.notEqual(reply[0], 0x20, 'a plaintext CONNACK came back')
      const issued = await pki.issueCertificate({ kind: 'device', tenant: 'acme', id: 'srv-1' })
      const client = await mqtt.connectAsync(url, {
        clientId: 'srv-1',
        cert: issued.chainPem,
        key: issued.keyPem,
        ca: pki.rootPem,
        reconnectPeriod: 0,
      })
      await client.endAsync()
    } finally {
      await server.close()
    }
  })
})
