/**
 * CRLs of one listener as phimq reads them (control C11): the PEM blocks
 * handed to OpenSSL, the revoked serial numbers (so a live session can be
 * closed when its certificate appears), and the earliest nextUpdate.
 */
import * as x509 from '@peculiar/x509'
import { TlsMaterialError } from '../errors.js'
import '../pki/crypto.js'

const CRL_BLOCK = /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g

export interface LoadedCrl {
  readonly path: string
  readonly pem: string
  readonly issuer: string
  readonly thisUpdate: Date
  /** Absent when the CRL names none (then it never goes stale). */
  readonly nextUpdate?: Date | undefined
}

/** Serial numbers compare as lower-case hex without leading zeros. */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/[^0-9a-fA-F]/g, '').toLowerCase()
  return hex.replace(/^0+(?=.)/, '')
}

/** An immutable set of CRLs, built from files' text. */
export class CrlSet {
  readonly crls: readonly LoadedCrl[]
  readonly #revoked: ReadonlySet<string>

  constructor(crls: readonly LoadedCrl[], revoked: ReadonlySet<string>) {
    this.crls = crls
    this.#revoked = revoked
  }

  static readonly EMPTY = new CrlSet([], new Set())

  /** Parse the PEM text of each file. Throws `TlsMaterialError` naming the file. */
  static parse(files: ReadonlyArray<{ path: string; text: string }>): CrlSet {
    const crls: LoadedCrl[] = []
    const revoked = new Set<string>()
    for (const { path, text } of files) {
      const blocks = text.match(CRL_BLOCK) ?? []
      if (blocks.length === 0) throw new TlsMaterialError(`crl file ${path} holds no x509 crl`)
      for (const pem of blocks) {
        let crl: x509.X509Crl
        try {
          crl = new x509.X509Crl(pem)
        } catch (err) {
          throw new TlsMaterialError(`crl file ${path} cannot be parsed`, { cause: err })
        }
        for (const entry of crl.entries) revoked.add(normalizeSerial(entry.serialNumber))
        crls.push({
          path,
          pem,
          issuer: crl.issuer,
          thisUpdate: crl.thisUpdate,
          nextUpdate: crl.nextUpdate,
        })
      }
    }
    return new CrlSet(crls, revoked)
  }

  /** True when a certificate with this serial is on any of the CRLs. */
  isRevoked(serial: string): boolean {
    return this.#revoked.has(normalizeSerial(serial))
  }

  /** CRLs whose nextUpdate has passed at `nowMs`. */
  stale(nowMs: number): LoadedCrl[] {
    return this.crls.filter((c) => c.nextUpdate !== undefined && c.nextUpdate.getTime() < nowMs)
  }

  get pems(): string[] {
    return this.crls.map((c) => c.pem)
  }
}
