/**
 * Sliding-window counters keyed by client input (client id, address,
 * tenant), bounded in memory: each key keeps at most `limit + 1` times,
 * and the oldest keys are evicted past `maxKeys`.
 */
export class RateWindow {
  readonly #windowMs: number
  readonly #keep: number
  readonly #maxKeys: number
  // Insertion order doubles as recency: a hit moves its key to the end.
  readonly #hits = new Map<string, number[]>()

  constructor(options: { windowMs: number; limit: number; maxKeys?: number }) {
    this.#windowMs = options.windowMs
    this.#keep = options.limit + 1
    this.#maxKeys = options.maxKeys ?? 10_000
  }

  /** Count one event for `key` at `now`; returns the events in the window, this one included. */
  hit(key: string, now: number): number {
    const times = this.#hits.get(key) ?? []
    this.#hits.delete(key)
    const since = now - this.#windowMs
    while (times.length > 0 && (times[0] as number) <= since) times.shift()
    times.push(now)
    // Only "over the limit or not" matters: older surplus hits can go.
    if (times.length > this.#keep) times.shift()
    this.#hits.set(key, times)
    if (this.#hits.size > this.#maxKeys) {
      const oldest = this.#hits.keys().next().value
      if (oldest !== undefined) this.#hits.delete(oldest)
    }
    return times.length
  }

  get size(): number {
    return this.#hits.size
  }
}
