/**
 * OCSP (RFC 6960) with pkijs: answering a request as the issuing CA (or a
 * responder it delegated to), and building a request and checking an answer
 * as the broker. Only what phimq needs: SHA-1 or SHA-256 CertIDs, the nonce
 * echoed when the client sent one, and the two signers RFC 6960 4.2.2.2
 * allows us to trust: the CA itself, or a responder certificate it issued
 * with the id-kp-OCSPSigning EKU.
 */
import { createHash, webcrypto } from 'node:crypto'
import * as asn1js from 'asn1js'
import * as pkijs from 'pkijs'
import type { CryptoKey } from './crypto.js'

pkijs.setEngine(
  'phimq',
  new pkijs.CryptoEngine({
    name: 'phimq',
    crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
  }),
)

const OID_NONCE = '1.3.6.1.5.5.7.48.1.2'
const OID_EXT_KEY_USAGE = '2.5.29.37'
/** id-kp-OCSPSigning (RFC 6960 4.2.2.2). */
export const OID_KP_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9'
const HASH_BY_OID = new Map([
  ['1.3.14.3.2.26', { node: 'sha1', pkijs: 'SHA-1' }],
  ['2.16.840.1.101.3.4.2.1', { node: 'sha256', pkijs: 'SHA-256' }],
])

/** A certificate's status as the CA's inventory knows it. */
export type OcspCertStatus =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly revokedAt: Date; readonly reason?: number | undefined }
  | { readonly status: 'unknown' }

/** What the broker learns from a verified answer. */
export interface OcspAnswer {
  readonly status: 'good' | 'revoked' | 'unknown'
  readonly thisUpdate: Date
  readonly nextUpdate?: Date | undefined
}

export interface ResponderParams {
  readonly issuerDer: Uint8Array
  /** The CA's key, or the delegated responder's when `responderDer` is set. */
  readonly signingKey: CryptoKey
  /** A delegated responder certificate (issued by the CA, with id-kp-OCSPSigning). */
  readonly responderDer?: Uint8Array | undefined
  /** Status of a serial (lower-case hex) issued by this issuer. */
  readonly lookup: (serialHex: string) => OcspCertStatus
  readonly now: Date
  readonly validitySeconds: number
}

/** Answer a DER OCSPRequest with a signed DER OCSPResponse. */
export async function answerOcspRequest(
  requestDer: Uint8Array,
  params: ResponderParams,
): Promise<Uint8Array> {
  let request: pkijs.OCSPRequest
  try {
    request = pkijs.OCSPRequest.fromBER(toArrayBuffer(requestDer))
  } catch {
    return statusOnly(1) // malformedRequest
  }
  const issuer = pkijs.Certificate.fromBER(toArrayBuffer(params.issuerDer))
  const signer = params.responderDer
    ? pkijs.Certificate.fromBER(toArrayBuffer(params.responderDer))
    : issuer
  const basic = new pkijs.BasicOCSPResponse()
  basic.tbsResponseData.responderID = signer.subject
  basic.tbsResponseData.producedAt = params.now
  const nextUpdate = new Date(params.now.getTime() + params.validitySeconds * 1000)

  for (const entry of request.tbsRequest.requestList) {
    const certId = entry.reqCert
    const status = isOurIssuer(certId, issuer)
      ? params.lookup(serialHex(certId.serialNumber))
      : ({ status: 'unknown' } as const)
    const single = new pkijs.SingleResponse({ certID: certId })
    single.certStatus = encodeStatus(status)
    single.thisUpdate = params.now
    single.nextUpdate = nextUpdate
    basic.tbsResponseData.responses.push(single)
  }

  const nonce = request.tbsRequest.requestExtensions?.find((e) => e.extnID === OID_NONCE)
  if (nonce) basic.tbsResponseData.responseExtensions = [nonce]
  basic.certs = [signer]
  await basic.sign(params.signingKey as unknown as Parameters<typeof basic.sign>[0], 'SHA-256')

  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: 0 }),
    responseBytes: new pkijs.ResponseBytes({
      responseType: pkijs.id_PKIX_OCSP_Basic,
      response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER(false) }),
    }),
  })
  return new Uint8Array(response.toSchema().toBER(false))
}

