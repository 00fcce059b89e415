/**
 * The part of a session's queue that lives only in a durable store (issue
 * #5: offline queues live in the store, not in memory). The core keeps no
 * message here, only the sequence number and size of each entry, so it can
 * enforce the queue caps (drop-oldest) and know what to read back, in
 * order, when the client returns.
 */

/** Messages read back from the store at a time when a session drains. */
export const QUEUE_PAGE_MESSAGES = 64

export class StoredQueue {
  /** seq → counted bytes, in seq order (insertion order of a `Map`). */
  readonly #sizes = new Map<number, number>()
  #bytes = 0

  /** Entries held in the store only. */
  get length(): number {
    return this.#sizes.size
  }

  /** Their counted bytes (topic + payload), as the caps count them. */
  get bytes(): number {
    return this.#bytes
  }

  /** Sequence number of the oldest entry, if any. */
  get firstSeq(): number | undefined {
    for (const seq of this.#sizes.keys()) return seq
    return undefined
  }

  has(seq: number): boolean {
    return this.#sizes.has(seq)
  }

  /** Append an entry; its seq is above every seq held. */
  push(seq: number, bytes: number): void {
    this.#sizes.set(seq, bytes)
    this.#bytes += bytes
  }

  /** Forget an entry; returns whether it was held. */
  delete(seq: number): boolean {
    const bytes = this.#sizes.get(seq)
    if (bytes === undefined) return false
    this.#sizes.delete(seq)
    this.#bytes -= bytes
    return true
  }

  /** Remove and return the oldest entry's seq. */
  shift(): number | undefined {
    const seq = this.firstSeq
    if (seq !== undefined) this.delete(seq)
    return seq
  }

  /** Remove every entry with seq at most `seq`. */
  dropThrough(seq: number): void {
    for (const held of this.#sizes.keys()) {
      if (held > seq) break
      this.delete(held)
    }
  }

  /**
   * Put entries in front (they go back to the store when the client leaves);
   * every seq given is below every seq held.
   */
  unshift(entries: ReadonlyArray<{ seq: number; bytes: number }>): void {
    if (entries.length === 0) return
    const rest = [...this.#sizes]
    this.clear()
    for (const e of entries) this.push(e.seq, e.bytes)
    for (const [seq, bytes] of rest) this.push(seq, bytes)
  }

  clear(): void {
    this.#sizes.clear()
    this.#bytes = 0
  }
}
