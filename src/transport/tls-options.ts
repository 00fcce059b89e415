/**
 * The TLS settings every phimq listener uses (controls C06, C07, C08):
 * TLS 1.2 floor and 1.3 ceiling, the Appendix C cipher allowlist (ephemeral
 * ECDHE with AES-GCM only), renegotiation off, and no session resumption (a
 * resumed session would skip the revocation check of a fresh handshake).
 */
import { constants } from 'node:crypto'
import type { SecureContextOptions, SecureVersion } from 'node:tls'

/**
 * Appendix C default `ciphers` string, verbatim. Never Node's default list:
 * it holds ChaCha20 and CBC suites.
 */
export const TLS_CIPHERS_DEFAULT =
  'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:' +
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256'

/** `profile: constrained` adds the Appendix C "constrained" AES-CCM suites (16-byte tag only). */
export const TLS_CIPHERS_CONSTRAINED = `${TLS_CIPHERS_DEFAULT}:TLS_AES_128_CCM_SHA256:ECDHE-ECDSA-AES256-CCM:ECDHE-ECDSA-AES128-CCM`

/** IANA names (`getCipher().standardName`) of the default profile's suites. */
export const ALLOWED_CIPHERS_DEFAULT: ReadonlySet<string> = new Set([
  'TLS_AES_256_GCM_SHA384',
  'TLS_AES_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
])

/** IANA names of the constrained profile's suites. */
export const ALLOWED_CIPHERS_CONSTRAINED: ReadonlySet<string> = new Set([
  ...ALLOWED_CIPHERS_DEFAULT,
  'TLS_AES_128_CCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_256_CCM',
  'TLS_ECDHE_ECDSA_WITH_AES_128_CCM',
])

export type TlsProfile = 'default' | 'constrained'

export const TLS_MAX_VERSION: SecureVersion = 'TLSv1.3'

/**
 * Renegotiation off (C08) and no tickets: with no session cache either,
 * every connection runs a full handshake with a fresh certificate check.
 */
export const TLS_SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_NO_TICKET

/** PEM material of one listener, already read from disk. */
export interface TlsMaterialPem {
  readonly cert: string
  readonly key: string
  readonly ca: string
  /** CRLs handed to OpenSSL; empty means no CRL check by OpenSSL. */
  readonly crl: readonly string[]
}

export function ciphersFor(profile: TlsProfile): string {
  return profile === 'constrained' ? TLS_CIPHERS_CONSTRAINED : TLS_CIPHERS_DEFAULT
}

export function allowedCiphersFor(profile: TlsProfile): ReadonlySet<string> {
  return profile === 'constrained' ? ALLOWED_CIPHERS_CONSTRAINED : ALLOWED_CIPHERS_DEFAULT
}

/** Secure-context options for `tls.createServer` and `server.setSecureContext`. */
export function buildSecureContextOptions(
  pem: TlsMaterialPem,
  options: { profile: TlsProfile; minVersion: SecureVersion },
): SecureContextOptions {
  return {
    cert: pem.cert,
    key: pem.key,
    ca: pem.ca,
    ...(pem.crl.length > 0 ? { crl: [...pem.crl] } : {}),
    ciphers: ciphersFor(options.profile),
    honorCipherOrder: true,
    minVersion: options.minVersion,
    maxVersion: TLS_MAX_VERSION,
    secureOptions: TLS_SECURE_OPTIONS,
  }
}
