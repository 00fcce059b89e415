import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type CertificateAuthority, initCa } from '../../src/pki/ca.js'
import { type RunningCaHttp, startCaHttp } from '../../src/pki/ca-http.js'
import { buildOcspRequest, readOcspResponse } from '../../src/pki/ocsp.js'
import { makeTempDir } from '../helpers/tmp.js'

/** Run openssl without blocking the event loop (the responder lives in this process). */
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

describe('pki: OCSP responder (C11)', () => {
  const tmp = makeTempDir('phimq-ocsp-')
  let ca: CertificateAuthority
  let http: RunningCaHttp

  before(async () => {
    ca = await initCa(join(tmp.dir, 'ca'), 'a synthetic passphrase')
    http = await startCaHttp(ca)
  })
  after(async () => {
    await http.close()
    tmp.remove()
  })

  async function ocspCheck(certPem: string): Promise<{ status: number | null; out: string }> {
    const leaf = join(tmp.dir, `leaf-${Date.now()}.pem`)
    writeFileSync(leaf, certPem)
    return openssl([
      'ocsp',
      '-issuer',
      join(ca.dir, 'intermediate.crt'),
      '-cert',
      leaf,
      '-url',
      http.ocspUrl,
      '-CAfile',
      join(ca.dir, 'chain.pem'),
    ])
  }

  it('answers good for a valid certificate and openssl ocsp verifies the response', async () => {
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'o-1' })
    const r = await ocspCheck(issued.certPem)
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /Response verify OK/)
    assert.match(r.out, /: good/)
  })

  it('answers revoked after revoke(), read from disk by the responder', async () => {
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'o-2' })
    await ca.revoke(issued.record.serial, 'keyCompromise')
    const r = await ocspCheck(issued.certPem)
    assert.match(r.out, /Response verify OK/)
    assert.match(r.out, /: revoked/)
    assert.match(r.out, /Reason: keyCompromise/)
  })

  it("an answer about another CA's certificate does not pass as that CA's answer", async () => {
    const other = await initCa(join(tmp.dir, 'other'), 'a synthetic passphrase')
    const foreign = await other.issueCertificate({ kind: 'device', tenant: 'acme', id: 'o-3' })
    const req = await buildOcspRequest(
      new X509Certificate(foreign.certPem).raw,
      new X509Certificate(other.intermediatePem).raw,
    )
    const res = await fetch(http.ocspUrl, { method: 'POST', body: req })
    const der = new Uint8Array(await res.arrayBuffer())
    // Signed by our intermediate, so it does not verify against theirs.
    await assert.rejects(
      readOcspResponse(
        der,
        new X509Certificate(foreign.certPem).raw,
        new X509Certificate(other.intermediatePem).raw,
        new Date(),
      ),
    )
  })

  it('our client request and response reader agree with the responder', async () => {
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'o-4' })
    const leaf = new X509Certificate(issued.certPem).raw
    const issuer = new X509Certificate(ca.intermediatePem).raw
    const ask = async () => {
      const res = await fetch(http.ocspUrl, {
        method: 'POST',
        body: await buildOcspRequest(leaf, issuer),
      })
      return readOcspResponse(new Uint8Array(await res.arrayBuffer()), leaf, issuer, new Date())
    }
    assert.equal((await ask()).status, 'good')
    await ca.revoke(issued.record.serial)
    const answer = await ask()
    assert.equal(answer.status, 'revoked')
    assert.ok(answer.nextUpdate && answer.nextUpdate > new Date())
  })

  it('serves the CRL over HTTP', async () => {
    const res = await fetch(http.crlUrl)
    assert.equal(res.status, 200)
    assert.match(await res.text(), /BEGIN X509 CRL/)
  })
})
