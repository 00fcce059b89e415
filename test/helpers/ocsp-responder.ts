/**
 * A delegated OCSP responder for tests (RFC 6960 4.2.2.2): a responder
 * certificate signed by a CA's intermediate (with or without the
 * id-kp-OCSPSigning EKU), and a loopback HTTP server that answers about
 * that CA's certificates, signed with the responder's key.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import * as x509 from '@peculiar/x509'
import type { CertificateAuthority } from '../../src/pki/ca.js'
import {
  algorithmFor,
  type CryptoKey,
  generateKeyPair,
  importEncryptedPrivateKey,
  newSerial,
} from '../../src/pki/crypto.js'
import { answerOcspRequest, type OcspCertStatus, OID_KP_OCSP_SIGNING } from '../../src/pki/ocsp.js'
import { TEST_PASSPHRASE } from './tls-fixture.js'

const DAY_MS = 86_400_000

export interface ResponderCert {
  readonly der: Uint8Array
  readonly pem: string
  readonly key: CryptoKey
}

/** A responder certificate issued by `ca`'s intermediate. */
export async function makeResponderCert(
  ca: CertificateAuthority,
  options: { eku?: boolean; notBefore?: Date; days?: number } = {},
): Promise<ResponderCert> {
  const signingKey = await importEncryptedPrivateKey(
    readFileSync(join(ca.dir, 'intermediate.key'), 'utf8'),
    TEST_PASSPHRASE,
    'ec-p256',
  )
  const keys = await generateKeyPair('ec-p256')
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000)
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
  ]
  if (options.eku !== false) {
    extensions.push(new x509.ExtendedKeyUsageExtension([OID_KP_OCSP_SIGNING], false))
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: [{ O: ['phimq-test'] }, { CN: ['ocsp responder'] }],
    issuer: new x509.X509Certificate(ca.intermediatePem).subjectName,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (options.days ?? 7) * DAY_MS),
    signingAlgorithm: algorithmFor('ec-p256'),
    publicKey: keys.publicKey,
    signingKey,
    extensions,
  })
  return { der: new Uint8Array(cert.rawData), pem: cert.toString('pem'), key: keys.privateKey }
}

export interface RunningResponder {
  readonly url: string
  close(): Promise<void>
}

/** Answer OCSP about `ca`'s certificates, signed by `responder`. */
export async function startDelegatedResponder(
  ca: CertificateAuthority,
  responder: ResponderCert,
): Promise<RunningResponder> {
  const issuerDer = new X509Certificate(ca.intermediatePem).raw
  const lookup = (serial: string): OcspCertStatus => {
    const record = ca.list().find((c) => c.serial === serial)
    if (!record) return { status: 'unknown' }
    if (record.revokedAt === undefined) return { status: 'good' }
    return { status: 'revoked', revokedAt: new Date(record.revokedAt) }
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      answerOcspRequest(new Uint8Array(Buffer.concat(chunks)), {
        issuerDer,
        signingKey: responder.key,
        responderDer: responder.der,
        lookup,
        now: new Date(),
        validitySeconds: 3600,
      })
        .then((der) =>
          res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(Buffer.from(der)),
        )
        .catch(() => res.writeHead(500).end())
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/ocsp`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
