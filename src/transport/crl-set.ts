/**
 * CRLs of one listener as phimq reads them (control C11): the PEM blocks
 * handed to OpenSSL, the revoked serial numbers per issuer (so a live
 * session can be closed when its certificate appears), and the earliest
 * nextUpdate.
 *
 * A CRL entry names a serial number, and a serial is unique only within
 * one issuer (RFC 5280 4.1.2.2): an entry is matched by issuer and serial,
 * where the issuer is the certificate whose key signed the CRL. A listener
 * may trust several CAs, and two of them may even share a name.
 */
import { type KeyObject, verify, X509Certificate } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import * as asn1js from 'asn1js'
import { CrlSignatureError, TlsMaterialError } from '../errors.js'
import '../pki/crypto.js'

const CRL_BLOCK = /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** Signature algorithms a CRL may use, by OID, with Node's digest name. */
const CRL_SIGNATURE_DIGESTS = new Map<string, string | null>([
  ['1.2.840.10045.4.3.2', 'sha256'], // ecdsa-with-SHA256
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
  ['1.2.840.113549.1.1.11', 'sha256'], // sha256WithRSAEncryption
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.3.101.112', null], // Ed25519: no separate digest
])

/** A certificate that may have signed a CRL: a CA in the bundle or a verified chain. */
export interface CrlIssuer {
  /** Hex of the DER subject name. */
  readonly nameHex: string
  readonly publicKey: KeyObject
  readonly fingerprint256: string
}

/** What a CRL check needs to know about one certificate. */
export interface CrlSubject {
  readonly serial: string
  /** Hex of the DER issuer name of the certificate. */
  readonly issuerNameHex: string
  /** The certificate that signed it, when known and verified. */
  readonly issuer?: CrlIssuer | undefined
}

/**
 * The CRL view of a peer certificate. `issuerDer` (from the handshake's
 * chain) is used only if it really signed the certificate. `parsed` is the
 * same certificate already parsed, when the caller has it.
 */
export function crlSubjectOf(
  peer: X509Certificate,
  issuerDer: Uint8Array | undefined,
  parsed: x509.X509Certificate = new x509.X509Certificate(peer.raw),
): CrlSubject {
  const name = parsed.issuerName.toArrayBuffer()
  const subject = { serial: peer.serialNumber, issuerNameHex: Buffer.from(name).toString('hex') }
  if (issuerDer === undefined) return subject
  const issuer = crlIssuerFromDer(issuerDer)
  if (issuer.nameHex !== subject.issuerNameHex || !peer.verify(issuer.publicKey)) return subject
  return { ...subject, issuer }
}

export interface LoadedCrl {
  readonly path: string
  readonly pem: string
  readonly issuer: string
  /** Hex of the DER issuer name. */
  readonly issuerNameHex: string
  readonly thisUpdate: Date
  /** Absent when the CRL names none (then it never goes stale). */
  readonly nextUpdate?: Date | undefined
}

interface ParsedCrl extends LoadedCrl {
  readonly serials: ReadonlySet<string>
  readonly tbs: Uint8Array
  readonly digest: string | null | undefined
  readonly signature: Uint8Array
}

/** Serial numbers compare as lower-case hex without leading zeros. */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/[^0-9a-fA-F]/g, '').toLowerCase()
  return hex.replace(/^0+(?=.)/, '')
}

/** The CRL-signing view of a DER certificate. */
export function crlIssuerFromDer(der: Uint8Array): CrlIssuer {
  const cert = new X509Certificate(der)
  const name = new x509.X509Certificate(der).subjectName.toArrayBuffer()
  return {
    nameHex: Buffer.from(name).toString('hex'),
    publicKey: cert.publicKey,
    fingerprint256: cert.fingerprint256,
  }
}

/** The CA certificates of a PEM bundle, as possible CRL issuers. */
export function crlIssuersFromPem(pem: string): CrlIssuer[] {
  const issuers: CrlIssuer[] = []
  for (const block of pem.match(CERT_BLOCK) ?? []) {
    const cert = new X509Certificate(block)
    if (cert.ca) issuers.push(crlIssuerFromDer(cert.raw))
  }
  return issuers
}

/** An immutable set of CRLs, built from files' text. */
export class CrlSet {
  readonly #crls: readonly ParsedCrl[]
  // Signature checks already made, by CRL index and issuer fingerprint.
  readonly #signedBy = new Map<string, boolean>()

  private constructor(crls: readonly ParsedCrl[]) {
    this.#crls = crls
  }

  static readonly EMPTY = new CrlSet([])

