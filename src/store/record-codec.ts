/**
 * Turns a `Message` (plus the extras a queue entry carries) into bytes and
 * back, for sealing. Everything that may carry PHI is in here: topic,
 * payload, properties, origin. Layout: `[header length u32 BE][header
 * JSON][payload]`, binary properties base64 inside the header.
 */
import type { Message, MessageProperties, Qos } from '../broker/types.js'
import { StoreError } from '../errors.js'

interface Header {
  t: string
  q: Qos
  r: boolean
  e?: number
  o?: string
  p?: {
    f?: boolean
    c?: string
    rt?: string
    cd?: string
    u?: Array<[string, string]>
  }
  /** Subscription identifiers of a queue entry. */
  s?: number[]
}

/** A message and the subscription identifiers queued with it. */
export interface MessageRecord {
  readonly message: Message
  readonly subscriptionIdentifiers?: readonly number[] | undefined
}

/** Serialize a message; `undefined` fields are left out. */
export function encodeMessage(record: MessageRecord): Buffer {
  const { message } = record
  const header: Header = { t: message.topic, q: message.qos, r: message.retain }
  if (message.expiresAt !== undefined) header.e = message.expiresAt
  if (message.origin !== undefined) header.o = message.origin
  if (message.properties !== undefined) header.p = encodeProperties(message.properties)
  if (record.subscriptionIdentifiers !== undefined) header.s = [...record.subscriptionIdentifiers]

  const head = Buffer.from(JSON.stringify(header), 'utf8')
  const length = Buffer.alloc(4)
  length.writeUInt32BE(head.length, 0)
  return Buffer.concat([length, head, message.payload])
}

/** The inverse of `encodeMessage`. */
export function decodeMessage(bytes: Buffer): MessageRecord {
  if (bytes.length < 4) throw new StoreError('stored message is truncated')
  const headLength = bytes.readUInt32BE(0)
  if (bytes.length < 4 + headLength) throw new StoreError('stored message is truncated')
  let header: Header
  try {
    header = JSON.parse(bytes.subarray(4, 4 + headLength).toString('utf8')) as Header
  } catch (err) {
    throw new StoreError('stored message header is malformed', { cause: err })
  }

  const message: Message = {
    topic: header.t,
    payload: Buffer.from(bytes.subarray(4 + headLength)),
    qos: header.q,
    retain: header.r,
  }
  if (header.e !== undefined) message.expiresAt = header.e
  if (header.o !== undefined) message.origin = header.o
  if (header.p !== undefined) message.properties = decodeProperties(header.p)
  if (header.s === undefined) return { message }
  return { message, subscriptionIdentifiers: header.s }
}

function encodeProperties(p: MessageProperties): NonNullable<Header['p']> {
  const out: NonNullable<Header['p']> = {}
  if (p.payloadFormatIndicator !== undefined) out.f = p.payloadFormatIndicator
  if (p.contentType !== undefined) out.c = p.contentType
  if (p.responseTopic !== undefined) out.rt = p.responseTopic
  if (p.correlationData !== undefined) out.cd = p.correlationData.toString('base64')
  if (p.userProperties !== undefined) out.u = p.userProperties.map(([k, v]) => [k, v])
  return out
}

function decodeProperties(h: NonNullable<Header['p']>): MessageProperties {
  const out: MessageProperties = {}
  if (h.f !== undefined) out.payloadFormatIndicator = h.f
  if (h.c !== undefined) out.contentType = h.c
  if (h.rt !== undefined) out.responseTopic = h.rt
  if (h.cd !== undefined) out.correlationData = Buffer.from(h.cd, 'base64')
  if (h.u !== undefined) out.userProperties = h.u.map(([k, v]) => [k, v])
  return out
}
