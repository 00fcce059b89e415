/**
 * Text a TLS peer chose, made fit for the audit trail (C13, C26).
 *
 * A peer that has not authenticated can still put free text into a
 * handshake: the SNI server name, and the subject and issuer of a
 * certificate no trusted CA signed. C13 wants those fields recorded for
 * failed handshakes too, so they are kept, but never raw: control
 * characters are replaced, PHI detector hits are masked and the length is
 * capped. The same masking applies to certificates our CA issued, so a
 * name never appears in one event raw and in another masked.
 */

/** Replaces PHI detector hits in text with `***`. */
export type TextMasker = (text: string) => string

/** Subject and issuer of a certificate a trusted CA signed. */
export const TRUSTED_FIELD_MAX_CHARS = 512
/** Subject and issuer of a certificate that did not verify: attacker text. */
export const UNTRUSTED_FIELD_MAX_CHARS = 256
/** RFC 1035 section 2.3.4: a host name is at most 253 characters written out. */
const HOSTNAME_MAX_CHARS = 253
/** What an SNI value that is not a host name is recorded as. */
export const SNI_INVALID = '[invalid]'

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`)

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g

function cap(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text
}

/**
 * A certificate name (subject or issuer, lines already joined) as the audit
 * trail may hold it: controls replaced, detector hits masked, then capped.
 * Masking runs on the whole text, so a cap never cuts an identifier in two
 * and leaves half of it unmasked.
 */
export function auditCertificateName(text: string, mask: TextMasker, verified: boolean): string {
  const max = verified ? TRUSTED_FIELD_MAX_CHARS : UNTRUSTED_FIELD_MAX_CHARS
  return cap(mask(text.replace(CONTROL, '?')), max)
}

/** True when `name` is a syntactically valid host name (RFC 1123). */
export function isHostname(name: string): boolean {
  return name.length <= HOSTNAME_MAX_CHARS && HOSTNAME.test(name)
}

/**
 * The SNI server name as the audit trail may hold it: a valid host name,
 * lower-cased, with detector hits masked; anything else is `[invalid]`.
 * Absent when the client sent none.
 */
export function auditSni(
  servername: string | false | null | undefined,
  mask: TextMasker,
): string | undefined {
  if (!servername) return undefined
  if (!isHostname(servername)) return SNI_INVALID
  return mask(servername.toLowerCase())
}
