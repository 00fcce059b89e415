/**
 * The disk side of the audit trail: an ordered queue of batches written to
 * segment files one after another. A failed write stays at the head of the
 * queue and is retried from the byte where it stopped, so a retry never
 * writes a byte twice and records never change order.
 */
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { Clock, TimerHandle } from '../broker/clock.js'

/** One open segment file. Swappable so tests can make the disk fail. */
export interface SegmentFile {
  /** Write from `buffer[offset]`; resolves with the bytes written. */
  write(buffer: Buffer, offset: number): Promise<number>
  sync(): Promise<void>
  close(): Promise<void>
}

/** Opens (creates or appends to) a segment file. */
export type OpenSegmentFile = (path: string) => Promise<SegmentFile>

/** The real file system: append-only, mode 0600. */
export const openSegmentFile: OpenSegmentFile = async (path) => {
  const handle = await open(path, 'a', 0o600)
  return {
    write: async (buffer, offset) => (await handle.write(buffer, offset)).bytesWritten,
    sync: () => handle.sync(),
    close: () => handle.close(),
  }
}

/** Lines for one segment, written together. */
export interface Batch {
  readonly segment: string
  readonly data: Buffer
  readonly records: number
  /** fsync after writing (checkpoints). */
  readonly sync: boolean
  /** fsync and close the file after writing (final checkpoints). */
  readonly close: boolean
}

export interface SegmentWriterOptions {
  readonly dir: string
  readonly clock: Clock
  readonly open: OpenSegmentFile
  readonly retryMs: number
  /** After each batch reaches the disk. */
  readonly onWritten: (batch: Batch, ms: number) => void
  /** When a write fails (each time). */
  readonly onFailed: (err: unknown) => void
}

interface Queued extends Batch {
  written: number
}

/** Writes batches in order; retries on failure. */
export class SegmentWriter {
  readonly #o: SegmentWriterOptions
  #queue: Queued[] = []
  #queuedBytes = 0
  #file: { segment: string; handle: SegmentFile } | undefined
  #draining = false
  #waiters: Array<(ok: boolean) => void> = []
  #retry: TimerHandle | undefined
  #failing = false

  constructor(options: SegmentWriterOptions) {
    this.#o = options
  }

  /** Bytes queued and not yet on disk. */
  get queuedBytes(): number {
    return this.#queuedBytes
  }

  /** Records queued and not yet on disk. */
  get queuedRecords(): number {
    return this.#queue.reduce((n, b) => n + b.records, 0)
  }

  /** Whether a batch for `segment` still waits. */
  isPending(segment: string): boolean {
    return this.#queue.some((b) => b.segment === segment)
  }

  enqueue(batch: Batch): void {
    this.#queue.push({ ...batch, written: 0 })
    this.#queuedBytes += batch.data.length
    // While failing, only the retry timer (or an explicit settle) writes.
    if (!this.#failing) void this.#drain()
  }

  /** Resolves true once the queue is empty, false if a write fails first. */
  settle(): Promise<boolean> {
    if (this.#queue.length === 0 && !this.#draining) return Promise.resolve(!this.#failing)
    const done = new Promise<boolean>((resolve) => this.#waiters.push(resolve))
    void this.#drain()
    return done
  }

  /** Stop retrying (at close, after the last attempt). */
  stop(): void {
    this.#retry?.cancel()
    this.#retry = undefined
  }

  async #drain(): Promise<void> {
    if (this.#draining) return
    this.#draining = true
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue[0] as Queued
        const started = performance.now()
        try {
          await this.#write(batch)
        } catch (err) {
          this.#failed(err)
          return
        }
        this.#queue.shift()
        this.#queuedBytes -= batch.data.length
        this.#failing = false
        this.#o.onWritten(batch, performance.now() - started)
      }
    } finally {
      this.#draining = false
    }
    this.#resolve(true)
  }

  async #write(batch: Queued): Promise<void> {
    if (this.#file && this.#file.segment !== batch.segment) {
      // A segment left without its final batch (after a failure): close it.
      await this.#file.handle.close()
      this.#file = undefined
    }
    if (!this.#file) {
      const handle = await this.#o.open(join(this.#o.dir, batch.segment))
      this.#file = { segment: batch.segment, handle }
    }
    const { handle } = this.#file
    while (batch.written < batch.data.length) {
      batch.written += await handle.write(batch.data, batch.written)
    }
    if (batch.sync || batch.close) await handle.sync()
    if (batch.close) {
      this.#file = undefined
      await handle.close()
    }
  }

  #failed(err: unknown): void {
    this.#failing = true
    if (this.#file) {
      // Reopen on retry: the handle may be dead.
      const { handle } = this.#file
      this.#file = undefined
      handle.close().catch(() => {})
    }
    this.#o.onFailed(err)
    this.#resolve(false)
    this.#retry?.cancel()
    this.#retry = this.#o.clock.schedule(this.#o.retryMs, () => {
      this.#retry = undefined
      void this.#drain()
    })
  }

  #resolve(ok: boolean): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const resolve of waiters) resolve(ok)
  }
}
