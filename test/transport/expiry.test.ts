import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { ManualClock } from '../../src/broker/clock.js'
import { loadConfigFile } from '../../src/config/load.js'
import { findBuiltInCas, InventoryWatch } from '../../src/pki/inventory-watch.js'
import { startServer } from '../../src/server.js'
import { ExpiryWarnings } from '../../src/transport/expiry-warnings.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { closed, makePki, RecordingBroker, tlsClient, waitFor } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

const DAY_MS = 86_400_000

describe('certificate expiry warnings (C12)', () => {
  const tmp = makeTempDir('phimq-expiry-')
  after(() => tmp.remove())

  it('warns at 30, 7 and 1 days for a connected certificate, once per step', async () => {
    const pki = await makePki(join(tmp.dir, 'pki'))
    const clock = new ManualClock(Date.now())
    const audit = new MemoryAuditSink('test', clock)
    const listener = await createMqttsListener(
      { name: 'devices', host: '127.0.0.1', port: 0, ...pki.paths, crl: [pki.paths.crl] },
      new RecordingBroker(),
      { audit, clock },
    )
    try {
      // 10 days left at connect.
      const issued = await pki.ca.issueCertificate({
        kind: 'device',
        tenant: 'acme',
        id: 'exp-1',
        notBefore: new Date(Date.now() - 80 * DAY_MS),
        days: 90,
      })
      const c = await tlsClient(listener.port, {
        cert: issued.chainPem,
        key: issued.keyPem,
        ca: pki.ca.rootPem,
      })
      const first = await waitFor(() => audit.ofType('cert.expiring')[0])
      assert.equal(first.thresholdDays, 30)
      assert.equal(first.daysLeft, 9)
      assert.deepEqual(first.identity, { tenant: 'acme', role: 'device', id: 'exp-1' })

      clock.advance(1 * DAY_MS)
      assert.equal(audit.ofType('cert.expiring').length, 1, 'no repeat within a step')
      clock.advance(3 * DAY_MS)
      assert.deepEqual(
        audit.ofType('cert.expiring').map((e) => e.thresholdDays),
        [30, 7],
      )
      clock.advance(5 * DAY_MS)
      assert.deepEqual(
        audit.ofType('cert.expiring').map((e) => e.thresholdDays),
        [30, 7, 1],
      )
      c.socket.destroy()
    } finally {
      await listener.close()
    }
  })

  it('says nothing for a certificate with more than 30 days left', async () => {
    const pki = await makePki(join(tmp.dir, 'pki2'))
    const audit = new MemoryAuditSink()
    const listener = await createMqttsListener(
      { name: 'devices', host: '127.0.0.1', port: 0, ...pki.paths, crl: [pki.paths.crl] },
      new RecordingBroker(),
      { audit },
    )
    try {
      const issued = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'exp-2' })
      const c = await tlsClient(listener.port, {
        cert: issued.chainPem,
        key: issued.keyPem,
        ca: pki.ca.rootPem,
      })
      await waitFor(() => audit.ofType('tls.handshake')[0])
      assert.equal(audit.ofType('cert.expiring').length, 0)
      assert.equal(pki.ca.expiring(30).length, 0)
      c.socket.destroy()
    } finally {
      await listener.close()
    }
  })

  it('lists issued certificates close to expiry from the CA', async () => {
    const pki = await makePki(join(tmp.dir, 'pki3'))
    const soon = await pki.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'exp-3',
      notBefore: new Date(Date.now() - 85 * DAY_MS),
      days: 90,
    })
    assert.deepEqual(
      pki.ca.expiring(7).map((c) => c.serial),
      [soon.record.serial],
    )
    assert.equal(pki.ca.expiring(1).length, 0)
  })
  it('warns once per certificate and step across reconnects and listeners, not per connection', async () => {
    const pki = await makePki(join(tmp.dir, 'pki4'))
    const clock = new ManualClock(Date.now())
    const audit = new MemoryAuditSink('test', clock)
    const expiryWarnings = new ExpiryWarnings({ audit, clock })
    const deps = { audit, clock, expiryWarnings }
    const opts = { host: '127.0.0.1', port: 0, ...pki.paths, crl: [pki.paths.crl] }
    const a = await createMqttsListener({ name: 'devices', ...opts }, new RecordingBroker(), deps)
    const b = await createMqttsListener({ name: 'backup', ...opts }, new RecordingBroker(), deps)
    try {
      const issued = await pki.ca.issueCertificate({
        kind: 'device',
        tenant: 'acme',
        id: 'exp-4',
        notBefore: new Date(Date.now() - 85 * DAY_MS),
        days: 90,
      })
      const client = { cert: issued.chainPem, key: issued.keyPem, ca: pki.ca.rootPem }
      for (const port of [a.port, a.port, b.port]) {
        const before = audit.ofType('tls.handshake').length
        const c = await tlsClient(port, client)
        await waitFor(() => audit.ofType('tls.handshake')[before])
        c.socket.destroy()
        await closed(c.socket)
      }
      const warned = audit.ofType('cert.expiring')
      assert.equal(audit.ofType('tls.handshake').length, 3)
      assert.deepEqual(
        warned.map((e) => [e.source, e.listener, e.thresholdDays]),
        [['connected', 'devices', 7]],
      )
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('warning steps are configurable', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1))
    const audit = new MemoryAuditSink('test', clock)
    const warnings = new ExpiryWarnings({ audit, clock, warningDays: [3, 14] })
    const cert = {
      source: 'connected' as const,
      fingerprint256: 'AA:BB',
      serial: '01',
      notAfterMs: clock.now() + 20 * DAY_MS,
    }
    assert.equal(warnings.check(cert), false, '20 days left: above every step')
    clock.advance(7 * DAY_MS)
    assert.equal(warnings.check(cert), true)
    assert.equal(warnings.check(cert), false)
    clock.advance(10 * DAY_MS)
    assert.equal(warnings.check(cert), true)
    clock.advance(3 * DAY_MS)
    assert.equal(warnings.check(cert), false, 'expired: nothing left to warn about')
    assert.deepEqual(
      audit.ofType('cert.expiring').map((e) => [e.thresholdDays, e.daysLeft]),
      [
        [14, 13],
        [3, 3],
      ],
    )
  })

  it('scans the built-in CA inventory at start and on its interval, once per step (issued)', async () => {
    const dataDir = join(tmp.dir, 'data5')
    const pki = await makePki(join(dataDir))
    assert.deepEqual(findBuiltInCas(dataDir), ['ca'])
    const soon = await pki.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'inv-1',
      notBefore: new Date(Date.now() - 80 * DAY_MS),
      days: 90,
    })
    await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'inv-2' })
    const revoked = await pki.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'inv-3',
      notBefore: new Date(Date.now() - 89 * DAY_MS),
      days: 90,
    })
    await pki.ca.revoke(revoked.record.serial)
    const clock = new ManualClock(Date.now())
    const audit = new MemoryAuditSink('test', clock)
    const watch = new InventoryWatch({
      dataDir,
      warnings: new ExpiryWarnings({ audit, clock }),
      clock,
      intervalMs: 3_600_000,
    })
    await watch.start()
    try {
      const first = audit.ofType('cert.expiring')
      assert.equal(first.length, 1, 'only the valid certificate within 30 days')
      assert.equal(first[0]?.source, 'issued')
      assert.equal(first[0]?.ca, 'ca')
      assert.equal(first[0]?.serial, soon.record.serial)
      assert.deepEqual(first[0]?.identity, { tenant: 'acme', role: 'device', id: 'inv-1' })
      assert.equal(first[0]?.thresholdDays, 30)

      // A later scan finds nothing new until the next step.
      assert.equal(await watch.scan(), 0)
      clock.advance(3 * DAY_MS)
      // The interval scan sees the 7-day step (the timer fires on the manual clock).
      await waitFor(() => audit.ofType('cert.expiring')[1])
      assert.deepEqual(
        audit.ofType('cert.expiring').map((e) => e.thresholdDays),
        [30, 7],
      )
    } finally {
      watch.stop()
    }
  })
  it('a server on a data directory with the built-in CA warns about issued certificates at start', async () => {
    const dir = join(tmp.dir, 'srv6')
    const pki = await makePki(dir)
    await pki.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'inv-6',
      notBefore: new Date(Date.now() - 89 * DAY_MS),
      days: 90,
    })
    const file = join(dir, 'phimq.yaml')
    writeFileSync(
      file,
      `environment: prod
dataDir: .
listeners:
  - { name: devices, type: mqtts, port: 0, tls: { cert: server.crt, key: server.key, ca: ca.pem } }
policy: { rules: [] }
audit: { certExpiry: { warningDays: [2] } }
metrics: { enabled: false }
`,
    )
    const audit = new MemoryAuditSink()
    const server = await startServer(loadConfigFile(file), { audit })
    await server.close()
    const warned = audit.ofType('cert.expiring')
    assert.deepEqual(
      warned.map((e) => [e.source, e.ca, e.identity?.id, e.thresholdDays]),
      [['issued', 'ca', 'inv-6', 2]],
    )
  })
})
