/**
 * CRLs matched by issuer and serial, and CRL signatures checked when phimq
 * reads the files (control C11). Real TLS on the mqtts listener, CAs and
 * CRLs made by our PKI; the broker is the recording stand-in.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { CrlSignatureError } from '../../src/errors.js'
import { type CertificateAuthority, initCa } from '../../src/pki/ca.js'
import { CrlSet, crlIssuerFromDer, crlSubjectOf } from '../../src/transport/crl-set.js'
import type { TlsListenerOptions } from '../../src/transport/listener-options.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import {
  closed,
  makePki,
  RecordingBroker,
  TEST_PASSPHRASE,
  tlsClient,
  waitFor,
} from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

const CRL_BLOCK = /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g

/** The intermediate's CRL then the root's, as `crl.pem` holds them. */
function crlBlocks(ca: CertificateAuthority): [string, string] {
  const [inter, root] = readFileSync(ca.crlPath, 'utf8').match(CRL_BLOCK) ?? []
  assert.ok(inter && root)
  return [inter, root]
}

describe('CRLs by issuer and serial, signatures checked on read (C11)', () => {
  const tmp = makeTempDir('phimq-crl-issuer-')
  const cleanups: Array<() => Promise<void>> = []
  let n = 0
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c()
  })
  after(() => tmp.remove())

  async function listen(options: Omit<TlsListenerOptions, 'name' | 'host' | 'port'>) {
    const audit = new MemoryAuditSink()
    const broker = new RecordingBroker()
    const listener = await createMqttsListener(
      { name: 'devices', host: '127.0.0.1', port: 0, reloadPollMs: 50, ...options },
      broker,
      { audit },
    )
    cleanups.push(() => listener.close())
    return { audit, broker, listener }
  }

  /** A CA whose names equal those of every `initCa` default: a forger's twin. */
  function twinCa(): Promise<CertificateAuthority> {
    return initCa(join(tmp.dir, `twin${n++}`), TEST_PASSPHRASE)
  }

  it('a serial revoked by CA A does not refuse or drop a client of CA B with that serial', async () => {
    const a = await makePki(join(tmp.dir, `a${n++}`))
    const b = await initCa(join(tmp.dir, `b${n++}`), TEST_PASSPHRASE, { organization: 'northwind' })
    const bundle = join(tmp.dir, `bundle${n++}.pem`)
    writeFileSync(bundle, `${a.ca.rootPem}\n${b.rootPem}\n`)
    const { audit, broker, listener } = await listen({
      cert: a.paths.cert,
      key: a.paths.key,
      ca: bundle,
      crl: [a.ca.crlPath, b.crlPath],
    })
    const ofA = await a.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'dev-a' })
    const ofB = await b.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'dev-b',
      serial: ofA.record.serial,
    })
    assert.equal(ofB.record.serial, ofA.record.serial)
    const caB = { cert: ofB.chainPem, key: ofB.keyPem, ca: a.ca.rootPem }
    const live = await tlsClient(listener.port, caB)
    assert.equal(live.secure, true)
    const rec = await waitFor(() => broker.connections[0])
    rec.clientId = 'dev-b'

    await a.ca.revoke(ofA.record.serial, 'keyCompromise')
    await a.ca.writeCrl()
    await waitFor(() => audit.ofType('tls.material.reloaded').find((e) => e.what === 'crl'))

    // A's client is refused; B's live session and a new handshake of B are not touched.
    const refused = await tlsClient(listener.port, {
      cert: ofA.chainPem,
      key: ofA.keyPem,
      ca: a.ca.rootPem,
    })
    await closed(refused.socket)
    const again = await tlsClient(listener.port, caB)
    const events = await waitFor(() => {
      const list = audit.ofType('tls.handshake')
      return list.length >= 3 ? list : undefined
    })
    assert.deepEqual(
      events.map((e) => [e.result, e.reason]),
      [
        ['accepted', undefined],
        ['refused', 'CERT_REVOKED'],
        ['accepted', undefined],
      ],
    )
    assert.equal(audit.ofType('tls.session.revoked').length, 0)
    assert.deepEqual(broker.disconnects, [])
    assert.equal(live.socket.destroyed, false)
    live.socket.destroy()
    again.socket.destroy()
  })

  it('a reloaded CRL forged under the same issuer name is refused and changes nothing', async () => {
    const a = await makePki(join(tmp.dir, `a${n++}`))
    const { audit, broker, listener } = await listen({ ...a.paths, crl: [a.paths.crl] })
    const device = await a.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'dev-1' })
    const creds = { cert: device.chainPem, key: device.keyPem, ca: a.ca.rootPem }
    const live = await tlsClient(listener.port, creds)
    assert.equal(live.secure, true)
    const rec = await waitFor(() => broker.connections[0])
    rec.clientId = 'dev-1'

    // The twin's intermediate has the same name but not the same key; the
    // bundle holds only the root, so the issuer comes from the verified chain.
    const twin = await twinCa()
    await twin.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'dev-1',
      serial: device.record.serial,
    })
    await twin.revoke(device.record.serial, 'keyCompromise')
    await twin.writeCrl()
    const [forged] = crlBlocks(twin)
    const [, genuineRoot] = crlBlocks(a.ca)
    writeFileSync(a.paths.crl, `${forged}\n${genuineRoot}\n`)

    const rejected = await waitFor(() =>
      audit.ofType('tls.material.rejected').find((e) => e.what === 'crl'),
    )
    assert.match(rejected.reason, /^PHIMQ_CRL_SIGNATURE_INVALID: /)
    assert.equal(audit.ofType('tls.material.reloaded').length, 0)
    assert.equal(audit.ofType('tls.session.revoked').length, 0)
    assert.equal(live.socket.destroyed, false)
    // The previous CRL is still the one in force.
    const next = await tlsClient(listener.port, creds)
    assert.equal(next.secure, true)
    const e = await waitFor(() => audit.ofType('tls.handshake')[1])
    assert.equal(e.result, 'accepted')
    live.socket.destroy()
    next.socket.destroy()
  })

  it('a forged CRL at start-up: crlStale refuse turns every client away, a genuine CRL restores', async () => {
    const a = await makePki(join(tmp.dir, `a${n++}`))
    const twin = await twinCa()
    const [forged] = crlBlocks(twin)
    const [, genuineRoot] = crlBlocks(a.ca)
    writeFileSync(a.paths.crl, `${forged}\n${genuineRoot}\n`)
    // The bundle holds the intermediate too, so its CRL is checked at once.
    const chain = join(tmp.dir, `chain${n++}.pem`)
    writeFileSync(chain, `${a.ca.intermediatePem}\n${a.ca.rootPem}\n`)
    const { audit, listener } = await listen({ ...a.paths, ca: chain, crl: [a.paths.crl] })
    const rejected = audit.ofType('tls.material.rejected')
    assert.equal(rejected.length, 1)
    assert.match(rejected[0]?.reason ?? '', /^PHIMQ_CRL_SIGNATURE_INVALID: /)

    const device = await a.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'dev-2' })
    const creds = { cert: device.chainPem, key: device.keyPem, ca: a.ca.rootPem }
    const first = await tlsClient(listener.port, creds)
    await closed(first.socket)
    const e = await waitFor(() => audit.ofType('tls.handshake')[0])
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'CRL_SIGNATURE_INVALID')

    await a.ca.writeCrl()
    await waitFor(() => audit.ofType('tls.material.reloaded').find((x) => x.what === 'crl'))
    const second = await tlsClient(listener.port, creds)
    assert.equal(second.secure, true)
    assert.equal((await waitFor(() => audit.ofType('tls.handshake')[1])).result, 'accepted')
    second.socket.destroy()
  })

  it('a forged CRL at start-up under crlStale allow: accepted with a warning', async () => {
    const a = await makePki(join(tmp.dir, `a${n++}`))
    const twin = await twinCa()
    writeFileSync(a.paths.crl, readFileSync(twin.crlPath, 'utf8'))
    const { audit, listener } = await listen({ ...a.paths, crl: [a.paths.crl], crlStale: 'allow' })
    const device = await a.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'dev-3' })
    const c = await tlsClient(listener.port, {
      cert: device.chainPem,
      key: device.keyPem,
      ca: a.ca.rootPem,
    })
    const e = await waitFor(() => audit.ofType('tls.handshake')[0])
    assert.equal(e.result, 'accepted')
    assert.deepEqual(e.warnings, ['CRL_SIGNATURE_INVALID'])
    c.socket.destroy()
  })

  it('CrlSet: same issuer name, different key: the entry binds only the signing CA', async () => {
    const a = await initCa(join(tmp.dir, `s${n++}`), TEST_PASSPHRASE)
    const twin = await twinCa()
    const device = await a.issueCertificate({ kind: 'device', tenant: 'acme', id: 'dev-4' })
    const copy = await twin.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'dev-4',
      serial: device.record.serial,
    })
    await a.revoke(device.record.serial)
    await a.writeCrl()
    const set = CrlSet.parse([{ path: 'a.pem', text: readFileSync(a.crlPath, 'utf8') }])
    const interA = new X509Certificate(a.intermediatePem).raw
    const interTwin = new X509Certificate(twin.intermediatePem).raw

    const ofA = crlSubjectOf(new X509Certificate(device.certPem), interA)
    const ofTwin = crlSubjectOf(new X509Certificate(copy.certPem), interTwin)
    assert.ok(ofA.issuer && ofTwin.issuer)
    assert.equal(set.isRevoked(ofA), true)
    assert.equal(set.isRevoked(ofTwin), false)
    // A chain that claims an issuer which did not sign the certificate is ignored:
    // without a verified issuer the name alone decides (fail closed).
    const claimed = crlSubjectOf(new X509Certificate(copy.certPem), interA)
    assert.equal(claimed.issuer, undefined)
    assert.equal(set.isRevoked(claimed), true)

    // Read against the twin's intermediate as the known issuer: refused.
    assert.throws(
      () =>
        CrlSet.parse(
          [{ path: 'a.pem', text: readFileSync(a.crlPath, 'utf8') }],
          [crlIssuerFromDer(interTwin)],
        ),
      CrlSignatureError,
    )
  })
})
