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

  async function certificates(count: number) {
    const pki = await makePki(join(tmp.dir, `p${n++}`))
    const out: X509Certificate[] = []
    for (let i = 0; i < count; i++) {
      const issued = await pki.ca.issueCertificate({
        kind: 'device',
        tenant: 'acme',
        id: `pv-${i}`,
      })
      out.push(new X509Certificate(issued.certPem))
    }
    return out
  }

  it('maps a certificate once and answers from memory for the same certificate', async () => {
    const [cert] = await certificates(1)
    const views = new PeerViews(new IdentityMapper())
    const first = views.viewOf(cert!)
    assert.equal(first.mapped.ok, true)
    assert.deepEqual(first.mapped.ok && first.mapped.identity, {
      tenant: 'acme',
      role: 'device',
      id: 'pv-0',
    })
    assert.equal(first.crl.serial, cert!.serialNumber)
    // A second object for the same bytes, as a second handshake brings.
    assert.equal(views.viewOf(new X509Certificate(cert!.raw)), first)
    assert.equal(views.size, 1)
  })

  it('holds at most its bound, dropping the least recently used', async () => {
    const [a, b, c] = await certificates(3)
    const views = new PeerViews(new IdentityMapper(), 2)
    const viewA = views.viewOf(a!)
    views.viewOf(b!)
    views.viewOf(a!) // a is now the most recent
    views.viewOf(c!) // b goes
    assert.equal(views.size, 2)
    assert.equal(views.viewOf(a!), viewA)
    assert.equal(views.size, 2)
  })

  it('forgets everything on clear', async () => {
    const [cert] = await certificates(1)
    const views = new PeerViews(new IdentityMapper())
    const first = views.viewOf(cert!)
    views.clear()
    assert.equal(views.size, 0)
    assert.notEqual(views.viewOf(cert!), first)
  })
})
