/**
 * What a TLS guard derives from a verified client certificate, read once per
 * handshake and remembered per certificate (issue #7): the identity fields
 * and their mapping (C10), the CRL view with its checked issuer (C11), the
 * OCSP responder it names and its lifetime in days (C12).
 *
 * Only facts fixed by the certificate bytes and the listener's mapping rules
 * are remembered. Every decision that can change while the broker runs
 * (CRL and deny-list lookups, OCSP answers, the environment check, PHI in
 * the identity, the lifetime policy) is still made per handshake by the
 * guard; the guard also empties this cache when its CRLs or deny list change.
 */
import type { X509Certificate } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { type CertificateFields, certificateFieldsOf } from '../identity/certificate-fields.js'
import type { IdentityMapper, MappingResult } from '../identity/mapping.js'
import { type CrlSubject, crlSubjectOf } from './crl-set.js'
import { responderUrlIn } from './ocsp-checker.js'

/** Certificates remembered at most per listener; the least recently used go first. */
export const PEER_VIEWS_MAX = 4096

const DAY_MS = 86_400_000

/** The derived facts of one verified certificate (with the issuer it was verified against). */
export interface PeerView {
  readonly issuerDer: Uint8Array | undefined
  readonly crl: CrlSubject
  readonly fields: CertificateFields
  readonly mapped: MappingResult
  /** The OCSP responder named in the certificate's AIA extension, if any. */
  readonly ocspResponder: string | undefined
  readonly lifetimeDays: number
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

  /** The view of a verified peer certificate: remembered, or derived from one parse. */
  viewOf(peer: X509Certificate): PeerView {
    const issuerDer = issuerOf(peer)
    const issuerKey = issuerDer === undefined ? '' : (peer.issuerCertificate?.fingerprint256 ?? '')
    const key = `${peer.fingerprint256}/${issuerKey}`
    const hit = this.#views.get(key)
    if (hit !== undefined) {
      // Least recently used first: a hit moves to the end.
      this.#views.delete(key)
      this.#views.set(key, hit)
      return hit
    }
    const view = derive(peer, issuerDer, this.#mapper)
    if (this.#views.size >= this.#max) {
      const oldest = this.#views.keys().next().value
      if (oldest !== undefined) this.#views.delete(oldest)
    }
    this.#views.set(key, view)
    return view
  }

  /** Forget every view (revocation state or mapping rules changed). */
  clear(): void {
    this.#views.clear()
  }
}

function derive(
  peer: X509Certificate,
  issuerDer: Uint8Array | undefined,
  mapper: IdentityMapper,
): PeerView {
  // One ASN.1 parse for the names Node's X509Certificate gives only as text.
  const parsed = new x509.X509Certificate(peer.raw)
  const fields = certificateFieldsOf(parsed)
  return {
    issuerDer,
    crl: crlSubjectOf(peer, issuerDer, parsed),
    fields,
    mapped: mapper.map(fields),
    ocspResponder: responderUrlIn(peer.infoAccess),
    lifetimeDays: (Date.parse(peer.validTo) - Date.parse(peer.validFrom)) / DAY_MS,
  }
}

/** DER of the certificate that issued the peer's, from the verified chain. */
function issuerOf(peer: X509Certificate): Uint8Array | undefined {
  const issuer = peer.issuerCertificate
  // A self-issued leaf points at itself: there is no separate issuer.
  if (!issuer || issuer.fingerprint256 === peer.fingerprint256) return undefined
  return issuer.raw
}
