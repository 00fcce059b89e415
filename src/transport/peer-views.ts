/**
 * What a TLS guard derives from a verified client certificate, read once per
 * handshake and remembered per certificate (issue #7): the names the
 * handshake event records, the identity fields and their mapping (C10), the
 * CRL view with its checked issuer (C11), the OCSP responder it names and
 * its lifetime (C12).
 *
 * Only facts fixed by the certificate's bytes, its verified issuer and the
 * listener's mapping rules are remembered. Every decision that can change
 * while the broker runs (CRL and deny-list lookups, OCSP answers, the
 * environment check, PHI in names and identity, the lifetime policy) is
 * still made per handshake by the guard, which also empties this cache when
 * its CRLs, CAs or deny list change.
 */
import { X509Certificate } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { type CertificateFields, certificateFieldsOf } from '../identity/certificate-fields.js'
import type { IdentityMapper, MappingResult } from '../identity/mapping.js'
import { type CrlSubject, crlSubjectOf } from './crl-set.js'
import { responderUrlIn } from './ocsp-checker.js'

/** Certificates remembered at most per listener; the least recently used go first. */
export const PEER_VIEWS_MAX = 4096

const DAY_MS = 86_400_000

/** A verified peer certificate as the handshake gives it: DER, and its issuer's DER. */
export interface PeerCertificate {
  readonly der: Uint8Array
  /** Absent for a self-issued certificate, or when the chain did not name one. */
  readonly issuerDer: Uint8Array | undefined
}

/** Names and dates of a certificate, as Node renders them (not yet masked). */
export interface CertificateNames {
  readonly subject: string
  readonly issuer: string
  readonly serial: string
  readonly fingerprint256: string
  readonly validFrom: string
  readonly validTo: string
}

/** The derived facts of one verified certificate. */
export interface PeerView {
  readonly leafDer: Uint8Array
  readonly issuerDer: Uint8Array | undefined
  readonly names: CertificateNames
  readonly notAfterMs: number
  readonly lifetimeDays: number
  readonly crl: CrlSubject
  readonly fields: CertificateFields
  readonly mapped: MappingResult
  /** The OCSP responder named in the certificate's AIA extension, if any. */
  readonly ocspResponder: string | undefined
}

export class PeerViews {
  readonly #mapper: IdentityMapper
  readonly #max: number
  // Keyed by fingerprints of certificates that verified against our CAs.
  readonly #views = new Map<string, PeerView>()

  constructor(mapper: IdentityMapper, max = PEER_VIEWS_MAX) {
    this.#mapper = mapper
    this.#max = max
  }

  get size(): number {
    return this.#views.size
  }

  /**
   * The view of the verified certificate with this SHA-256 fingerprint:
   * remembered, or derived from `read()` with one parse of each kind.
   */
  viewOf(fingerprint256: string, read: () => PeerCertificate): PeerView {
    const hit = this.#views.get(fingerprint256)
    if (hit !== undefined) {
      // Least recently used first: a hit moves to the end.
      this.#views.delete(fingerprint256)
      this.#views.set(fingerprint256, hit)
      return hit
    }
    const view = derive(read(), this.#mapper)
    if (this.#views.size >= this.#max) {
      const oldest = this.#views.keys().next().value
      if (oldest !== undefined) this.#views.delete(oldest)
    }
    this.#views.set(fingerprint256, view)
    return view
  }

  /** Forget every view (revocation state, trusted CAs or mapping rules changed). */
  clear(): void {
    this.#views.clear()
  }
}

function derive(cert: PeerCertificate, mapper: IdentityMapper): PeerView {
  const peer = new X509Certificate(cert.der)
  // One ASN.1 parse for the names Node's X509Certificate gives only as text.
  const parsed = new x509.X509Certificate(cert.der)
  const fields = certificateFieldsOf(parsed)
  const notBeforeMs = Date.parse(peer.validFrom)
  const notAfterMs = Date.parse(peer.validTo)
  return {
    leafDer: peer.raw,
    issuerDer: cert.issuerDer,
    names: certificateNames(peer),
    notAfterMs,
    lifetimeDays: (notAfterMs - notBeforeMs) / DAY_MS,
    crl: crlSubjectOf(peer, cert.issuerDer, parsed),
    fields,
    mapped: mapper.map(fields),
    ocspResponder: responderUrlIn(peer.infoAccess),
  }
}

/** Names and dates of a certificate, for the handshake event. */
export function certificateNames(peer: X509Certificate): CertificateNames {
  return {
    subject: peer.subject.split('\n').join(', '),
    issuer: peer.issuer.split('\n').join(', '),
    serial: peer.serialNumber,
    fingerprint256: peer.fingerprint256,
    validFrom: peer.validFrom,
    validTo: peer.validTo,
  }
}
