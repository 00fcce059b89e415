/**
 * The certificates the broker itself depends on: each TLS listener's server
 * certificate and the CA certificates its clients must chain to. Read from
 * the configured files (which the listeners reload without a restart), so
 * the expiry gauge and the `cert-expiry` alert (C29) follow a renewal.
 *
 * Names are the listener name and the certificate's place (`server`,
 * `ca.0`, `ca.1`, ...): never a subject, never a client id.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import type { WatchedCertificate } from './alerts.js'

/** Where one listener's certificates live (absolute paths). */
export interface ListenerCertificateFiles {
  readonly listener: string
  /** Server certificate chain (PEM): the first block is the server certificate. */
  readonly cert: string
  /** CA bundle (PEM): every block is watched. */
  readonly ca: string
}

/** One watched certificate with its labels. */
export interface BrokerCertificate {
  readonly listener: string
  /** `server` or `ca.<index in the bundle>`. */
  readonly cert: string
  /** Epoch milliseconds. */
  readonly notAfter: number
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

interface CachedFile {
  readonly stamp: string
  readonly notAfters: readonly number[]
}

/** Reads the listeners' certificate files, re-parsing only those that changed. */
export class BrokerCertificates {
  readonly #files: readonly ListenerCertificateFiles[]
  readonly #cache = new Map<string, CachedFile>()

  constructor(files: readonly ListenerCertificateFiles[]) {
    this.#files = files
  }

  /** Every certificate now on disk; an unreadable file contributes none (the listener says why). */
  current(): BrokerCertificate[] {
    const out: BrokerCertificate[] = []
    for (const f of this.#files) {
      const server = this.#notAfters(f.cert)[0]
      if (server !== undefined) out.push({ listener: f.listener, cert: 'server', notAfter: server })
      this.#notAfters(f.ca).forEach((notAfter, i) => {
        out.push({ listener: f.listener, cert: `ca.${i}`, notAfter })
      })
    }
    return out
  }

  /** The same, as the alert rule wants them: `<listener>.<cert>` names. */
  watched(): WatchedCertificate[] {
    return this.current().map((c) => ({ name: `${c.listener}.${c.cert}`, notAfter: c.notAfter }))
  }

  #notAfters(path: string): readonly number[] {
    let stamp: string
    try {
      const st = statSync(path)
      stamp = `${st.mtimeMs}:${st.size}`
    } catch {
      return []
    }
    const cached = this.#cache.get(path)
    if (cached?.stamp === stamp) return cached.notAfters
    const notAfters = parseNotAfters(path)
    this.#cache.set(path, { stamp, notAfters })
    return notAfters
  }
}

function parseNotAfters(path: string): number[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return []
  }
  const out: number[] = []
  for (const block of text.match(PEM_BLOCK) ?? []) {
    try {
      out.push(Date.parse(new X509Certificate(block).validTo))
    } catch {
      // A damaged block: the listener refuses the file itself.
    }
  }
  return out
}