/** A DER OCSPRequest for one certificate (SHA-256 CertID, with a nonce). */
export async function buildOcspRequest(
  leafDer: Uint8Array,
  issuerDer: Uint8Array,
): Promise<Uint8Array> {
  const request = new pkijs.OCSPRequest()
  await request.createForCertificate(pkijs.Certificate.fromBER(toArrayBuffer(leafDer)), {
    hashAlgorithm: 'SHA-256',
    issuerCertificate: pkijs.Certificate.fromBER(toArrayBuffer(issuerDer)),
  })
  const nonce = webcrypto.getRandomValues(new Uint8Array(16))
  request.tbsRequest.requestExtensions = [
    new pkijs.Extension({
      extnID: OID_NONCE,
      extnValue: new asn1js.OctetString({ valueHex: nonce }).toBER(false),
    }),
  ]
  return new Uint8Array(request.toSchema(true).toBER(false))
}

/**
 * Verify a DER OCSPResponse and read the status of `leaf`. The signer must
 * be the issuer itself or a responder it delegated to (`authorizedSigner`).
 * Throws when the response is unsuccessful, signed by anyone else, badly
 * signed, not about this certificate, or not fresh at `now`.
 */
export async function readOcspResponse(
  responseDer: Uint8Array,
  leafDer: Uint8Array,
  issuerDer: Uint8Array,
  now: Date,
): Promise<OcspAnswer> {
  const response = pkijs.OCSPResponse.fromBER(toArrayBuffer(responseDer))
  if (response.responseStatus.valueBlock.valueDec !== 0 || !response.responseBytes) {
    throw new Error(`ocsp response status ${response.responseStatus.valueBlock.valueDec}`)
  }
  const basic = pkijs.BasicOCSPResponse.fromBER(
    response.responseBytes.response.valueBlock.valueHexView.slice().buffer,
  )
  const issuer = pkijs.Certificate.fromBER(toArrayBuffer(issuerDer))
  const leaf = pkijs.Certificate.fromBER(toArrayBuffer(leafDer))
  if (!(await isSignedByAuthorizedResponder(basic, issuer, now))) {
    throw new Error('ocsp response is not signed by the issuer or its delegated responder')
  }
  for (const single of basic.tbsResponseData.responses) {
    const hash = HASH_BY_OID.get(single.certID.hashAlgorithm.algorithmId)
    if (!hash) continue
    const ours = new pkijs.CertID()
    await ours.createForCertificate(leaf, { hashAlgorithm: hash.pkijs, issuerCertificate: issuer })
    if (!ours.isEqual(single.certID)) continue
    // Freshness: a five-minute allowance for clock skew.
    if (single.thisUpdate.getTime() > now.getTime() + 300_000)
      throw new Error('ocsp thisUpdate in the future')
    if (single.nextUpdate && single.nextUpdate.getTime() < now.getTime()) {
      throw new Error('ocsp response expired')
    }
    return {
      status: decodeStatus(single.certStatus),
      thisUpdate: single.thisUpdate,
      nextUpdate: single.nextUpdate,
    }
  }
  throw new Error('ocsp response is not about this certificate')
}

/**
 * RFC 6960 4.2.2.2: the response is signed by the CA that issued the
 * certificate, or by a responder certificate that CA issued directly with
 * id-kp-OCSPSigning in its EKU, valid at `now`. Any other signer (a
 * responder of another CA, one without the EKU, an expired one, the CA's
 * parent) is refused. The responder's own revocation is not asked about
 * (as with id-pkix-ocsp-nocheck): keep its lifetime short.
 */
