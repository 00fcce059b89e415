/**
 * Aggregation of refusals made before the TLS handshake (`RATE_LIMITED`,
 * `MAX_CONNECTIONS`), so a flood of bare TCP connects cannot turn into a
 * flood of signed audit records (red-team finding 5; C13, C25).
 *
 * Per source address, reason and window: the first refusal is recorded on
 * its own as a `tls.handshake` event; the rest are counted, and one
 * `tls.refused.summary` event with the count is emitted when the window
 * ends. One timer per listener, on the injected clock, armed only while a
 * count is waiting and cancelled by `close()`.
 */
import type { AuditSink } from '../audit/sink.js'
import type { Clock, TimerHandle } from '../broker/clock.js'

/** At most this many (address, reason) windows are tracked at once. */
export const SUMMARY_MAX_SOURCES = 4096
/** The address counted for sources beyond `SUMMARY_MAX_SOURCES`. */
export const OVERFLOW_ADDRESS = 'other'

interface Bucket {
  readonly address: string
  readonly reason: string
  readonly startMs: number
  suppressed: number
}

export interface RefusalSummaryOptions {
  readonly listener: string
  readonly windowSeconds: number
  readonly clock: Clock
  readonly audit: AuditSink
}

/** Decides which early refusals are recorded one by one, and sums up the rest. */
export class RefusalSummaries {
  readonly #o: RefusalSummaryOptions
  readonly #windowMs: number
  // Keyed by client-controlled source address: a Map, capped and pruned.
  readonly #buckets = new Map<string, Bucket>()
  #timer: TimerHandle | undefined
  #timerAt = Number.POSITIVE_INFINITY
  #closed = false

  constructor(options: RefusalSummaryOptions) {
    this.#o = options
    this.#windowMs = Math.max(1, options.windowSeconds) * 1000
  }

  /**
   * Note one refusal. True when it is the first from this address for this
   * reason in the window: the caller records it on its own.
   */
  admitRecord(address: string, reason: string): boolean {
    const now = this.#o.clock.now()
    let key = bucketKey(address, reason)
    let bucket = this.#current(key, now)
    if (!bucket && this.#buckets.size >= SUMMARY_MAX_SOURCES) {
      this.#flush(now)
      if (this.#buckets.size >= SUMMARY_MAX_SOURCES) {
        // Too many sources at once: the rest share one bucket.
        key = bucketKey(OVERFLOW_ADDRESS, reason)
        bucket = this.#current(key, now)
        address = OVERFLOW_ADDRESS
      }
    }
    if (!bucket) {
      this.#buckets.set(key, { address, reason, startMs: now, suppressed: 0 })
      return true
    }
    bucket.suppressed += 1
    this.#arm(bucket.startMs + this.#windowMs)
    return false
  }

  /** Emit every pending count now and stop the timer. */
  close(): void {
    this.#closed = true
    this.#timer?.cancel()
    this.#timer = undefined
    for (const bucket of this.#buckets.values()) this.#emit(bucket)
    this.#buckets.clear()
  }

  /** The bucket of `key` if its window is still open; an ended one is flushed. */
  #current(key: string, now: number): Bucket | undefined {
    const bucket = this.#buckets.get(key)
    if (bucket && now - bucket.startMs >= this.#windowMs) {
      this.#emit(bucket)
      this.#buckets.delete(key)
      return undefined
    }
    return bucket
  }

  /** Emit and forget every bucket whose window has ended. */
  #flush(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.startMs < this.#windowMs) continue
      this.#emit(bucket)
      this.#buckets.delete(key)
    }
  }

  #emit(bucket: Bucket): void {
    if (bucket.suppressed === 0) return
    this.#o.audit.emit({
      type: 'tls.refused.summary',
      listener: this.#o.listener,
      remoteAddress: bucket.address,
      reason: bucket.reason,
      count: bucket.suppressed,
      from: new Date(bucket.startMs).toISOString(),
      to: new Date(bucket.startMs + this.#windowMs).toISOString(),
    })
    bucket.suppressed = 0
  }

  /** Make sure the timer fires by `at` (the end of a window with a count). */
  #arm(at: number): void {
    if (this.#closed || at >= this.#timerAt) return
    this.#timer?.cancel()
    this.#timerAt = at
    this.#timer = this.#o.clock.schedule(Math.max(0, at - this.#o.clock.now()), () => {
      this.#timer = undefined
      this.#timerAt = Number.POSITIVE_INFINITY
      const now = this.#o.clock.now()
      this.#flush(now)
      this.#rearm()
    })
  }

  #rearm(): void {
    let earliest = Number.POSITIVE_INFINITY
    for (const bucket of this.#buckets.values()) {
      if (bucket.suppressed > 0) earliest = Math.min(earliest, bucket.startMs + this.#windowMs)
    }
    if (earliest !== Number.POSITIVE_INFINITY) this.#arm(earliest)
  }
}

function bucketKey(address: string, reason: string): string {
  return `${reason}\u0000${address}`
}
