/**
 * What the TLS guard remembers per client certificate (issue #7): derived
 * once, bounded, and forgotten on request. Revocation is not part of it; the
 * revocation tests show a remembered certificate still refused once revoked.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { IdentityMapper } from '../../src/identity/mapping.js'
import { PeerViews } from '../../src/transport/peer-views.js'
import { makePki } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

describe('PeerViews', () => {
  const tmp = makeTempDir('phimq-peer-views-')
  after(() => tmp.remove())
  let n = 0

  /** Certificates, each with a `read` that counts how often the chain is read. */
  async function certificates(count: number) {
    const pki = await makePki(join(tmp.dir, `p${n++}`))
    const out = []
    for (let i = 0; i < count; i++) {
      const issued = await pki.ca.issueCertificate({
        kind: 'device',
        tenant: 'acme',
        id: `pv-${i}`,
      })
      const cert = new X509Certificate(issued.certPem)
      const entry = {
        fingerprint: cert.fingerprint256,
        serial: cert.serialNumber,
        reads: 0,
        read: () => {
          entry.reads++
          return { der: cert.raw, issuerDer: undefined }
        },
      }
      out.push(entry)
    }
    return out
  }

  it('maps a certificate once and answers from memory for the same certificate', async () => {
    const [cert] = await certificates(1)
    const { fingerprint, read } = cert!
    const views = new PeerViews(new IdentityMapper())
    const first = views.viewOf(fingerprint, read)
    assert.equal(first.mapped.ok, true)
    assert.deepEqual(first.mapped.ok && first.mapped.identity, {
      tenant: 'acme',
      role: 'device',
      id: 'pv-0',
    })
    assert.equal(first.crl.serial, cert!.serial)
    assert.equal(first.names.fingerprint256, fingerprint)

    assert.equal(views.viewOf(fingerprint, read), first)
    assert.equal(cert!.reads, 1)
    assert.equal(views.size, 1)
  })

  it('holds at most its bound, dropping the least recently used', async () => {
    const [a, b, c] = await certificates(3)
    const views = new PeerViews(new IdentityMapper(), 2)
    views.viewOf(a!.fingerprint, a!.read)
    views.viewOf(b!.fingerprint, b!.read)
    views.viewOf(a!.fingerprint, a!.read) // a is now the most recent
    views.viewOf(c!.fingerprint, c!.read) // b goes
    assert.equal(views.size, 2)
    views.viewOf(a!.fingerprint, a!.read)
    views.viewOf(b!.fingerprint, b!.read)
    assert.deepEqual([a!.reads, b!.reads, c!.reads], [1, 2, 1])
  })

  it('forgets everything on clear', async () => {
    const [cert] = await certificates(1)
    const views = new PeerViews(new IdentityMapper())
    views.viewOf(cert!.fingerprint, cert!.read)
    views.clear()
    assert.equal(views.size, 0)
    views.viewOf(cert!.fingerprint, cert!.read)
    assert.equal(cert!.reads, 2)
  })
})
