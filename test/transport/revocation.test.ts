/**
 * Revocation that bites (control C11) and hot reload (C12) on the mqtts
 * listener: CRL reload, stale CRLs, the deny list, live sessions closed
 * within 1 s, and a swapped server certificate served without a restart.
 * The broker is the recording stand-in (listener-level tests).
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { openCa } from '../../src/pki/ca.js'
import { DenyList } from '../../src/transport/deny-list.js'
import type { TlsListenerOptions } from '../../src/transport/listener-options.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import {
  closed,
  makePki,
  type Pki,
  RecordingBroker,
  TEST_PASSPHRASE,
  tlsClient,
  waitFor,
} from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

const DAY_MS = 86_400_000

describe('revocation and reload on the mqtts listener', () => {
  const tmp = makeTempDir('phimq-revoke-')
  const cleanups: Array<() => Promise<void>> = []
  let n = 0
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c()
  })
  after(() => tmp.remove())

  async function setup(over: Partial<TlsListenerOptions> = {}, denyList?: DenyList) {
    const pki = await makePki(join(tmp.dir, `p${n++}`))
    const audit = new MemoryAuditSink()
    const broker = new RecordingBroker()
    const listener = await createMqttsListener(
      {
        name: 'devices',
        host: '127.0.0.1',
        port: 0,
        ...pki.paths,
        crl: [pki.paths.crl],
        reloadPollMs: 50,
        ...over,
      },
      broker,
      { audit, denyList },
    )
    cleanups.push(() => listener.close())
    return { pki, audit, broker, listener }
  }

  async function connectDevice(pki: Pki, port: number, id = 'bp-1') {
    const issued = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id })
    const client = await tlsClient(port, {
      cert: issued.chainPem,
      key: issued.keyPem,
      ca: pki.ca.rootPem,
    })
    return { issued, client }
  }

  function lastHandshake(audit: MemoryAuditSink, count: number) {
    return waitFor(() => audit.ofType('tls.handshake')[count - 1], 3000, 'handshake event')
  }

  it('refuses a certificate revoked by a reloaded CRL with CERT_REVOKED (C11)', async () => {
    const { pki, audit, listener } = await setup()
    const issued = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'bp-2' })
    await pki.ca.revoke(issued.record.serial, 'keyCompromise')
    await pki.ca.writeCrl()
    await waitFor(() => audit.ofType('tls.material.reloaded').find((e) => e.what === 'crl'))

    const client = await tlsClient(listener.port, {
      cert: issued.chainPem,
      key: issued.keyPem,
      ca: pki.ca.rootPem,
    })
    await closed(client.socket)
    const e = await lastHandshake(audit, 1)
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'CERT_REVOKED')
    assert.equal(e.serial?.toLowerCase(), issued.record.serial)
  })

  it('refuses a certificate seen before once a reloaded CRL revokes it (C11)', async () => {
    const { pki, audit, listener } = await setup()
    const { issued, client } = await connectDevice(pki, listener.port)
    assert.equal((await lastHandshake(audit, 1)).result, 'accepted')
    client.socket.destroy()

    await pki.ca.revoke(issued.record.serial, 'keyCompromise')
    await pki.ca.writeCrl()
    await waitFor(() => audit.ofType('tls.material.reloaded').find((e) => e.what === 'crl'))
    const again = await tlsClient(listener.port, {
      cert: issued.chainPem,
      key: issued.keyPem,
      ca: pki.ca.rootPem,
    })
    await closed(again.socket)
    const e = await lastHandshake(audit, 2)
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'CERT_REVOKED')
  })

  it('closes a live session within 1 s when its certificate is revoked by CRL (C11)', async () => {
    const { pki, audit, broker, listener } = await setup()
    const { issued, client } = await connectDevice(pki, listener.port)
    const rec = await waitFor(() => broker.connections[0])
    rec.clientId = 'bp-1' // as if CONNECT had arrived
    const keeper = await connectDevice(pki, listener.port, 'bp-keep')
    await waitFor(() => broker.connections[1]).then((r) => {
      r.clientId = 'bp-keep'
    })

    const start = Date.now()
    await pki.ca.revoke(issued.record.serial)
    await pki.ca.writeCrl()
    await closed(client.socket, 1500)
    const dropped = await waitFor(() => broker.disconnects[0])
    assert.equal(dropped.clientId, 'bp-1')
    assert.equal(dropped.reasonCode, 0x98)
    assert.ok(dropped.at - start < 1000, `closed after ${dropped.at - start} ms`)

    const ev = await waitFor(() => audit.ofType('tls.session.revoked')[0])
    assert.equal(ev.cause, 'crl')
    assert.deepEqual(ev.clientIds, ['bp-1'])
    assert.equal(ev.fingerprint256, issued.record.fingerprint256)
    // The other device stays connected.
    assert.equal(keeper.client.socket.destroyed, false)
    keeper.client.socket.destroy()
  })

  it('deny-lists a fingerprint at once: live session closed with 0x98, next handshake refused (C11)', async () => {
    const denyList = new DenyList()
    const { pki, audit, broker, listener } = await setup({}, denyList)
    const { issued, client } = await connectDevice(pki, listener.port)
    const rec = await waitFor(() => broker.connections[0])
    rec.clientId = 'bp-1'

    denyList.add(issued.record.fingerprint256)
    // Synchronous: the disconnect happened inside add().
    assert.deepEqual(
      broker.disconnects.map((d) => [d.clientId, d.reasonCode]),
      [['bp-1', 0x98]],
    )
    await closed(client.socket, 1000)
    assert.equal(audit.ofType('tls.session.revoked')[0]?.cause, 'deny-list')

    const again = await tlsClient(listener.port, {
      cert: issued.chainPem,
      key: issued.keyPem,
      ca: pki.ca.rootPem,
    })
    await closed(again.socket)
    const e = await lastHandshake(audit, 2)
    assert.equal(e.reason, 'DENY_LISTED')
  })

  it('closes a revoked session that has not sent CONNECT yet by destroying the socket', async () => {
    const denyList = new DenyList()
    const { pki, audit, listener } = await setup({}, denyList)
    const { issued, client } = await connectDevice(pki, listener.port)
    await waitFor(() => audit.ofType('tls.handshake')[0])
    denyList.add(issued.record.fingerprint256)
    await closed(client.socket, 1000)
    assert.deepEqual(audit.ofType('tls.session.revoked')[0]?.clientIds, [])
  })

  it('reads a deny-list file and picks up a new line without a restart (C11)', async () => {
    const file = join(tmp.dir, 'deny.txt')
    writeFileSync(file, '# denied fingerprints\n')
    const { pki, audit, listener } = await setup({ denyListFile: file })
    const { issued, client } = await connectDevice(pki, listener.port)
    await waitFor(() => audit.ofType('tls.handshake')[0])
    writeFileSync(
      file,
      `# denied fingerprints\n${issued.record.fingerprint256.replace(/:/g, '')}\n`,
    )
    await closed(client.socket, 2000)
    assert.equal(audit.ofType('tls.session.revoked')[0]?.cause, 'deny-list')
  })

  it('fails closed on a CRL past its nextUpdate and raises tls.crl.stale (C11)', async () => {
    const dir = join(tmp.dir, `stale${n++}`)
    const pki = await makePki(dir)
    // Sign a CRL whose nextUpdate has already passed.
    const past = await openCa(pki.ca.dir, TEST_PASSPHRASE, { now: () => Date.now() - 3 * DAY_MS })
    await past.writeCrl({ days: 1 })
    const audit = new MemoryAuditSink()
    const listener = await createMqttsListener(
      { name: 'devices', host: '127.0.0.1', port: 0, ...pki.paths, crl: [pki.paths.crl] },
      new RecordingBroker(),
      { audit },
    )
    cleanups.push(() => listener.close())
    assert.equal(audit.ofType('tls.crl.stale').length, 2, 'intermediate and root CRL')
    assert.equal(audit.ofType('tls.crl.stale')[0]?.action, 'refuse')

    const { client } = await connectDevice(pki, listener.port)
    await closed(client.socket)
    const e = await lastHandshake(audit, 1)
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'CRL_HAS_EXPIRED')
  })

  it('with crlStale: allow, accepts on a stale CRL but still refuses what it lists', async () => {
    const dir = join(tmp.dir, `stale${n++}`)
    const pki = await makePki(dir)
    const revoked = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'r-1' })
    await pki.ca.revoke(revoked.record.serial)
    const past = await openCa(pki.ca.dir, TEST_PASSPHRASE, { now: () => Date.now() - 3 * DAY_MS })
    await past.writeCrl({ days: 1 })
    const audit = new MemoryAuditSink()
    const listener = await createMqttsListener(
      {
        name: 'devices',
        host: '127.0.0.1',
        port: 0,
        ...pki.paths,
        crl: [pki.paths.crl],
        crlStale: 'allow',
      },
      new RecordingBroker(),
      { audit },
    )
    cleanups.push(() => listener.close())
    assert.equal(audit.ofType('tls.crl.stale')[0]?.action, 'allow')

    const { client } = await connectDevice(pki, listener.port)
    assert.equal((await lastHandshake(audit, 1)).result, 'accepted')
    client.socket.destroy()

    const bad = await tlsClient(listener.port, {
      cert: revoked.chainPem,
      key: revoked.keyPem,
      ca: pki.ca.rootPem,
    })
    await closed(bad.socket)
    assert.equal((await lastHandshake(audit, 2)).reason, 'CERT_REVOKED')
  })

  it('serves a swapped server certificate without a restart (C12)', async () => {
    const { pki, audit, listener } = await setup()
    const first = await connectDevice(pki, listener.port)
    const before = first.client.socket.getPeerX509Certificate()?.fingerprint256
    first.client.socket.destroy()

    const next = await pki.ca.issueCertificate({ kind: 'server', tenant: 'acme', id: 'broker-2' })
    writeFileSync(pki.paths.key, next.keyPem)
    writeFileSync(pki.paths.cert, next.chainPem)
    await waitFor(() =>
      audit
        .ofType('tls.material.reloaded')
        .find((e) => e.fingerprint256 === next.record.fingerprint256),
    )

    const second = await connectDevice(pki, listener.port, 'bp-2')
    const after = second.client.socket.getPeerX509Certificate()?.fingerprint256
    assert.notEqual(after, before)
    assert.equal(after, next.record.fingerprint256)
    second.client.socket.destroy()
  })

  it('keeps serving the old certificate when the new key does not match, and audits it', async () => {
    const { pki, audit, listener } = await setup()
    const next = await pki.ca.issueCertificate({ kind: 'server', tenant: 'acme', id: 'broker-3' })
    writeFileSync(pki.paths.cert, next.chainPem) // key not swapped
    const rejected = await waitFor(() => audit.ofType('tls.material.rejected')[0])
    assert.equal(rejected.what, 'server-cert')
    const c = await connectDevice(pki, listener.port)
    assert.equal(c.client.secure, true)
    assert.notEqual(
      c.client.socket.getPeerX509Certificate()?.fingerprint256,
      next.record.fingerprint256,
    )
    c.client.socket.destroy()
  })

  it('refuses connections above the per-address rate before the handshake', async () => {
    const { pki, audit, listener } = await setup({
      connectionsPerAddress: 2,
      rateWindowSeconds: 60,
    })
    const issued = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'r-2' })
    const opts = { cert: issued.chainPem, key: issued.keyPem, ca: pki.ca.rootPem }
    const a = await tlsClient(listener.port, opts)
    const b = await tlsClient(listener.port, opts)
    const c = await tlsClient(listener.port, opts)
    assert.equal(a.secure && b.secure, true)
    assert.equal(c.secure, false)
    const refused = await waitFor(() =>
      audit.ofType('tls.handshake').find((e) => e.reason === 'RATE_LIMITED'),
    )
    assert.equal(refused.remoteAddress, '127.0.0.1')
    // The reset of the refused socket is not audited a second time.
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(audit.ofType('tls.handshake').length, 3)
    a.socket.destroy()
    b.socket.destroy()
  })

  it('refuses connections above maxConnections', async () => {
    const { pki, audit, listener } = await setup({ maxConnections: 1 })
    const a = await connectDevice(pki, listener.port, 'm-1')
    const b = await connectDevice(pki, listener.port, 'm-2')
    assert.equal(a.client.secure, true)
    assert.equal(b.client.secure, false)
    await waitFor(() => audit.ofType('tls.handshake').find((e) => e.reason === 'MAX_CONNECTIONS'))
    a.client.socket.destroy()
  })

  it('audits a handshake timeout', async () => {
    const { audit, listener } = await setup({ handshakeTimeoutMs: 200 })
    const { connect } = await import('node:net')
    const raw = connect(listener.port, '127.0.0.1')
    raw.on('error', () => {})
    const e = await waitFor(() => audit.ofType('tls.handshake')[0], 3000)
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'ERR_TLS_HANDSHAKE_TIMEOUT')
    raw.destroy()
  })

  it('warns on a device certificate living longer than 90 days, and denies it when told (C12)', async () => {
    const warn = await setup()
    const long = await warn.pki.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'long-1',
      days: 365,
      allowLongLifetime: true,
    })
    const opts = { cert: long.chainPem, key: long.keyPem, ca: warn.pki.ca.rootPem }
    const a = await tlsClient(warn.listener.port, opts)
    const e = await lastHandshake(warn.audit, 1)
    assert.equal(e.result, 'accepted')
    assert.deepEqual(e.warnings, ['LIFETIME_ABOVE_MAX'])
    a.socket.destroy()

    const deny = await setup({
      certLifetime: { deviceMaxDays: 90, otherMaxDays: 397, action: 'deny' },
      ca: warn.pki.paths.ca,
      crl: [warn.pki.paths.crl],
    })
    const b = await tlsClient(deny.listener.port, { ...opts, ca: deny.pki.ca.rootPem })
    await closed(b.socket)
    assert.equal((await lastHandshake(deny.audit, 1)).reason, 'LIFETIME_ABOVE_MAX')
  })
})
