/**
 * The mqtts listener at the TLS level (controls C06–C13), with real TLS on
 * loopback and certificates made by our PKI. The broker is a recording
 * stand-in: these tests prove what the listener accepts, refuses, audits and
 * hands over, not MQTT behaviour.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createServer } from 'node:tls'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import type { TlsListenerOptions } from '../../src/transport/listener-options.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { ALLOWED_CIPHERS_DEFAULT, TLS_CIPHERS_DEFAULT } from '../../src/transport/tls-options.js'
import {
  closed,
  makePki,
  type Pki,
  RecordingBroker,
  tlsClient,
  waitFor,
} from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

const DAY_MS = 86_400_000

describe('mqtts listener', () => {
  const tmp = makeTempDir('phimq-mqtts-')
  let pki: Pki
  let other: Pki
  const audit = new MemoryAuditSink()
  const broker = new RecordingBroker()
  let listener: Awaited<ReturnType<typeof createMqttsListener>>
  let device: { chainPem: string; keyPem: string; record: { fingerprint256: string } }

  before(async () => {
    pki = await makePki(`${tmp.dir}/a`)
    other = await makePki(`${tmp.dir}/b`)
    device = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'bp-0042' })
    listener = await createMqttsListener(options(pki), broker, { audit })
  })
  after(async () => {
    await listener.close()
    tmp.remove()
  })

  function options(p: Pki, over: Partial<TlsListenerOptions> = {}): TlsListenerOptions {
    return { name: 'devices', host: '127.0.0.1', port: 0, ...p.paths, crl: [p.paths.crl], ...over }
  }

  function handshakes() {
    return audit.ofType('tls.handshake')
  }

  async function nextHandshake(before: number) {
    return waitFor(() => audit.ofType('tls.handshake')[before], 3000, 'tls.handshake event')
  }

  it('accepts a device certificate and hands the mapped identity to the broker (C09, C10)', async () => {
    const seen = broker.connections.length
    const n = handshakes().length
    const client = await tlsClient(listener.port, {
      cert: device.chainPem,
      key: device.keyPem,
      ca: pki.ca.rootPem,
    })
    assert.equal(client.secure, true)
    const rec = await waitFor(() => broker.connections[seen], 3000, 'handleConnection')
    assert.deepEqual(rec.context.identity, { tenant: 'acme', role: 'device', id: 'bp-0042' })
    assert.equal(rec.context.listener, 'devices')
    assert.equal(rec.context.clientIdBinding, 'equal')
    assert.equal(rec.context.remoteAddress, '127.0.0.1')
    assert.equal(rec.context.tls?.protocol, 'TLSv1.3')
    assert.equal(rec.context.tls?.fingerprint256, device.record.fingerprint256)
    assert.ok(ALLOWED_CIPHERS_DEFAULT.has(rec.context.tls?.cipher ?? ''))

    const event = await nextHandshake(n)
    assert.equal(event.result, 'accepted')
    client.socket.destroy()
  })

  it('records every C13 field of an accepted handshake, non-empty', async () => {
    const n = handshakes().length
    const client = await tlsClient(listener.port, {
      cert: device.chainPem,
      key: device.keyPem,
      ca: pki.ca.rootPem,
    })
    const e = await nextHandshake(n)
    for (const field of [
      'listener',
      'remoteAddress',
      'sni',
      'protocol',
      'cipher',
      'subject',
      'issuer',
      'serial',
      'fingerprint256',
      'validFrom',
      'validTo',
      'result',
      'time',
    ] as const) {
      assert.ok(typeof e[field] === 'string' && e[field] !== '', `${field} present`)
    }
    assert.equal(e.sni, 'localhost')
    assert.equal(e.fingerprint256, device.record.fingerprint256)
    assert.match(e.subject ?? '', /CN=bp-0042/)
    assert.match(e.issuer ?? '', /Intermediate CA/)
    assert.equal(e.reason, undefined)
    client.socket.destroy()
  })

  it('refuses a client without a certificate and audits NO_CLIENT_CERT (C09)', async () => {
    const seen = broker.connections.length
    const n = handshakes().length
    const client = await tlsClient(listener.port, { ca: pki.ca.rootPem })
    await closed(client.socket)
    const e = await nextHandshake(n)
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'NO_CLIENT_CERT')
    assert.equal(e.protocol, 'TLSv1.3')
    assert.equal(broker.connections.length, seen)
  })

  it('refuses a certificate from another CA and audits the OpenSSL reason (C09)', async () => {
    const foreign = await other.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'bp-0042',
    })
    const seen = broker.connections.length
    const n = handshakes().length
    const client = await tlsClient(listener.port, {
      cert: foreign.chainPem,
      key: foreign.keyPem,
      ca: pki.ca.rootPem,
    })
    await closed(client.socket)
    const e = await nextHandshake(n)
    assert.equal(e.result, 'refused')
    // Node's verify callback lets OpenSSL run every check and reports the
    // last error: the missing issuer, or the CRL it cannot find for it.
    assert.match(e.reason ?? '', /^UNABLE_TO_GET_(ISSUER_CERT|CRL)/)
    // The failure record still names the certificate that was shown (C13).
    assert.equal(e.fingerprint256, foreign.record.fingerprint256)
    assert.ok(e.subject && e.issuer && e.serial && e.validFrom && e.validTo && e.cipher)
    assert.equal(broker.connections.length, seen)
  })

  it('refuses an expired certificate with CERT_HAS_EXPIRED (C09, C13)', async () => {
    const expired = await pki.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'old-1',
      notBefore: new Date(Date.now() - 30 * DAY_MS),
      days: 10,
    })
    const n = handshakes().length
    const client = await tlsClient(listener.port, {
      cert: expired.chainPem,
      key: expired.keyPem,
      ca: pki.ca.rootPem,
    })
    await closed(client.socket)
    const e = await nextHandshake(n)
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'CERT_HAS_EXPIRED')
    assert.ok(Date.parse(e.validTo ?? '') < Date.now())
  })

  it('refuses a TLS 1.1 client (C06)', async () => {
    const n = handshakes().length
    const client = await tlsClient(listener.port, {
      cert: device.chainPem,
      key: device.keyPem,
      ca: pki.ca.rootPem,
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    })
    assert.equal(client.secure, false)
    const e = await nextHandshake(n)
    assert.equal(e.result, 'refused')
    assert.match(e.reason ?? '', /PROTOCOL/)
  })

  it('refuses a CBC-only client with ERR_SSL_NO_SHARED_CIPHER (C07)', async () => {
    const n = handshakes().length
    const client = await tlsClient(listener.port, {
      cert: device.chainPem,
      key: device.keyPem,
      ca: pki.ca.rootPem,
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA',
    })
    assert.equal(client.secure, false)
    const e = await nextHandshake(n)
    assert.equal(e.reason, 'ERR_SSL_NO_SHARED_CIPHER')
  })

  it('refuses a ChaCha20-only client, which Node would allow by default (C07)', async () => {
    const n = handshakes().length
    const client = await tlsClient(listener.port, {
      cert: device.chainPem,
      key: device.keyPem,
      ca: pki.ca.rootPem,
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305',
    })
    assert.equal(client.secure, false)
    const e = await nextHandshake(n)
    assert.equal(e.reason, 'ERR_SSL_NO_SHARED_CIPHER')
  })

  it('negotiates only allowlisted ciphers, whatever the client prefers (C07)', async () => {
    const prefs: Array<{ maxVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers?: string }> = [
      { maxVersion: 'TLSv1.3' },
      { maxVersion: 'TLSv1.2' },
      {
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305',
      },
      { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES256-GCM-SHA384' },
    ]
    for (const pref of prefs) {
      const client = await tlsClient(listener.port, {
        cert: device.chainPem,
        key: device.keyPem,
        ca: pki.ca.rootPem,
        ...pref,
      })
      assert.equal(client.secure, true, JSON.stringify(pref))
      const name = client.socket.getCipher().standardName
      assert.ok(ALLOWED_CIPHERS_DEFAULT.has(name), `${name} allowed`)
      client.socket.destroy()
    }
    const accepted = handshakes().filter((e) => e.result === 'accepted')
    assert.ok(accepted.length >= prefs.length)
    for (const e of accepted) assert.ok(ALLOWED_CIPHERS_DEFAULT.has(e.cipher ?? ''), e.cipher)
  })

  it('refuses a TLS 1.2 renegotiation attempt (C08)', async () => {
    const client = await tlsClient(listener.port, {
      cert: device.chainPem,
      key: device.keyPem,
      ca: pki.ca.rootPem,
      maxVersion: 'TLSv1.2',
    })
    assert.equal(client.secure, true)
    // The server answers the new ClientHello with a no_renegotiation alert;
    // OpenSSL reports it on the socket (the callback may not run at all).
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      client.socket.once('error', (e) => resolve(e))
      client.socket.once('close', () => resolve(null))
      const started = client.socket.renegotiate({ rejectUnauthorized: false }, (e) => {
        if (e) resolve(e)
      })
      assert.equal(started, true)
      client.socket.write('x')
    })
    assert.ok(err, 'renegotiation must fail with an error')
    assert.match(`${err.code} ${err.message}`, /no renegotiation|ERR_SSL_NO_RENEGOTIATION/i)
    client.socket.destroy()
  })

  it('control: without SSL_OP_NO_RENEGOTIATION the same client renegotiates fine (C08)', async () => {
    // Proves the renegotiation test above can fail: only our flag stops it.
    const server = await pki.ca.issueCertificate({ kind: 'server', tenant: 'acme', id: 'ctl' })
    const plain = createServer({
      cert: server.chainPem,
      key: server.keyPem,
      ca: pki.ca.rootPem,
      requestCert: true,
      rejectUnauthorized: false,
      ciphers: TLS_CIPHERS_DEFAULT,
    })
    plain.on('secureConnection', (socket) => {
      socket.on('data', () => {})
      socket.on('error', () => {})
    })
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve))
    const port = (plain.address() as AddressInfo).port
    const client = await tlsClient(port, {
      cert: device.chainPem,
      key: device.keyPem,
      ca: pki.ca.rootPem,
      maxVersion: 'TLSv1.2',
    })
    const err = await new Promise<Error | null>((resolve) => {
      client.socket.renegotiate({ rejectUnauthorized: false }, resolve)
      client.socket.write('x')
    })
    assert.equal(err, null)
    client.socket.destroy()
    await new Promise<void>((resolve) => plain.close(() => resolve()))
  })

  it('never resumes a TLS session, so every connection has its certificate checked afresh (C11)', async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const opts = { cert: device.chainPem, key: device.keyPem, ca: pki.ca.rootPem, maxVersion }
      const first = await tlsClient(listener.port, opts)
      let session: Buffer | undefined
      first.socket.on('session', (s: Buffer) => {
        session = s
      })
      await new Promise((r) => setTimeout(r, 100))
      session ??= first.socket.getSession()
      first.socket.destroy()
      assert.ok(session, 'the client holds a session to offer')
      const second = await tlsClient(listener.port, { ...opts, session })
      assert.equal(second.secure, true)
      assert.equal(second.socket.isSessionReused(), false, maxVersion)
      second.socket.destroy()
    }
  })
})
