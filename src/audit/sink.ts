/**
 * The `AuditSink` seam and its two simple implementations: one keeps events
 * in memory (tests), one appends JSON lines to a file.
 */
import {
  closeSync,
  createWriteStream,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  type WriteStream,
} from 'node:fs'
import { dirname } from 'node:path'
import type { Clock } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import type { AuditEvent, StampedAuditEvent } from './events.js'
import { type AuditExporter, exportEvent } from './exporters.js'
import { toSafeJson } from './serialize.js'

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

export interface JsonLinesSinkOptions {
  readonly clock?: Clock | undefined
  /** Fed every stamped event, as the trail feeds them (C28). */
  readonly exporters?: readonly AuditExporter[] | undefined
  readonly logger?: Logger | undefined
}

/**
 * Appends one JSON object per line to a file: no hash chain, no
 * signatures (use the trail for evidence). Serialized through the same
 * payload-safe replacer as the trail, fed to the configured exporters, and
 * numbered on from the file's last record after a restart, so event ids
 * `{node}-{seq}` stay unique.
 */
export class JsonLinesAuditSink implements AuditSink {
  readonly #out: WriteStream
  readonly #stamper: EventStamper
  readonly #exporters: readonly AuditExporter[]
  readonly #log: Logger | undefined

  constructor(path: string, node: string, options: JsonLinesSinkOptions = {}) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    const lastSeq = lastSeqOf(path)
    this.#out = createWriteStream(path, { flags: 'a', mode: 0o600 })
    // A failing disk is logged, never thrown into the broker (no chain to break here).
    this.#out.on('error', (err: NodeJS.ErrnoException) => {
      this.#log?.error({ event: 'audit.write-failed', code: err.code }, 'audit write failed')
    })
    this.#stamper = new EventStamper(node, options.clock ?? systemClock, lastSeq)
    this.#exporters = options.exporters ?? []
    this.#log = options.logger
  }

  emit(event: AuditEvent): void {
    const stamped = this.#stamper.stamp(event)
    this.#out.write(`${toSafeJson(stamped)}\n`)
    if (this.#exporters.length > 0) exportEvent(this.#exporters, stamped, this.#log)
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#out.end(resolve))
    await Promise.allSettled(this.#exporters.map((e) => e.close()))
  }
}

/** Bytes read from the end of a JSON lines file to find its last `seq`. */
const TAIL_BYTES = 64 * 1024

/** The `seq` of the last whole record in `path`; 0 when there is none. */
function lastSeqOf(path: string): number {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return 0
  }
  try {
    const size = fstatSync(fd).size
    const length = Math.min(size, TAIL_BYTES)
    const buf = Buffer.alloc(length)
    readSync(fd, buf, 0, length, size - length)
    const lines = buf.toString('utf8').split('\n')
    for (let i = lines.length - 1; i >= 0; i--) {
      const seq = /"seq":(\d+)/.exec(lines[i] ?? '')?.[1]
      if (seq !== undefined) return Number(seq)
    }
    return 0
  } finally {
    closeSync(fd)
  }
}
