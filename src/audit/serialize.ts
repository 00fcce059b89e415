/**
 * How an audit event becomes text. One replacer for every writer (trail,
 * exporters) so payload bytes can never enter an audit record, even when a
 * producer passes a message by mistake (C26).
 */
import { createHash } from 'node:crypto'

/** Keys that never leave the process, whatever object they sit in. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['payload', 'password', 'correlationData'])

/**
 * `JSON.stringify` replacer: drops forbidden keys and turns any byte array
 * into its length. `this` is the holder, so the raw value is seen before
 * `Buffer#toJSON` runs.
 */
export function payloadSafeReplacer(this: unknown, key: string, value: unknown): unknown {
  if (FORBIDDEN_KEYS.has(key)) return undefined
  const raw = key === '' ? value : (this as Record<string, unknown>)[key]
  if (raw instanceof Uint8Array) return { redactedBytes: raw.byteLength }
  return value
}

/** Serialize an event or record as one JSON line body (no newline). */
export function toSafeJson(value: object): string {
  return JSON.stringify(value, payloadSafeReplacer)
}

/** Lower-case hex SHA-256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}
