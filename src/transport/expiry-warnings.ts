/**
 * Certificate expiry warnings (control C12): one `cert.expiring` audit
 * event per certificate and warning step (30, 7 and 1 days left by
 * default), whether the certificate is seen on a live connection or in the
 * built-in CA's inventory. A device that reconnects ten times a day is
 * warned once per step, not once per connection.
 *
 * One tracker is shared by every listener and the inventory scan; it keeps
 * a small entry per certificate warned about and forgets it once the
 * certificate has expired.
 */
import type { AuditSink } from '../audit/sink.js'
import type { Clock } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Identity } from '../broker/types.js'

const DAY_MS = 86_400_000

/** C12 product default: warn at these days left. */
export const EXPIRY_WARNING_DAYS: readonly number[] = [30, 7, 1]

/** Where a certificate was seen: on a live TLS session, or in the CA inventory. */
export type ExpirySource = 'connected' | 'issued'

/** What a warning needs to know about a certificate. No private data. */
export interface ExpiryCandidate {
  readonly source: ExpirySource
  readonly fingerprint256: string
  readonly serial: string
  /** Epoch milliseconds. */
  readonly notAfterMs: number
  readonly identity?: Identity | undefined
  /** The listener a connected certificate came in on. */
  readonly listener?: string | undefined
  /** The CA directory (relative to the data directory) of an issued certificate. */
  readonly ca?: string | undefined
}

export interface ExpiryWarningsOptions {
  readonly audit: AuditSink
  readonly clock?: Clock | undefined
  /** Days-left steps; default `EXPIRY_WARNING_DAYS`. */
  readonly warningDays?: readonly number[] | undefined
}

/** Emits each step's warning once per certificate and source. */
export class ExpiryWarnings {
  readonly #audit: AuditSink
  readonly #clock: Clock
  /** Ascending order is not assumed: sorted largest first. */
  readonly #steps: readonly number[]
  /** `source|fingerprint` → smallest step warned and the certificate's expiry. */
  readonly #warned = new Map<string, { step: number; notAfterMs: number }>()
  /** Prune expired entries once the map grows past this. */
  #pruneAt = 1024

  constructor(options: ExpiryWarningsOptions) {
    this.#audit = options.audit
    this.#clock = options.clock ?? systemClock
    const days = options.warningDays ?? EXPIRY_WARNING_DAYS
    this.#steps = [...new Set(days)].sort((a, b) => b - a)
  }

  /** The warning steps in force, largest first. */
  get warningDays(): readonly number[] {
    return this.#steps
  }

  /** Warn if `cert` crossed a step it was not yet warned about; true when an event was emitted. */
  check(cert: ExpiryCandidate): boolean {
    const now = this.#clock.now()
    const msLeft = cert.notAfterMs - now
    // Already expired: the handshake refuses it; nothing left to warn about.
    if (msLeft <= 0) return false
    const step = this.#steps.filter((d) => msLeft <= d * DAY_MS).at(-1)
    if (step === undefined) return false
    const key = `${cert.source}|${cert.fingerprint256}`
    const seen = this.#warned.get(key)
    if (seen !== undefined && seen.step <= step) return false
    this.#warned.set(key, { step, notAfterMs: cert.notAfterMs })
    if (this.#warned.size > this.#pruneAt) {
      this.prune()
      this.#pruneAt = Math.max(1024, this.#warned.size * 2)
    }
    this.#audit.emit({
      type: 'cert.expiring',
      source: cert.source,
      listener: cert.listener,
      ca: cert.ca,
      fingerprint256: cert.fingerprint256,
      serial: cert.serial,
      identity: cert.identity,
      notAfter: new Date(cert.notAfterMs).toISOString(),
      daysLeft: Math.floor(msLeft / DAY_MS),
      thresholdDays: step,
    })
    return true
  }

  /** Forget certificates that have expired (bounded memory). */
  prune(): void {
    const now = this.#clock.now()
    for (const [key, entry] of this.#warned) {
      if (entry.notAfterMs <= now) this.#warned.delete(key)
    }
  }
}