  /**
   * Parse the PEM text of each file. A CRL whose issuer is among `issuers`
   * (by name) must verify against one of them, else `CrlSignatureError`;
   * one whose issuer is not known yet is verified when a certificate of
   * that issuer is checked against it. Other faults throw `TlsMaterialError`.
   */
  static parse(
    files: ReadonlyArray<{ path: string; text: string }>,
    issuers: readonly CrlIssuer[] = [],
  ): CrlSet {
    const crls: ParsedCrl[] = []
    for (const { path, text } of files) {
      const blocks = text.match(CRL_BLOCK) ?? []
      if (blocks.length === 0) throw new TlsMaterialError(`crl file ${path} holds no x509 crl`)
      for (const pem of blocks) crls.push(parseCrl(path, pem))
    }
    const set = new CrlSet(crls)
    for (const [index, crl] of crls.entries()) {
      const named = issuers.filter((i) => i.nameHex === crl.issuerNameHex)
      if (named.length === 0) continue
      if (!named.some((issuer) => set.#isSignedBy(index, issuer))) {
        throw new CrlSignatureError(
          `crl file ${crl.path}: signature does not verify against its issuer in the ca bundle`,
        )
      }
    }
    return set
  }

  get crls(): readonly LoadedCrl[] {
    return this.#crls
  }

  /**
   * True when a CRL of the certificate's issuer lists its serial: a CRL
   * with the issuer's name whose signature verifies with the issuer's key.
   * When the issuer certificate is not known, the name alone decides
   * (fail closed: it may over-match, never under-match).
   */
  isRevoked(cert: CrlSubject): boolean {
    const wanted = normalizeSerial(cert.serial)
    const issuer = cert.issuer
    return this.#crls.some(
      (crl, index) =>
        crl.issuerNameHex === cert.issuerNameHex &&
        crl.serials.has(wanted) &&
        (issuer === undefined || this.#isSignedBy(index, issuer)),
    )
  }

  /** CRLs whose nextUpdate has passed at `nowMs`. */
  stale(nowMs: number): LoadedCrl[] {
    return this.#crls.filter((c) => c.nextUpdate !== undefined && c.nextUpdate.getTime() < nowMs)
  }

  get pems(): string[] {
    return this.#crls.map((c) => c.pem)
  }

  #isSignedBy(index: number, issuer: CrlIssuer): boolean {
    const key = `${index}\u0000${issuer.fingerprint256}`
    let ok = this.#signedBy.get(key)
    if (ok === undefined) {
      ok = verifySignature(this.#crls[index] as ParsedCrl, issuer.publicKey)
      this.#signedBy.set(key, ok)
    }
    return ok
  }
}

function parseCrl(path: string, pem: string): ParsedCrl {
  let crl: x509.X509Crl
  try {
    crl = new x509.X509Crl(pem)
  } catch (err) {
    throw new TlsMaterialError(`crl file ${path} cannot be parsed`, { cause: err })
  }
  const parts = splitSigned(new Uint8Array(crl.rawData))
  if (!parts) throw new TlsMaterialError(`crl file ${path} cannot be parsed`)
  return {
    path,
    pem,
    issuer: crl.issuer,
    issuerNameHex: Buffer.from(crl.issuerName.toArrayBuffer()).toString('hex'),
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    serials: new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber))),
    ...parts,
  }
}

/** RFC 5280 5.1: CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }. */
function splitSigned(
  der: Uint8Array,
): { tbs: Uint8Array; digest: string | null | undefined; signature: Uint8Array } | undefined {
  const parsed = asn1js.fromBER(der)
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return undefined
  const [tbs, algorithm, signature] = parsed.result.valueBlock.value
  if (!(algorithm instanceof asn1js.Sequence) || !(signature instanceof asn1js.BitString)) {
    return undefined
  }
  const oid = algorithm.valueBlock.value[0]
  if (!tbs || !(oid instanceof asn1js.ObjectIdentifier)) return undefined
  return {
    tbs: new Uint8Array(tbs.valueBeforeDecodeView),
    // `undefined` (an algorithm we do not know) never verifies: fail closed.
    digest: CRL_SIGNATURE_DIGESTS.get(oid.valueBlock.toString()),
    signature: new Uint8Array(signature.valueBlock.valueHexView),
  }
}

function verifySignature(crl: ParsedCrl, key: KeyObject): boolean {
  if (crl.digest === undefined) return false
  try {
    return verify(crl.digest, crl.tbs, key, crl.signature)
  } catch {
    return false
  }
}
