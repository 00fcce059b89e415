import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CaPassphraseError, CaStateError, CertificateRequestError } from '../../src/errors.js'
import { type CertificateAuthority, initCa, openCa } from '../../src/pki/ca.js'
import { makeTempDir } from '../helpers/tmp.js'

const PASS = 'correct horse battery'

function openssl(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

describe('pki: the certificate authority (C12)', () => {
  const tmp = makeTempDir('phimq-ca-')
  const caDir = join(tmp.dir, 'ca')
  let ca: CertificateAuthority

  before(async () => {
    ca = await initCa(caDir, PASS)
  })
  after(() => tmp.remove())

  it('keeps both CA keys encrypted at rest (PKCS#8 with a passphrase)', () => {
    for (const name of ['root.key', 'intermediate.key']) {
      const pem = readFileSync(join(caDir, name), 'utf8')
      assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/)
      const noPass = openssl(['pkey', '-in', join(caDir, name), '-passin', 'pass:wrong-pass-x'])
      assert.notEqual(noPass.status, 0)
      const ok = openssl(['pkey', '-in', join(caDir, name), '-passin', `pass:${PASS}`, '-noout'])
      assert.equal(ok.status, 0, ok.out)
    }
  })

  it('refuses a wrong passphrase, a short passphrase and a second init', async () => {
    await assert.rejects(openCa(caDir, 'not the passphrase'), CaPassphraseError)
    await assert.rejects(initCa(join(tmp.dir, 'other'), 'short'), CaPassphraseError)
    await assert.rejects(initCa(caDir, PASS), CaStateError)
  })

  it('issues a device certificate that openssl verify accepts, with the SAN URI', async () => {
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'bp-0042' })
    const leaf = join(tmp.dir, 'leaf.pem')
    writeFileSync(leaf, issued.certPem)
    const r = openssl([
      'verify',
      '-CAfile',
      join(caDir, 'root.crt'),
      '-untrusted',
      join(caDir, 'intermediate.crt'),
      '-purpose',
      'sslclient',
      leaf,
    ])
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /: OK/)

    const cert = new X509Certificate(issued.certPem)
    assert.equal(cert.subjectAltName, 'URI:urn:phimq:acme:device:bp-0042')
    assert.equal(cert.fingerprint256, issued.record.fingerprint256)
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000
    assert.equal(Math.round(days), 90)
    assert.match(cert.publicKey.asymmetricKeyDetails?.namedCurve ?? '', /prime256v1|P-256/)
  })

  it('refuses a device certificate living longer than 90 days', async () => {
    await assert.rejects(
      ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'bp-1', days: 365 }),
      CertificateRequestError,
    )
  })

  it('refuses identity values holding + # / $ or NUL (C10)', async () => {
    for (const id of ['a+b', 'a#', 'a/b', '$SYS', 'a\u0000b', 'a:b', '']) {
      await assert.rejects(
        ca.issueCertificate({ kind: 'device', tenant: 'acme', id }),
        CertificateRequestError,
        JSON.stringify(id),
      )
    }
  })

  it('gives server certificates SAN DNS localhost and IP 127.0.0.1 for serverAuth', async () => {
    const issued = await ca.issueCertificate({ kind: 'server', tenant: 'acme', id: 'broker-1' })
    const cert = new X509Certificate(issued.certPem)
    assert.match(cert.subjectAltName ?? '', /DNS:localhost/)
    assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/)
    assert.equal(cert.checkHost('localhost'), 'localhost')
    const leaf = join(tmp.dir, 'server.pem')
    writeFileSync(leaf, issued.certPem)
    const r = openssl([
      'verify',
      '-CAfile',
      join(caDir, 'root.crt'),
      '-untrusted',
      join(caDir, 'intermediate.crt'),
      '-purpose',
      'sslserver',
      leaf,
    ])
    assert.equal(r.status, 0, r.out)
  })

  it('writes a CRL that openssl reads and that makes openssl verify refuse a revoked cert (C11)', async () => {
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'bp-9' })
    const leaf = join(tmp.dir, 'revoked.pem')
    writeFileSync(leaf, issued.certPem)
    const verifyArgs = [
      'verify',
      '-crl_check_all',
      '-CAfile',
      join(caDir, 'root.crt'),
      '-untrusted',
      join(caDir, 'intermediate.crt'),
      '-CRLfile',
      ca.crlPath,
      leaf,
    ]
    assert.equal(openssl(verifyArgs).status, 0, 'valid before revocation')

    await ca.revoke(issued.record.serial, 'keyCompromise')
    const crl = await ca.writeCrl()
    const text = openssl(['crl', '-in', crl.path, '-noout', '-text'])
    assert.equal(text.status, 0, text.out)
    assert.match(text.out, new RegExp(issued.record.serial, 'i'))
    assert.match(text.out, /Key Compromise/)
    assert.match(text.out, /X509v3 CRL Number/)

    const r = openssl(verifyArgs)
    assert.notEqual(r.status, 0)
    assert.match(r.out, /certificate revoked/)
  })

  it('lists issued certificates with status and days to expiry, and reopens from disk', async () => {
    const reopened = await openCa(caDir)
    const list = reopened.list()
    assert.ok(list.length >= 3)
    const revoked = list.filter((c) => c.status === 'revoked')
    assert.equal(revoked.length, 1)
    assert.ok(list.every((c) => c.expiresInDays >= 0 && c.fingerprint256.length === 95))
    await assert.rejects(
      reopened.issueCertificate({ kind: 'device', tenant: 'acme', id: 'x' }),
      CaPassphraseError,
    )
  })

  it('renews a certificate as a new serial with the same identity', async () => {
    const first = await ca.issueCertificate({ kind: 'app', tenant: 'acme', id: 'dashboard' })
    const second = await ca.renew(first.record.serial)
    assert.notEqual(second.record.serial, first.record.serial)
    assert.equal(second.record.uri, first.record.uri)
  })
})
