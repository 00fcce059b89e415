/**
 * Splits a byte stream into whole MQTT packets. It reads the fixed header and
 * the Remaining Length itself, so a packet that declares more than the limit
 * is refused before a byte of its body is buffered (`mqtt-packet` has no
 * limit of its own).
 */

/** What the framer found wrong with the stream. */
export type FrameProblem = 'malformed-length' | 'too-large'

export interface FramerSink {
  /** One whole packet, fixed header included; the buffer may share memory with the input. */
  onPacket(packet: Buffer): void
  onProblem(problem: FrameProblem, declaredSize: number): void
}

/** Incremental framer; one per connection. */
export class Framer {
  #pending: Buffer | undefined
  #maxPacketSize: number
  #stopped = false
  readonly #sink: FramerSink

  constructor(maxPacketSize: number, sink: FramerSink) {
    this.#maxPacketSize = maxPacketSize
    this.#sink = sink
  }

  /** Bytes held waiting for the rest of a packet. */
  get bufferedBytes(): number {
    return this.#pending?.length ?? 0
  }

  set maxPacketSize(size: number) {
    this.#maxPacketSize = size
  }

  /** Stop delivering packets (the connection is closing). */
  stop(): void {
    this.#stopped = true
    this.#pending = undefined
  }

  /** Feed bytes; every whole packet in them is delivered before this returns. */
  push(chunk: Buffer): void {
    let buf = chunk
    if (this.#pending) {
      buf = Buffer.concat([this.#pending, chunk])
      this.#pending = undefined
    }
    let offset = 0
    while (offset < buf.length && !this.#stopped) {
      const size = this.#packetSize(buf, offset)
      if (size === undefined) break // header not complete yet
      if (size < 0) return
      if (offset + size > buf.length) break
      this.#sink.onPacket(buf.subarray(offset, offset + size))
      offset += size
    }
    if (offset < buf.length && !this.#stopped) {
      // Keep only the tail; copy so a large chunk is not pinned by a small remainder.
      this.#pending = Buffer.from(buf.subarray(offset))
    }
  }

  /**
   * Total size of the packet at `offset`, `undefined` when the header is not
   * all here, or -1 after reporting a problem.
   */
  #packetSize(buf: Buffer, offset: number): number | undefined {
    let multiplier = 1
    let length = 0
    for (let i = 1; i <= 4; i++) {
      if (offset + i >= buf.length) return undefined
      const byte = buf[offset + i] as number
      length += (byte & 0x7f) * multiplier
      if ((byte & 0x80) === 0) {
        const total = 1 + i + length
        if (total > this.#maxPacketSize) {
          this.#stopped = true
          this.#sink.onProblem('too-large', total)
          return -1
        }
        return total
      }
      multiplier *= 128
    }
    // [MQTT-1.5.5-1] at most four bytes of Variable Byte Integer
    this.#stopped = true
    this.#sink.onProblem('malformed-length', 0)
    return -1
  }
}
