import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { parseConfig } from '../../src/config/load.js'
import { startTlsListener } from '../../src/transport/tls-listeners.js'
import { makePki, RecordingBroker, tlsClient, waitFor } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

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
