/**
 * The tamper-evident audit trail (C27): an `AuditSink` that appends hash-
 * chained JSON lines to numbered segment files and signs checkpoints with
 * Ed25519. The record format is described in `segments.ts`.
 *
 * Hot path: `emit` stamps, serializes, hashes and buffers; nothing waits on
 * the disk. Buffered lines are written in batches every `flushIntervalMs` or
 * once `flushBytes` are waiting, and fsync'd at each checkpoint.
 *
 * Back-pressure rule: when a write fails (disk full, permissions), records
 * stay in memory in order, the write is retried every `retryMs`, and
 * `healthy()` returns false; the broker refuses new connections and
 * publishes while it is false rather than lose audit records. Past
 * `maxBufferedBytes` new records are refused and counted, and the count is
 * recorded in `audit.write-recovered` when the disk comes back.
 *
 * Segments rotate by size and by age (checked at each checkpoint tick); a
 * final signed checkpoint closes each. Segments older than the retention
 * period (6 years by default) are deleted, oldest first, and each deletion
 * is itself an `audit.segment-deleted` record.
 */
import {
  chmodSync,
  closeSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import { AuditWriteError } from '../errors.js'
import type { AuditEvent } from './events.js'
import { type AuditExporter, exportEvent } from './exporters.js'
import { type OpenSegmentFile, openSegmentFile, SegmentWriter } from './segment-writer.js'
import {
  CHECKPOINT_TYPE,
  checkpointLine,
  eventLine,
  GENESIS_HASH,
  listSegments,
  parseRecordLine,
  readLastLine,
  readTail,
  segmentName,
  segmentNumber,
} from './segments.js'
import { sha256Hex } from './serialize.js'
import { loadOrCreateSigningKey, publicKeyPem, type SigningKey, signText } from './signing.js'
import type { AuditSink } from './sink.js'
import { EventStamper } from './sink.js'

const MINUTE_MS = 60_000
const DAY_MS = 86_400_000

export type { OpenSegmentFile, SegmentFile } from './segment-writer.js'

/** Six years of 366 days: HIPAA's documentation retention, rounded up. */
export const AUDIT_RETENTION_DEFAULT_DAYS = 6 * 366

export interface TrailOptions {
  /** Directory of the segment files; made (0700) when missing. */
  readonly dir: string
  /** Private Ed25519 key (PEM); made with mode 0600 on first use. */
  readonly keyPath: string
  readonly nodeId: string
  readonly clock?: Clock | undefined
  /** Recorded in `audit.started`, e.g. `system` or `ntp:chrony`. */
  readonly clockSource?: string | undefined
  /** Recorded in `audit.started`: the broker environment (C27). */
  readonly environment?: string | undefined
  /** Recorded in `audit.started`: absolute path of the config file (C27). */
  readonly configSource?: string | undefined
  /** Rotate once a segment reaches this size. Default 64 MiB. */
  readonly maxSegmentBytes?: number | undefined
  /** Rotate once a segment is this old. Default 1440 (a day). */
  readonly rotateMinutes?: number | undefined
  /** Write a signed checkpoint this often. Default 5. */
  readonly checkpointMinutes?: number | undefined
  /** Delete closed segments whose last record is older. Default 6 years. */
  readonly retentionDays?: number | undefined
  /** Longest a record waits in memory before a write. Default 200 ms. */
  readonly flushIntervalMs?: number | undefined
  /** Write at once when this many bytes wait. Default 256 KiB. */
  readonly flushBytes?: number | undefined
  /** Retry a failed write after this long. Default 1000 ms. */
  readonly retryMs?: number | undefined
  /** Refuse new records past this much unwritten data. Default 64 MiB. */
  readonly maxBufferedBytes?: number | undefined
  readonly logger?: Logger | undefined
  readonly openSegmentFile?: OpenSegmentFile | undefined
  /**
   * Exporters fed each stamped event (same ids as the trail). The trail
   * closes them when it closes.
   */
  readonly exporters?: readonly AuditExporter[] | undefined
  /** Called after each batch reaches the disk: records written and milliseconds taken. */
  readonly onWrite?: ((records: number, ms: number) => void) | undefined
}

/** The hash-chained, signed, segment-file `AuditSink`. */
export class TrailAuditSink implements AuditSink {
  readonly #dir: string
  readonly #node: string
  readonly #clock: Clock
  readonly #log: Logger
  readonly #key: SigningKey
  readonly #stamper: EventStamper
  readonly #writer: SegmentWriter
  readonly #exporters: readonly AuditExporter[]
  readonly #maxSegmentBytes: number
  readonly #rotateMs: number
  readonly #checkpointMs: number
  readonly #retentionDays: number
  readonly #flushIntervalMs: number
  readonly #flushBytes: number
  readonly #maxBufferedBytes: number

  #prevHash: string
  #segmentNo: number
  #segment: string
  #segmentBytes = 0
  #segmentRecords = 0
  #segmentOpenedAt: number
  #recordsSinceCheckpoint = 0

  #buffer: string[] = []
  #bufferRecords = 0
  #bufferBytes = 0

  #healthy = true
  #failedAt = 0
  #lost = 0
  #closed = false
  #flushTimer: TimerHandle | undefined
  #tickTimer: TimerHandle | undefined

  constructor(options: TrailOptions) {
    this.#dir = options.dir
    this.#node = options.nodeId
    this.#clock = options.clock ?? systemClock
    this.#log = options.logger ?? silentLogger
    this.#exporters = options.exporters ?? []
    this.#maxSegmentBytes = options.maxSegmentBytes ?? 64 * 1024 * 1024
    this.#rotateMs = (options.rotateMinutes ?? 1440) * MINUTE_MS
    this.#checkpointMs = (options.checkpointMinutes ?? 5) * MINUTE_MS
    this.#retentionDays = options.retentionDays ?? AUDIT_RETENTION_DEFAULT_DAYS
    this.#flushIntervalMs = options.flushIntervalMs ?? 200
    this.#flushBytes = options.flushBytes ?? 256 * 1024
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 64 * 1024 * 1024

    const onWrite = options.onWrite
    this.#writer = new SegmentWriter({
      dir: this.#dir,
      clock: this.#clock,
      open: options.openSegmentFile ?? openSegmentFile,
      retryMs: options.retryMs ?? 1000,
      onWritten: (batch, ms) => {
        onWrite?.(batch.records, ms)
        this.#onWriteOk()
      },
      onFailed: (err) => this.#onWriteFailed(err),
    })

    // Start-up reads are synchronous: they run once, before any traffic.
    restrictTrailDir(this.#dir)
    this.#key = loadOrCreateSigningKey(options.keyPath)
    this.#publishPublicKey()

    const resumed = resumePoint(this.#dir)
    this.#prevHash = resumed.prevHash
    // A segment left open by a crash is sealed before anything else is
    // written: its unsigned tail gets a signature now, not never (C27).
    const sealed =
      resumed.recovered &&
      sealCrashedSegment({
        path: join(this.#dir, resumed.recovered.segment),
        segment: resumed.recovered.segment,
        prevHash: resumed.prevHash,
        lastSeq: resumed.lastSeq,
        node: this.#node,
        key: this.#key,
        now: this.#clock.now(),
      })
    if (sealed) this.#prevHash = sealed.prevHash
    this.#stamper = new EventStamper(this.#node, this.#clock, resumed.lastSeq)
    // A restart always opens a new segment: closed files are never appended to.
    this.#segmentNo = resumed.lastSegment + 1
    this.#segment = segmentName(this.#segmentNo)
    this.#segmentOpenedAt = this.#clock.now()

    // After a crash, say which segment was left open, how many torn bytes
    // were cut from its end and how many records were unsigned at the seal.
    this.emit({
      type: 'audit.started',
      clockSource: options.clockSource ?? 'system',
      segment: this.#segment,
      environment: options.environment,
      config: options.configSource,
      ...(resumed.recovered &&
        sealed && {
          recoveredSegment: resumed.recovered.segment,
          tornBytes: sealed.tornBytes,
          unsignedRecords: sealed.unsignedRecords,
        }),
    })
    if (sealed) {
      this.#log.warn(
        {
          event: 'audit.crash-sealed',
          segment: resumed.recovered?.segment,
          unsignedRecords: sealed.unsignedRecords,
          tornBytes: sealed.tornBytes,
        },
        'audit segment sealed after a crash',
      )
    }
    this.sweepRetention()
    this.#scheduleTick()
  }

  /** False while the disk refuses writes: the broker must refuse new work. */
  healthy(): boolean {
    return this.#healthy
  }

  /** The segment being written now. */
  get currentSegment(): string {
    return this.#segment
  }

  /** The key id checkpoints are signed with. */
  get keyId(): string {
    return this.#key.keyId
  }

  /** Bytes stamped but not yet on disk. */
  get pendingBytes(): number {
    return this.#bufferBytes + this.#writer.queuedBytes
  }

  emit(event: AuditEvent): void {
    if (this.#closed) {
      this.#log.warn({ event: 'audit.closed', type: event.type }, 'audit event after close')
      return
    }
    if (!this.#healthy && this.pendingBytes >= this.#maxBufferedBytes) {
      this.#lost++
      return
    }
    const stamped = this.#stamper.stamp(event)
    this.#append(eventLine(stamped, this.#prevHash))
    if (this.#exporters.length > 0) exportEvent(this.#exporters, stamped, this.#log)
    this.#recordsSinceCheckpoint++
    if (this.#segmentBytes >= this.#maxSegmentBytes) this.#rotate()
  }

  /** Write everything buffered; true once it is on disk, false while the disk fails. */
  flush(): Promise<boolean> {
    this.#seal({ sync: false, close: false })
    return this.#writer.settle()
  }

  /** Write a signed checkpoint now (the timer does this every `checkpointMinutes`). */
  checkpoint(): void {
    this.#writeCheckpoint(false)
  }

  /** Close the current segment with a final checkpoint and start the next. */
  rotate(): void {
    this.#rotate()
  }

  /**
   * Delete closed segments whose last record is older than the retention
   * period, oldest first, recording each deletion (C27).
   */
  sweepRetention(): void {
    const cutoff = this.#clock.now() - this.#retentionDays * DAY_MS
    for (const name of listSegments(this.#dir)) {
      if (name === this.#segment || this.#writer.isPending(name)) break
      const path = join(this.#dir, name)
      const last = readLastLine(path)
      const lastTime = last ? timeOf(last) : undefined
      // Stop at the first segment still in retention: deletions stay contiguous.
      if (!last || lastTime === undefined || Date.parse(lastTime) >= cutoff) break
      unlinkSync(path)
      this.#log.info({ event: 'audit.segment-deleted', segment: name }, 'audit segment deleted')
      this.emit({
        type: 'audit.segment-deleted',
        segment: name,
        lastHash: sha256Hex(last),
        lastTime,
        retentionDays: this.#retentionDays,
      })
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#flushTimer?.cancel()
    this.#tickTimer?.cancel()
    // The final checkpoint's batch closes the file.
    this.#writeCheckpoint(true)
    this.#closed = true
    const ok = await this.flush()
    this.#writer.stop()
    await Promise.allSettled(this.#exporters.map((e) => e.close()))
    if (!ok) throw new AuditWriteError('audit trail closed with unwritten records')
  }

  #publishPublicKey(): void {
    const path = join(this.#dir, `signing-key-${this.#key.keyId}.pub.pem`)
    try {
      if (readFileSync(path, 'utf8') === publicKeyPem(this.#key)) return
    } catch {
      // Missing: written below.
    }
    writeFileSync(path, publicKeyPem(this.#key), { mode: 0o600 })
  }

  #append(line: string): void {
    this.#prevHash = sha256Hex(line)
    const text = `${line}\n`
    const bytes = Buffer.byteLength(text)
    this.#buffer.push(text)
    this.#bufferRecords++
    this.#bufferBytes += bytes
    this.#segmentBytes += bytes
    this.#segmentRecords++

    if (this.#bufferBytes >= this.#flushBytes) {
      this.#seal({ sync: false, close: false })
    } else if (!this.#flushTimer) {
      this.#flushTimer = this.#clock.schedule(this.#flushIntervalMs, () => {
        this.#flushTimer = undefined
        this.#seal({ sync: false, close: false })
      })
    }
  }

  #writeCheckpoint(final: boolean): void {
    if (this.#closed) return
    const line = checkpointLine(
      {
        type: CHECKPOINT_TYPE,
        time: new Date(this.#clock.now()).toISOString(),
        node: this.#node,
        segment: this.#segment,
        records: this.#segmentRecords,
        lastSeq: this.#stamper.lastSeq,
        final,
        keyId: this.#key.keyId,
        prevHash: this.#prevHash,
      },
      (text) => signText(this.#key.privateKey, text),
    )
    this.#append(line)
    this.#recordsSinceCheckpoint = 0
    // Checkpoints are fsync'd: everything they sign is durable with them.
    this.#seal({ sync: true, close: final })
  }

  #rotate(): void {
    if (this.#closed) return
    this.#writeCheckpoint(true)
    this.#segmentNo++
    this.#segment = segmentName(this.#segmentNo)
    this.#segmentBytes = 0
    this.#segmentRecords = 0
    this.#segmentOpenedAt = this.#clock.now()
    this.sweepRetention()
  }

  #scheduleTick(): void {
    this.#tickTimer = this.#clock.schedule(this.#checkpointMs, () => {
      if (this.#clock.now() - this.#segmentOpenedAt >= this.#rotateMs) this.#rotate()
      else if (this.#recordsSinceCheckpoint > 0) this.#writeCheckpoint(false)
      this.#scheduleTick()
    })
  }

  /** Move the buffer into the write queue as one batch. */
  #seal(flags: { sync: boolean; close: boolean }): void {
    if (this.#buffer.length === 0 && !flags.sync && !flags.close) return
    this.#flushTimer?.cancel()
    this.#flushTimer = undefined
    const data = Buffer.from(this.#buffer.join(''), 'utf8')
    const records = this.#bufferRecords
    this.#buffer = []
    this.#bufferRecords = 0
    this.#bufferBytes = 0
    this.#writer.enqueue({ segment: this.#segment, data, records, ...flags })
  }

  #onWriteOk(): void {
    if (this.#healthy) return
    this.#healthy = true
    const failedForMs = this.#clock.now() - this.#failedAt
    const lostRecords = this.#lost
    this.#lost = 0
    this.#log.info({ event: 'audit.write-recovered', failedForMs, lostRecords }, 'audit recovered')
    if (!this.#closed) this.emit({ type: 'audit.write-recovered', failedForMs, lostRecords })
  }

  #onWriteFailed(err: unknown): void {
    if (!this.#healthy) return
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO'
    this.#healthy = false
    this.#failedAt = this.#clock.now()
    this.#log.error({ event: 'audit.write-failed', code }, 'audit write failed')
    if (!this.#closed) {
      const bufferedRecords = this.#bufferRecords + this.#writer.queuedRecords
      this.emit({ type: 'audit.write-failed', code, bufferedRecords })
    }
  }
}

interface CrashSeal {
  readonly path: string
  readonly segment: string
  /** Hash of the last complete record before the seal (any segment). */
  readonly prevHash: string
  readonly lastSeq: number
  readonly node: string
  readonly key: SigningKey
  readonly now: number
}

/**
 * Close a segment left open by a crash with a final checkpoint marked
 * `recovered`: cut a torn last line (it has no hash to check), count the
 * records after the last checkpoint, append the signed checkpoint and
 * fsync. Returns the new chain head and what was found.
 */
function sealCrashedSegment(seal: CrashSeal): {
  prevHash: string
  unsignedRecords: number
  tornBytes: number
} {
  try {
    const bytes = readFileSync(seal.path)
    const end = bytes.lastIndexOf(0x0a) + 1
    const lines =
      end === 0
        ? []
        : bytes
            .subarray(0, end - 1)
            .toString('utf8')
            .split('\n')
    let unsignedRecords = 0
    for (let i = lines.length - 1; i >= 0; i--) {
      if (parseRecordLine(lines[i] as string)?.type === CHECKPOINT_TYPE) break
      unsignedRecords++
    }
    const tornBytes = bytes.length - end
    const line = checkpointLine(
      {
        type: CHECKPOINT_TYPE,
        time: new Date(seal.now).toISOString(),
        node: seal.node,
        segment: seal.segment,
        records: lines.length,
        lastSeq: seal.lastSeq,
        final: true,
        recovered: true,
        unsignedRecords,
        tornBytes,
        keyId: seal.key.keyId,
        prevHash: seal.prevHash,
      },
      (text) => signText(seal.key.privateKey, text),
    )
    const fd = openSync(seal.path, 'r+')
    try {
      ftruncateSync(fd, end)
      const data = Buffer.from(`${line}\n`, 'utf8')
      writeSync(fd, data, 0, data.length, end)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    return { prevHash: sha256Hex(line), unsignedRecords, tornBytes }
  } catch (err) {
    throw new AuditWriteError(`cannot seal audit segment ${seal.segment} left open by a crash`, {
      cause: err,
    })
  }
}

/**
 * True when the trail's last segment was left open by a crash and not yet
 * sealed: only the trail's owner, at its next start, should seal it.
 */
export function trailLeftOpen(dir: string): boolean {
  return resumePoint(dir).recovered !== undefined
}

interface ResumePoint {
  prevHash: string
  lastSeq: number
  lastSegment: number
  /** The last segment, when it ended without a final checkpoint (a crash). */
  recovered?: { segment: string; tornBytes: number } | undefined
}

/** Where a restarted trail continues: last hash, last seq, last segment number. */
function resumePoint(dir: string): ResumePoint {
  const segments = listSegments(dir)
  const lastName = segments.at(-1)
  const lastSegment = lastName ? (segmentNumber(lastName) ?? 0) : 0
  let recovered: ResumePoint['recovered']
  for (let i = segments.length - 1; i >= 0; i--) {
    const name = segments[i] as string
    const { lastLine, tornBytes } = readTail(join(dir, name))
    if (name === lastName && (tornBytes > 0 || !isFinalCheckpoint(lastLine))) {
      recovered = { segment: name, tornBytes }
    }
    if (lastLine === undefined) continue
    return { prevHash: sha256Hex(lastLine), lastSeq: seqOf(lastLine), lastSegment, recovered }
  }
  return { prevHash: GENESIS_HASH, lastSeq: 0, lastSegment, recovered }
}

function isFinalCheckpoint(line: string | undefined): boolean {
  const record = line === undefined ? undefined : parseRecordLine(line)
  return record?.type === CHECKPOINT_TYPE && record.final === true
}

function timeOf(line: string): string | undefined {
  const time = parseRecordLine(line)?.time
  return typeof time === 'string' ? time : undefined
}

function seqOf(line: string): number {
  const record = parseRecordLine(line)
  const seq = record?.type === CHECKPOINT_TYPE ? record.lastSeq : record?.seq
  return typeof seq === 'number' ? seq : 0
}

/**
 * Make the trail directory 0700 and everything in it 0600 (folders 0700),
 * tightening what an older version, a copy or a restore left wider: only
 * the broker's user may read the trail (C27).
 */
export function restrictTrailDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  if (process.platform === 'win32') return
  tighten(dir, 0o700)
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) tighten(path, 0o700)
    else if (entry.isFile()) tighten(path, 0o600)
  }
}

function tighten(path: string, mode: number): void {
  if ((statSync(path).mode & 0o777 & ~mode) !== 0) chmodSync(path, mode)
}
