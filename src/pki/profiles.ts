/**
 * Certificate profiles: what each kind of certificate the CA issues looks
 * like (control C12: short lifetimes, SHA-2 signatures, EC P-256 or better).
 */
import { CertificateNamePhiError, CertificateRequestError } from '../errors.js'
import { isSafeIdentityValue } from '../identity/values.js'
import { defaultDetector } from '../phi/detectors.js'

export const CERT_KINDS = ['device', 'app', 'server', 'admin'] as const
export type CertKind = (typeof CERT_KINDS)[number]

export interface CertProfile {
  readonly defaultDays: number
  readonly maxDays: number
  readonly serverAuth: boolean
  readonly clientAuth: boolean
}

/** Lifetimes in days. Device certificates live 90 days at most (C12). */
export const CERT_PROFILES: ReadonlyMap<CertKind, CertProfile> = new Map<CertKind, CertProfile>([
  ['device', { defaultDays: 90, maxDays: 90, serverAuth: false, clientAuth: true }],
  ['app', { defaultDays: 180, maxDays: 397, serverAuth: false, clientAuth: true }],
  ['server', { defaultDays: 90, maxDays: 397, serverAuth: true, clientAuth: false }],
  ['admin', { defaultDays: 30, maxDays: 90, serverAuth: false, clientAuth: true }],
])

export const ROOT_CA_DAYS = 3650
export const INTERMEDIATE_CA_DAYS = 1825
export const CRL_VALIDITY_DAYS = 7

/** The SAN URI the identity mapping expects: `urn:phimq:<tenant>:<role>:<id>`. */
export function identityUri(tenant: string, role: string, id: string): string {
  for (const [field, value] of [
    ['tenant', tenant],
    ['role', role],
    ['id', id],
  ] as const) {
    // A colon inside a value would shift the fields of the URN.
    if (!isSafeIdentityValue(value) || value.includes(':')) {
      throw new CertificateRequestError(`${field} holds a forbidden character or is empty`)
    }
    // The identity is in every audit event of its connections, and
    // listeners refuse one that holds PHI (IDENTITY_PHI): do not issue it.
    const hit = defaultDetector.detect(value)[0]
    if (hit) {
      throw new CertificateNamePhiError(
        `${field} reads as PHI (${hit.kind}); use an opaque identifier such as a device serial`,
      )
    }
  }
  return `urn:phimq:${tenant}:${role}:${id}`
}

export function profileFor(kind: CertKind): CertProfile {
  const profile = CERT_PROFILES.get(kind)
  if (!profile) throw new CertificateRequestError(`unknown certificate kind ${kind}`)
  return profile
}
