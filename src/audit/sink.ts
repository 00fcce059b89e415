/**
 * The `AuditSink` seam and its two simple implementations: one keeps events
 * in memory (tests), one appends JSON lines to a file.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import type { Clock } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { AuditEvent, StampedAuditEvent } from './events.js'

/** Receives every accept, deny, drop and change as one typed event. */
export interface AuditSink {
  emit(event: AuditEvent): void
  close(): Promise<void>
}

/** Stamps events with time, sequence number and node id. */
export class EventStamper {
  #seq = 0
  readonly #node: string
  readonly #clock: Clock

  /** `lastSeq` resumes numbering after a restart (the audit trail reads it back). */
  constructor(node: string, clock: Clock = systemClock, lastSeq = 0) {
    this.#node = node
    this.#clock = clock
    this.#seq = lastSeq
  }

  /** The sequence number of the last stamped event. */
  get lastSeq(): number {
    return this.#seq
  }

  stamp(event: AuditEvent): StampedAuditEvent {
    const time = new Date(this.#clock.now()).toISOString()
    return { ...event, time, seq: ++this.#seq, node: this.#node }
  }
}

/** Keeps stamped events in an array; for tests and the demo summary. */
export class MemoryAuditSink implements AuditSink {
  readonly events: StampedAuditEvent[] = []
  readonly #stamper: EventStamper

  constructor(node = 'test', clock: Clock = systemClock) {
    this.#stamper = new EventStamper(node, clock)
  }

  emit(event: AuditEvent): void {
    this.events.push(this.#stamper.stamp(event))
  }

  /** Events of one type, for assertions. */
  ofType<T extends StampedAuditEvent['type']>(
    type: T,
  ): Array<Extract<StampedAuditEvent, { type: T }>> {
    return this.events.filter((e): e is Extract<StampedAuditEvent, { type: T }> => e.type === type)
  }

  async close(): Promise<void> {}
}

/** Appends one JSON object per line to a file. */
export class JsonLinesAuditSink implements AuditSink {
  readonly #out: WriteStream
  readonly #stamper: EventStamper

  constructor(path: string, node: string, clock: Clock = systemClock) {
    this.#out = createWriteStream(path, { flags: 'a', mode: 0o600 })
    this.#stamper = new EventStamper(node, clock)
  }

  emit(event: AuditEvent): void {
    this.#out.write(`${JSON.stringify(this.#stamper.stamp(event))}\n`)
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#out.end(resolve))
  }
}