async function isSignedByAuthorizedResponder(
  basic: pkijs.BasicOCSPResponse,
  issuer: pkijs.Certificate,
  now: Date,
): Promise<boolean> {
  const candidates = [issuer, ...(basic.certs ?? [])]
  for (const cert of candidates) {
    if (!matchesResponderId(cert, basic.tbsResponseData.responderID)) continue
    if (!(await isAuthorizedSigner(cert, issuer, now))) continue
    const engine = pkijs.getCrypto(true)
    const signed = await engine
      .verifyWithPublicKey(
        basic.tbsResponseData.tbsView,
        basic.signature,
        cert.subjectPublicKeyInfo,
        basic.signatureAlgorithm,
      )
      .catch(() => false)
    if (signed) return true
  }
  return false
}

async function isAuthorizedSigner(
  cert: pkijs.Certificate,
  issuer: pkijs.Certificate,
  now: Date,
): Promise<boolean> {
  if (isSameCertificate(cert, issuer)) return true
  // Delegated: issued directly by the CA, OCSPSigning EKU, valid now.
  if (!cert.issuer.isEqual(issuer.subject)) return false
  const purposes = cert.extensions?.find((e) => e.extnID === OID_EXT_KEY_USAGE)?.parsedValue
  if (!(purposes instanceof pkijs.ExtKeyUsage)) return false
  if (!purposes.keyPurposes.includes(OID_KP_OCSP_SIGNING)) return false
  const t = now.getTime()
  if (cert.notBefore.value.getTime() > t || cert.notAfter.value.getTime() < t) return false
  return cert.verify(issuer).catch(() => false)
}

/** ResponderID (RFC 6960 4.2.1): byName, or byKey = SHA-1 of the public key bits. */
function matchesResponderId(cert: pkijs.Certificate, id: unknown): boolean {
  if (id instanceof pkijs.RelativeDistinguishedNames) return cert.subject.isEqual(id)
  if (id instanceof asn1js.OctetString) {
    const keyBits = cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView
    const hash = createHash('sha1').update(keyBits).digest()
    return hash.equals(Buffer.from(id.valueBlock.valueHexView))
  }
  return false
}

function isSameCertificate(a: pkijs.Certificate, b: pkijs.Certificate): boolean {
  const der = (c: pkijs.Certificate) => Buffer.from(c.toSchema().toBER(false))
  return der(a).equals(der(b))
}

function isOurIssuer(certId: pkijs.CertID, issuer: pkijs.Certificate): boolean {
  const hash = HASH_BY_OID.get(certId.hashAlgorithm.algorithmId)
  if (!hash) return false
  const nameDer = new Uint8Array(issuer.subject.toSchema().toBER(false))
  const keyBits = issuer.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView
  const nameHash = createHash(hash.node).update(nameDer).digest()
  const keyHash = createHash(hash.node).update(keyBits).digest()
  return (
    nameHash.equals(Buffer.from(certId.issuerNameHash.valueBlock.valueHexView)) &&
    keyHash.equals(Buffer.from(certId.issuerKeyHash.valueBlock.valueHexView))
  )
}

function serialHex(serial: asn1js.Integer): string {
  return Buffer.from(serial.valueBlock.valueHexView)
    .toString('hex')
    .replace(/^0+(?=.)/, '')
}

function encodeStatus(status: OcspCertStatus): asn1js.BaseBlock {
  if (status.status === 'good') {
    return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } })
  }
  if (status.status === 'unknown') {
    return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } })
  }
  const value: asn1js.BaseBlock[] = [new asn1js.GeneralizedTime({ valueDate: status.revokedAt })]
  if (status.reason !== undefined) {
    value.push(
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [new asn1js.Enumerated({ value: status.reason })],
      }),
    )
  }
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value })
}

function decodeStatus(certStatus: asn1js.BaseBlock): OcspAnswer['status'] {
  switch (certStatus.idBlock.tagNumber) {
    case 0:
      return 'good'
    case 1:
      return 'revoked'
    default:
      return 'unknown'
  }
}

function statusOnly(code: number): Uint8Array {
  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: code }),
  })
  return new Uint8Array(response.toSchema().toBER(false))
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
}
