/**
 * OCSP on the mqtts listener (control C11): client certificates checked
 * against the CA's responder with a fail-closed default, live sessions
 * re-checked, and the server certificate's status stapled. The broker is
 * the recording stand-in (listener-level tests).
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import { type ConnectionOptions, connect } from 'node:tls'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { initCa } from '../../src/pki/ca.js'
import { type RunningCaHttp, startCaHttp } from '../../src/pki/ca-http.js'
import { readOcspResponse } from '../../src/pki/ocsp.js'
import type { TlsListenerOptions } from '../../src/transport/listener-options.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { makeResponderCert, startDelegatedResponder } from '../helpers/ocsp-responder.js'
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

describe('OCSP on the mqtts listener (C11)', () => {
  const tmp = makeTempDir('phimq-ocsp-l-')
  const cleanups: Array<() => Promise<void>> = []
  let pki: Pki
  let http: RunningCaHttp

  before(async () => {
    pki = await makePki(join(tmp.dir, 'pki'))
    http = await startCaHttp(pki.ca)
  })
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c()
  })
  after(async () => {
    await http.close()
    tmp.remove()
  })

  async function setup(over: Partial<TlsListenerOptions> = {}) {
    const audit = new MemoryAuditSink()
    const broker = new RecordingBroker()
    const listener = await createMqttsListener(
      { name: 'devices', host: '127.0.0.1', port: 0, ...pki.paths, crl: [pki.paths.crl], ...over },
      broker,
      { audit },
    )
    cleanups.push(() => listener.close())
    return { audit, broker, listener }
  }

  /** `ocspUrl: null` issues a certificate that names no responder. */
  async function device(id: string, ocspUrl: string | null = http.ocspUrl) {
    return pki.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id,
      ...(ocspUrl !== null ? { ocspUrl } : {}),
    })
  }

  async function handshake(port: number, issued: { chainPem: string; keyPem: string }) {
    return tlsClient(port, { cert: issued.chainPem, key: issued.keyPem, ca: pki.ca.rootPem })
  }

  it('accepts a certificate the responder calls good, and refuses one it calls revoked', async () => {
    const { audit, listener } = await setup()
    const good = await device('oc-1')
    const a = await handshake(listener.port, good)
    assert.equal((await waitFor(() => audit.ofType('tls.handshake')[0])).result, 'accepted')
    a.socket.destroy()

    // Revoked in the CA's inventory only: no CRL written, so only OCSP can know.
    const bad = await device('oc-2')
    await pki.ca.revoke(bad.record.serial)
    const b = await handshake(listener.port, bad)
    await closed(b.socket)
    const e = await waitFor(() => audit.ofType('tls.handshake')[1])
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'OCSP_REVOKED')
  })

  it('fails closed when the responder cannot be reached, or accepts with a warning if told', async () => {
    const deadUrl = 'http://127.0.0.1:9/ocsp'
    const issued = await device('oc-3', deadUrl)
    const closedDefault = await setup({ ocsp: { timeoutMs: 500 } })
    const a = await handshake(closedDefault.listener.port, issued)
    await closed(a.socket)
    assert.equal(
      (await waitFor(() => closedDefault.audit.ofType('tls.handshake')[0])).reason,
      'OCSP_UNAVAILABLE',
    )

    const open = await setup({ ocsp: { timeoutMs: 500, failure: 'allow' } })
    const b = await handshake(open.listener.port, issued)
    const e = await waitFor(() => open.audit.ofType('tls.handshake')[0])
    assert.equal(e.result, 'accepted')
    assert.deepEqual(e.warnings, ['OCSP_UNAVAILABLE'])
    b.socket.destroy()
  })

  it('with mode require, refuses a certificate that names no responder', async () => {
    const { audit, listener } = await setup({ ocsp: { mode: 'require' } })
    const issued = await device('oc-4', null)
    const c = await handshake(listener.port, issued)
    await closed(c.socket)
    assert.equal(
      (await waitFor(() => audit.ofType('tls.handshake')[0])).reason,
      'OCSP_NO_RESPONDER',
    )
  })

  it('asks again about live sessions and closes one the responder now calls revoked', async () => {
    const { audit, broker, listener } = await setup({
      ocsp: { recheckSeconds: 1, maxCacheSeconds: 0 },
    })
    const issued = await device('oc-5')
    const c = await handshake(listener.port, issued)
    const rec = await waitFor(() => broker.connections[0])
    rec.clientId = 'oc-5'
    await pki.ca.revoke(issued.record.serial)
    await closed(c.socket, 3000)
    const ev = await waitFor(() => audit.ofType('tls.session.revoked')[0])
    assert.equal(ev.cause, 'ocsp')
    assert.deepEqual(
      broker.disconnects.map((d) => d.reasonCode),
      [0x98],
    )
  })

  it('staples a good OCSP response for its own certificate to clients that ask', async () => {
    const server = await pki.ca.issueCertificate({
      kind: 'server',
      tenant: 'acme',
      id: 'broker-ocsp',
      ocspUrl: http.ocspUrl,
    })
    const certPath = join(tmp.dir, 'stapled.crt')
    const keyPath = join(tmp.dir, 'stapled.key')
    writeFileSync(certPath, server.chainPem)
    writeFileSync(keyPath, server.keyPem)
    const { listener } = await setup({ cert: certPath, key: keyPath })
    const issued = await device('oc-6')

    // `requestOCSP` is passed on to the TLSSocket but missing from the typings.
    const options = {
      host: '127.0.0.1',
      port: listener.port,
      servername: 'localhost',
      cert: issued.chainPem,
      key: issued.keyPem,
      ca: pki.ca.rootPem,
      requestOCSP: true,
    } as ConnectionOptions
    const socket = connect(options)
    socket.on('error', () => {})
    const stapled = await new Promise<Buffer>((resolve, reject) => {
      socket.once('OCSPResponse', resolve)
      socket.once('close', () => reject(new Error('closed without a stapled response')))
    })
    const answer = await readOcspResponse(
      new Uint8Array(stapled),
      new X509Certificate(server.certPem).raw,
      new X509Certificate(pki.ca.intermediatePem).raw,
      new Date(),
    )
    assert.equal(answer.status, 'good')
    socket.destroy()
  })
  it('accepts answers from a delegated responder (OCSPSigning EKU): good admits, revoked refuses', async () => {
    const delegated = await startDelegatedResponder(pki.ca, await makeResponderCert(pki.ca))
    cleanups.push(() => delegated.close())
    const { audit, listener } = await setup({ ocsp: { responderUrl: delegated.url } })
    const good = await device('oc-7', null)
    const a = await handshake(listener.port, good)
    assert.equal((await waitFor(() => audit.ofType('tls.handshake')[0])).result, 'accepted')
    a.socket.destroy()

    const bad = await device('oc-8', null)
    await pki.ca.revoke(bad.record.serial)
    const b = await handshake(listener.port, bad)
    await closed(b.socket)
    assert.equal((await waitFor(() => audit.ofType('tls.handshake')[1])).reason, 'OCSP_REVOKED')
  })

  it('refuses answers from a responder without the EKU, or from another CA (OCSP_UNAVAILABLE)', async () => {
    const other = await initCa(join(tmp.dir, 'other-ca'), TEST_PASSPHRASE)
    const signers = [
      await makeResponderCert(pki.ca, { eku: false }),
      await makeResponderCert(other),
    ]
    for (const [i, signer] of signers.entries()) {
      const responder = await startDelegatedResponder(pki.ca, signer)
      cleanups.push(() => responder.close())
      const { audit, listener } = await setup({ ocsp: { responderUrl: responder.url } })
      const issued = await device(`oc-9${i}`, null)
      const c = await handshake(listener.port, issued)
      await closed(c.socket)
      const e = await waitFor(() => audit.ofType('tls.handshake')[0])
      assert.equal(e.result, 'refused')
      assert.equal(e.reason, 'OCSP_UNAVAILABLE')
    }
  })
})
