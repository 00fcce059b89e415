/**
 * The fields of a client certificate that identity templates may read:
 * SAN URIs, SAN DNS names, and the subject's CN, O and OU values; and the
 * environment it was issued for (C18), kept apart from the identity URIs.
 */
import * as x509 from '@peculiar/x509'
import { envOfUri } from './environment.js'

export interface CertificateFields {
  /** SAN URIs, without the `urn:phimq:env:` ones (a pattern never sees those). */
  readonly sanUris: readonly string[]
  readonly sanDns: readonly string[]
  /** Subject attribute values by short name (`CN`, `O`, `OU`), in order. */
  readonly subject: ReadonlyMap<string, readonly string[]>
  /** Environments named by `urn:phimq:env:<env>` SAN URIs, lower-cased. */
  readonly envs: readonly string[]
}

/** Subject attributes a template may name. */
export const SUBJECT_FIELDS = ['CN', 'O', 'OU'] as const

/** Read the identity-relevant fields from a DER certificate. */
export function readCertificateFields(der: Uint8Array): CertificateFields {
  return certificateFieldsOf(new x509.X509Certificate(der))
}

/** The identity-relevant fields of a parsed certificate. */
export function certificateFieldsOf(cert: x509.X509Certificate): CertificateFields {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)
  const items = san?.names.items ?? []
  const subject = new Map<string, string[]>()
  for (const field of SUBJECT_FIELDS) subject.set(field, cert.subjectName.getField(field))
  const uris = items.filter((n) => n.type === 'url').map((n) => n.value)
  const envs = uris.map(envOfUri).filter((e): e is string => e !== undefined)
  return {
    sanUris: uris.filter((u) => envOfUri(u) === undefined),
    envs,
    sanDns: items.filter((n) => n.type === 'dns').map((n) => n.value),
    subject,
  }
}
