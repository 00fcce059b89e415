import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { createServer as createNetServer } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { connectOutboundTls, OutboundTlsError } from '../../src/transport/outbound-tls.js'
import { makePki, type Pki, RecordingBroker } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

describe('outbound TLS (C14)', () => {
  const tmp = makeTempDir('phimq-out-')
  let ours: Pki
  let theirs: Pki
  let listener: Awaited<ReturnType<typeof createMqttsListener>>
  let client: { cert: string; key: string }

  before(async () => {
    ours = await makePki(join(tmp.dir, 'ours'))
    theirs = await makePki(join(tmp.dir, 'theirs'))
    listener = await createMqttsListener(
      { name: 'upstream', host: '127.0.0.1', port: 0, ...ours.paths, crl: [ours.paths.crl] },
      new RecordingBroker(),
      { audit: new MemoryAuditSink() },
    )
    const issued = await ours.ca.issueCertificate({ kind: 'app', tenant: 'acme', id: 'bridge-1' })
    client = { cert: issued.chainPem, key: issued.keyPem }
  })
  after(async () => {
    await listener.close()
    tmp.remove()
  })

  it('connects to a server that chains to the pinned CA, with an allowed cipher', async () => {
    const socket = await connectOutboundTls({
      host: '127.0.0.1',
      port: listener.port,
      servername: 'localhost',
      ca: ours.ca.rootPem,
      ...client,
    })
    assert.equal(socket.authorized, true)
    assert.equal(socket.getProtocol(), 'TLSv1.3')
    socket.destroy()
  })

  it('refuses a server whose certificate does not chain to the pinned CA', async () => {
    await assert.rejects(
      connectOutboundTls({
        host: '127.0.0.1',
        port: listener.port,
        servername: 'localhost',
        ca: theirs.ca.rootPem,
        ...client,
      }),
      (err: unknown) =>
        err instanceof OutboundTlsError && /UNABLE_TO_GET_ISSUER_CERT/.test(err.reason),
    )
  })

  it('refuses a plaintext server', async () => {
    const plain = createNetServer((s) => {
      s.on('error', () => {})
      s.end('plain mqtt here\n')
    })
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
    try {
      await assert.rejects(
        connectOutboundTls({
          host: '127.0.0.1',
          port: (plain.address() as AddressInfo).port,
          servername: 'localhost',
          ca: ours.ca.rootPem,
          timeoutMs: 2000,
          ...client,
        }),
        OutboundTlsError,
      )
    } finally {
      // Not awaited: the half-closed server socket may never report 'close'.
      plain.close()
      plain.unref()
    }
  })

  it('refuses a server name the certificate does not carry', async () => {
    await assert.rejects(
      connectOutboundTls({
        host: '127.0.0.1',
        port: listener.port,
        servername: 'broker.example.org',
        ca: ours.ca.rootPem,
        ...client,
      }),
      (err: unknown) =>
        err instanceof OutboundTlsError && err.reason === 'ERR_TLS_CERT_ALTNAME_INVALID',
    )
  })
})
