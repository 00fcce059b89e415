/**
 * Delegated OCSP responders (RFC 6960 4.2.2.2, control C11): an answer
 * signed by a responder certificate the CA issued with id-kp-OCSPSigning is
 * read; any other signer is refused. Real responses over loopback HTTP,
 * checked by our reader and by `openssl ocsp`.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type CertificateAuthority, initCa } from '../../src/pki/ca.js'
import { buildOcspRequest, readOcspResponse } from '../../src/pki/ocsp.js'
import {
  makeResponderCert,
  type RunningResponder,
  startDelegatedResponder,
} from '../helpers/ocsp-responder.js'
import { TEST_PASSPHRASE } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

function openssl(args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('openssl', args)
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      out += d
    })
    child.on('close', (status) => resolve({ status, out }))
  })
}

describe('pki: delegated OCSP responders (C11, RFC 6960 4.2.2.2)', () => {
  const tmp = makeTempDir('phimq-ocsp-deleg-')
  const running: RunningResponder[] = []
  let ca: CertificateAuthority
  let issuerDer: Uint8Array

  before(async () => {
    ca = await initCa(join(tmp.dir, 'ca'), TEST_PASSPHRASE)
    issuerDer = new X509Certificate(ca.intermediatePem).raw
  })
  after(async () => {
    for (const r of running) await r.close()
    tmp.remove()
  })

  async function responder(
    signer: Awaited<ReturnType<typeof makeResponderCert>>,
  ): Promise<RunningResponder> {
    const r = await startDelegatedResponder(ca, signer)
    running.push(r)
    return r
  }

  async function ask(url: string, certPem: string, at = new Date()) {
    const leaf = new X509Certificate(certPem).raw
    const res = await fetch(url, { method: 'POST', body: await buildOcspRequest(leaf, issuerDer) })
    return readOcspResponse(new Uint8Array(await res.arrayBuffer()), leaf, issuerDer, at)
  }

  it('reads good and revoked answers signed by a responder with the OCSPSigning EKU', async () => {
    const r = await responder(await makeResponderCert(ca))
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'd-1' })
    assert.equal((await ask(r.url, issued.certPem)).status, 'good')
    await ca.revoke(issued.record.serial, 'keyCompromise')
    assert.equal((await ask(r.url, issued.certPem)).status, 'revoked')
  })

  it('openssl ocsp verifies the delegated answer against the CA chain too', async () => {
    const r = await responder(await makeResponderCert(ca))
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'd-2' })
    const leaf = join(tmp.dir, 'd-2.pem')
    writeFileSync(leaf, issued.certPem)
    const out = await openssl([
      'ocsp',
      '-issuer',
      join(ca.dir, 'intermediate.crt'),
      '-cert',
      leaf,
      '-url',
      r.url,
      '-CAfile',
      join(ca.dir, 'chain.pem'),
    ])
    assert.equal(out.status, 0, out.out)
    assert.match(out.out, /Response verify OK/)
    assert.match(out.out, /: good/)
  })

  it('refuses an answer from a responder certificate without the OCSPSigning EKU', async () => {
    const r = await responder(await makeResponderCert(ca, { eku: false }))
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'd-3' })
    await assert.rejects(ask(r.url, issued.certPem), /not signed by the issuer or its delegated/)
  })

  it("refuses an answer from another CA's responder, even under the same CA name", async () => {
    // initCa's default names: the other intermediate is called exactly like ours.
    const other = await initCa(join(tmp.dir, 'other'), TEST_PASSPHRASE)
    const r = await responder(await makeResponderCert(other))
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'd-4' })
    await assert.rejects(ask(r.url, issued.certPem), /not signed by the issuer or its delegated/)
  })

  it('refuses an answer from a delegated responder whose certificate is not valid now', async () => {
    const expired = await makeResponderCert(ca, {
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      days: 2,
    })
    const r = await responder(expired)
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'd-5' })
    await assert.rejects(ask(r.url, issued.certPem), /not signed by the issuer or its delegated/)
  })
})
