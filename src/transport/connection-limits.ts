/**
 * Listener limits checked before the TLS handshake, so a flood costs no
 * handshake CPU: maximum open connections and new connections per source
 * address in a fixed window.
 */
import type { Clock } from '../broker/clock.js'

export interface ConnectionLimitOptions {
  readonly maxConnections: number
  readonly connectionsPerAddress: number
  readonly rateWindowSeconds: number
}

interface Window {
  startMs: number
  count: number
}

/** Counts open connections and per-address arrivals. */
export class ConnectionLimits {
  readonly #options: ConnectionLimitOptions
  readonly #clock: Clock
  // Keyed by client-controlled source address: a Map, pruned each window.
  readonly #windows = new Map<string, Window>()
  #open = 0
  #lastPruneMs: number

  constructor(options: ConnectionLimitOptions, clock: Clock) {
    this.#options = options
    this.#clock = clock
    this.#lastPruneMs = clock.now()
  }

  /** Admit one arrival; returns a refusal reason or undefined. Call `release` on close. */
  admit(address: string): 'MAX_CONNECTIONS' | 'RATE_LIMITED' | undefined {
    const now = this.#clock.now()
    const windowMs = this.#options.rateWindowSeconds * 1000
    this.#prune(now, windowMs)
    if (this.#open >= this.#options.maxConnections) return 'MAX_CONNECTIONS'

    let w = this.#windows.get(address)
    if (!w || now - w.startMs >= windowMs) {
      w = { startMs: now, count: 0 }
      this.#windows.set(address, w)
    }
    if (w.count >= this.#options.connectionsPerAddress) return 'RATE_LIMITED'
    w.count += 1
    this.#open += 1
    return undefined
  }

  release(): void {
    if (this.#open > 0) this.#open -= 1
  }

  get open(): number {
    return this.#open
  }

  #prune(now: number, windowMs: number): void {
    if (now - this.#lastPruneMs < windowMs) return
    this.#lastPruneMs = now
    for (const [address, w] of this.#windows) {
      if (now - w.startMs >= windowMs) this.#windows.delete(address)
    }
  }
}
