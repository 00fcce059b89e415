/**
 * The on-disk shape of the audit trail, shared by the writer, `verify` and
 * `search`.
 *
 * A trail is a directory of segment files `audit-00000001.jsonl`, numbered
 * in order. Each line is one JSON record ending in its own `hash` (SHA-256
 * of the line before that field) and carrying `prevHash`, the SHA-256 of the
 * whole previous line, across segment boundaries. Checkpoint records add an
 * Ed25519 `sig` over the text before it; one closes every segment.
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { sha256Hex, toSafeJson } from './serialize.js'

/** `prevHash` of the very first record of a trail. */
export const GENESIS_HASH = '0'.repeat(64)

export const CHECKPOINT_TYPE = 'audit.checkpoint'

const SEGMENT_NAME = /^audit-(\d{8})\.jsonl$/
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/
const SIG_SUFFIX = /,"sig":"([A-Za-z0-9+/=]+)"\}$/

/** A checkpoint record before it is signed. */
export interface CheckpointBody {
  readonly type: typeof CHECKPOINT_TYPE
  readonly time: string
  readonly node: string
  readonly segment: string
  /** Records in this segment before the checkpoint. */
  readonly records: number
  /** Sequence number of the last event before the checkpoint. */
  readonly lastSeq: number
  /** True when this checkpoint closes the segment. */
  readonly final: boolean
  /**
   * Set on the final checkpoint a restart writes into a segment left open
   * by a crash: the segment was sealed at recovery, not by its writer.
   */
  readonly recovered?: true | undefined
  /** At recovery: records after the segment's last checkpoint (signed only now). */
  readonly unsignedRecords?: number | undefined
  /** At recovery: bytes of a torn last line, cut off before the seal. */
  readonly tornBytes?: number | undefined
  readonly keyId: string
  readonly prevHash: string
}

/** File name of segment number `n`. */
export function segmentName(n: number): string {
  return `audit-${String(n).padStart(8, '0')}.jsonl`
}

/** Number of a segment file name, or undefined when it is not one. */
export function segmentNumber(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name)
  return m ? Number(m[1]) : undefined
}

/** Segment file names in `dir`, oldest first. */
export function listSegments(dir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return names
    .filter((n) => segmentNumber(n) !== undefined)
    .sort((a, b) => (segmentNumber(a) ?? 0) - (segmentNumber(b) ?? 0))
}

/** Append `,"hash":…}` to a JSON object text. */
export function sealText(body: string): string {
  return `${body.slice(0, -1)},"hash":"${sha256Hex(body)}"}`
}

/** One record line (no newline) for a stamped event. */
export function eventLine(event: object, prevHash: string): string {
  return sealText(toSafeJson({ ...event, prevHash }))
}

/** One signed checkpoint line; `signer` returns a base64 signature. */
export function checkpointLine(body: CheckpointBody, signer: (text: string) => string): string {
  const text = JSON.stringify(body)
  return sealText(`${text.slice(0, -1)},"sig":"${signer(text)}"}`)
}

/** The text a record's `hash` covers, or undefined when the suffix is malformed. */
export function unsealText(line: string): { body: string; hash: string } | undefined {
  const m = HASH_SUFFIX.exec(line)
  if (!m) return undefined
  return { body: `${line.slice(0, m.index)}}`, hash: m[1] as string }
}

/** The text a checkpoint's `sig` covers. */
export function unsignText(body: string): { signed: string; sig: string } | undefined {
  const m = SIG_SUFFIX.exec(body)
  if (!m) return undefined
  return { signed: `${body.slice(0, m.index)}}`, sig: m[1] as string }
}

/** The last complete line of a file (read from its tail), or undefined. */
export function readLastLine(path: string): string | undefined {
  return readTail(path).lastLine
}

/**
 * The end of a segment: its last complete line and the bytes after it that
 * have no newline (a write torn by a crash).
 */
export function readTail(path: string): { lastLine: string | undefined; tornBytes: number } {
  const size = statSync(path).size
  if (size === 0) return { lastLine: undefined, tornBytes: 0 }
  const fd = openSync(path, 'r')
  try {
    // Grow the window until it holds a whole line: records are small.
    for (let window = 64 * 1024; ; window *= 4) {
      const start = Math.max(0, size - window)
      const buf = Buffer.alloc(size - start)
      readSync(fd, buf, 0, buf.length, start)
      const end = buf.lastIndexOf(0x0a)
      if (end < 0) {
        if (start === 0) return { lastLine: undefined, tornBytes: size }
        continue
      }
      const tornBytes = buf.length - end - 1
      const begin = buf.lastIndexOf(0x0a, end - 1)
      if (begin >= 0 || start === 0) {
        return { lastLine: buf.subarray(begin + 1, end).toString('utf8'), tornBytes }
      }
    }
  } finally {
    closeSync(fd)
  }
}

/** The first line of a file, when it fits in the first 1 MiB. */
export function readFirstLine(path: string): string | undefined {
  const fd = openSync(path, 'r')
  try {
    // Start small: callers read the first line of every segment.
    for (let size = 16 * 1024; size <= 1024 * 1024; size *= 4) {
      const buf = Buffer.alloc(size)
      const n = readSync(fd, buf, 0, buf.length, 0)
      const end = buf.subarray(0, n).indexOf(0x0a)
      if (end >= 0) return buf.subarray(0, end).toString('utf8')
      if (n < size) return undefined
    }
    return undefined
  } finally {
    closeSync(fd)
  }
}

/** Path of a segment in `dir`. */
export function segmentPath(dir: string, name: string): string {
  return join(dir, name)
}

/** One trail line as an object; `undefined` for a torn or foreign line. */
export function parseRecordLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line)
    return typeof value === 'object' && value !== null
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}
