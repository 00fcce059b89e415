/**
 * Turns a `Message` (plus the extras a queue entry carries) into bytes and
 * back, for sealing. Everything that may carry PHI is in here: topic,
 * payload, properties, origin.
 *
 * Layout: `[header length u32 BE][header JSON][payload]`. The header is the
 * message without its payload, whatever fields it has, so a field added to
 * `Message` later is kept without a change here; `Buffer` values inside
 * (correlation data) travel as `{ "$b64": ... }`. `undefined` fields are
 * left out, as if never set.
 */
import type { Message } from '../broker/types.js'
import { StoreError } from '../errors.js'

/** A message and the subscription identifiers queued with it. */
export interface MessageRecord {
  readonly message: Message
  readonly subscriptionIdentifiers?: readonly number[] | undefined
}

interface Header {
  /** The message without `payload`. */
  m: Omit<Message, 'payload'>
  /** Subscription identifiers of a queue entry. */
  s?: number[]
}

/** Serialize a message record. */
export function encodeMessage(record: MessageRecord): Buffer {
  const { payload, ...rest } = record.message
  const header: Header = { m: rest }
  if (record.subscriptionIdentifiers !== undefined) header.s = [...record.subscriptionIdentifiers]

  // The replacer is slow; most messages carry no binary property at all.
  const json = hasBinary(rest) ? JSON.stringify(header, bufferReplacer) : JSON.stringify(header)
  const head = Buffer.from(json, 'utf8')
  const length = Buffer.alloc(4)
  length.writeUInt32BE(head.length, 0)
  return Buffer.concat([length, head, payload])
}

/** The inverse of `encodeMessage`. */
export function decodeMessage(bytes: Buffer): MessageRecord {
  if (bytes.length < 4) throw new StoreError('stored message is truncated')
  const headLength = bytes.readUInt32BE(0)
  if (bytes.length < 4 + headLength) throw new StoreError('stored message is truncated')
  let header: Header
  try {
    const text = bytes.subarray(4, 4 + headLength).toString('utf8')
    header = JSON.parse(text, bufferReviver) as Header
  } catch (err) {
    throw new StoreError('stored message header is malformed', { cause: err })
  }

  const message = { ...header.m, payload: Buffer.from(bytes.subarray(4 + headLength)) } as Message
  if (header.s === undefined) return { message }
  return { message, subscriptionIdentifiers: header.s }
}

/** Whether a Buffer sits anywhere inside `value`. */
function hasBinary(value: unknown): boolean {
  if (Buffer.isBuffer(value)) return true
  if (value === null || typeof value !== 'object') return false
  for (const inner of Object.values(value)) if (hasBinary(inner)) return true
  return false
}

function bufferReplacer(this: unknown, key: string, value: unknown): unknown {
  // JSON.stringify has already called Buffer#toJSON; read the original.
  const original = (this as Record<string, unknown>)[key]
  if (Buffer.isBuffer(original)) return { $b64: original.toString('base64') }
  return value
}

function bufferReviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const b64 = (value as { $b64?: unknown }).$b64
    if (typeof b64 === 'string' && Object.keys(value).length === 1) {
      return Buffer.from(b64, 'base64')
    }
  }
  return value
}
