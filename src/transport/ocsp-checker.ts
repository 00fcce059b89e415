/**
 * Broker-side OCSP (control C11): asks the responder named in a client
 * certificate (or a configured one) whether it is revoked, caches answers
 * no longer than they are valid, times out, and fails closed by default.
 * Also fetches the server certificate's own status for stapling.
 */
import { createHash, X509Certificate } from 'node:crypto'
import type { Clock } from '../broker/clock.js'
import { buildOcspRequest, readOcspResponse } from '../pki/ocsp.js'

export interface OcspOptions {
  /** `off`; `if-present`: check certificates that name a responder; `require`: refuse those that do not. */
  readonly mode: 'off' | 'if-present' | 'require'
  /** Used instead of the certificate's AIA responder when set. */
  readonly responderUrl?: string | undefined
  readonly timeoutMs: number
  /** A timeout, error or `unknown` answer: `refuse` (fail closed) or `allow`. */
  readonly failure: 'refuse' | 'allow'
  /** Answers are cached until their nextUpdate, and never longer than this. */
  readonly maxCacheSeconds: number
  /** Live sessions are asked about again this often. */
  readonly recheckSeconds: number
  /** Staple the server certificate's status for clients that ask. */
  readonly staple: boolean
}

export const OCSP_DEFAULTS: OcspOptions = {
  mode: 'if-present',
  timeoutMs: 2000,
  failure: 'refuse',
  maxCacheSeconds: 3600,
  recheckSeconds: 300,
  staple: true,
}

/** Cached answers kept at most (one per certificate). */
export const OCSP_CACHE_MAX_ENTRIES = 50_000

/** The verdict for one certificate. */
export type OcspVerdict = 'good' | 'revoked' | 'unknown' | 'unavailable' | 'no-responder'

interface Cached {
  readonly verdict: 'good' | 'revoked' | 'unknown'
  readonly der: Uint8Array
  readonly expiresAtMs: number
}

/** The responder URL a certificate names in its AIA extension, if any. */
export function responderUrlOf(certDer: Uint8Array): string | undefined {
  return responderUrlIn(new X509Certificate(certDer).infoAccess)
}

/** The responder URL in a certificate's `infoAccess` text (Node's form), if any. */
export function responderUrlIn(infoAccess: string | undefined): string | undefined {
  return /OCSP - URI:(\S+)/.exec(infoAccess ?? '')?.[1]
}

/** The AIA responder of a certificate, when the caller has already read it. */
export interface NamedResponder {
  readonly url: string | undefined
}

export class OcspChecker {
  readonly options: OcspOptions
  readonly #clock: Clock
  // Keyed by certificate hash, from client input: a Map.
  readonly #cache = new Map<string, Cached>()

  constructor(options: OcspOptions, clock: Clock) {
    this.options = options
    this.#clock = clock
  }

  /**
   * Status of `leaf`, from cache while the last answer is valid. `named`
   * saves parsing the certificate again when the caller has read its AIA.
   */
  async check(
    leafDer: Uint8Array,
    issuerDer: Uint8Array | undefined,
    named?: NamedResponder,
  ): Promise<OcspVerdict> {
    const cached = this.#fresh(leafDer)
    if (cached) return cached.verdict
    const url = this.options.responderUrl ?? (named ? named.url : responderUrlOf(leafDer))
    if (url === undefined) return 'no-responder'
    // Without the issuer no request can be built (CertID hashes its key).
    if (issuerDer === undefined) return 'unavailable'
    try {
      return (await this.#ask(url, leafDer, issuerDer)).verdict
    } catch {
      return 'unavailable'
    }
  }

  /** A verified DER response for stapling, or undefined. */
  async stapleFor(certDer: Uint8Array, issuerDer: Uint8Array): Promise<Uint8Array | undefined> {
    const cached = this.#fresh(certDer)
    if (cached) return cached.der
    const url = this.options.responderUrl ?? responderUrlOf(certDer)
    if (url === undefined) return undefined
    try {
      return (await this.#ask(url, certDer, issuerDer)).der
    } catch {
      return undefined
    }
  }

  #fresh(der: Uint8Array): Cached | undefined {
    const key = hashOf(der)
    const hit = this.#cache.get(key)
    if (hit && hit.expiresAtMs > this.#clock.now()) return hit
    if (hit) this.#cache.delete(key)
    return undefined
  }

  async #ask(url: string, leafDer: Uint8Array, issuerDer: Uint8Array): Promise<Cached> {
    const body = await buildOcspRequest(leafDer, issuerDer)
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request' },
      body,
      signal: AbortSignal.timeout(this.options.timeoutMs),
    })
    if (!res.ok) throw new Error(`ocsp responder answered http ${res.status}`)
    const der = new Uint8Array(await res.arrayBuffer())
    const now = this.#clock.now()
    const answer = await readOcspResponse(der, leafDer, issuerDer, new Date(now))
    const cap = now + this.options.maxCacheSeconds * 1000
    const entry: Cached = {
      verdict: answer.status,
      der,
      expiresAtMs: Math.min(cap, answer.nextUpdate?.getTime() ?? now),
    }
    if (this.#cache.size >= OCSP_CACHE_MAX_ENTRIES) this.#prune(now)
    this.#cache.set(hashOf(leafDer), entry)
    return entry
  }

  /** Drop expired answers; if still full, the oldest inserted go first. */
  #prune(now: number): void {
    for (const [key, hit] of this.#cache) if (hit.expiresAtMs <= now) this.#cache.delete(key)
    for (const key of this.#cache.keys()) {
      if (this.#cache.size < OCSP_CACHE_MAX_ENTRIES) break
      this.#cache.delete(key)
    }
  }
}

function hashOf(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex')
}
