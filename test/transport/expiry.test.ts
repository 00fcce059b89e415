import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { ManualClock } from '../../src/broker/clock.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { makePki, RecordingBroker, tlsClient, waitFor } from '../helpers/tls-fixture.js'
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
})
