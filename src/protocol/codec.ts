/**
 * The codec: `mqtt-packet` for everything, plus a fast PUBLISH encoder for
 * the common case (no properties) so a fan-out encodes each message once.
 */

import type { Packet, Parser } from 'mqtt-packet'
import mqttPacket from 'mqtt-packet'

export type { Packet, Parser }

/** A new `mqtt-packet` parser for one connection at the given level. */
export function createParser(protocolVersion: 4 | 5): Parser {
  return mqttPacket.parser({ protocolVersion })
}

/** Encode any packet with `mqtt-packet`. Throws on a packet it cannot encode. */
export function encodePacket(packet: Packet, protocolVersion: 4 | 5): Buffer {
  return mqttPacket.generate(packet, { protocolVersion })
}

function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4
}

function writeVarint(buf: Buffer, offset: number, n: number): number {
  let value = n
  let at = offset
  do {
    let byte = value % 128
    value = Math.floor(value / 128)
    if (value > 0) byte |= 0x80
    buf[at++] = byte
  } while (value > 0)
  return at
}

/** An encoded PUBLISH and where its Packet Identifier sits, for patching. */
export interface EncodedPublish {
  readonly bytes: Buffer
  /** Offset of the two Packet Identifier bytes; -1 for QoS 0. */
  readonly packetIdOffset: number
}

/**
 * Encode a PUBLISH without properties (3.1.1, or 5.0 with an empty property
 * list). The Packet Identifier is written as 0; `withPacketId` patches a copy.
 */
export function encodeBarePublish(
  topic: string,
  payload: Buffer,
  qos: 0 | 1 | 2,
  retain: boolean,
  dup: boolean,
  protocolVersion: 4 | 5,
): EncodedPublish {
  const topicBytes = Buffer.byteLength(topic)
  const idBytes = qos > 0 ? 2 : 0
  const propBytes = protocolVersion === 5 ? 1 : 0
  const remaining = 2 + topicBytes + idBytes + propBytes + payload.length
  const total = 1 + varintSize(remaining) + remaining
  const buf = Buffer.allocUnsafe(total)
  buf[0] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0)
  let at = writeVarint(buf, 1, remaining)
  buf.writeUInt16BE(topicBytes, at)
  at += 2
  at += buf.write(topic, at, 'utf8')
  const packetIdOffset = qos > 0 ? at : -1
  if (qos > 0) {
    buf.writeUInt16BE(0, at)
    at += 2
  }
  if (propBytes) buf[at++] = 0
  payload.copy(buf, at)
  return { bytes: buf, packetIdOffset }
}

/** Offset of the Packet Identifier in an encoded QoS 1/2 PUBLISH. */
export function publishPacketIdOffset(bytes: Buffer): number {
  let at = 1
  while ((bytes[at] as number) & 0x80) at++
  at++
  return at + 2 + bytes.readUInt16BE(at)
}

/** A copy of an encoded PUBLISH with its Packet Identifier (and DUP flag) set. */
export function withPacketId(encoded: EncodedPublish, packetId: number, dup: boolean): Buffer {
  const copy = Buffer.allocUnsafe(encoded.bytes.length)
  encoded.bytes.copy(copy)
  copy.writeUInt16BE(packetId, encoded.packetIdOffset)
  if (dup) copy[0] = (copy[0] as number) | 0x08
  return copy
}

/** Bytes that follow each PUBLISH or will property identifier (MQTT 5.0 section 2.2.2.2). */
const MESSAGE_PROPERTY_KINDS = new Map<
  number,
  'byte' | 'int16' | 'int32' | 'varint' | 'str' | 'pair'
>([
  [0x01, 'byte'],
  [0x02, 'int32'],
  [0x03, 'str'],
  [0x08, 'str'],
  [0x09, 'str'],
  [0x0b, 'varint'],
  [0x18, 'int32'],
  [0x23, 'int16'],
  [0x26, 'pair'],
])

function readVarint(buf: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0
  let multiplier = 1
  for (let i = at; i < at + 4 && i < buf.length; i++) {
    const byte = buf[i] as number
    value += (byte & 0x7f) * multiplier
    if ((byte & 0x80) === 0) return { value, next: i + 1 }
    multiplier *= 128
  }
  return undefined
}

/** End offset of the two-byte-length field at `at`, or undefined past the frame. */
function skipField(frame: Buffer, at: number): number | undefined {
  if (at + 2 > frame.length) return undefined
  const next = at + 2 + frame.readUInt16BE(at)
  return next > frame.length ? undefined : next
}

/**
 * The User Properties of the property section whose length starts at `at`,
 * as pairs in wire order, or undefined when it cannot be read.
 */
function userPropertiesAt(frame: Buffer, start: number): Array<[string, string]> | undefined {
  const length = readVarint(frame, start)
  if (!length) return undefined
  const end = length.next + length.value
  if (end > frame.length) return undefined
  const pairs: Array<[string, string]> = []
  let at = length.next
  while (at < end) {
    const kind = MESSAGE_PROPERTY_KINDS.get(frame[at++] as number)
    let next: number | undefined
    if (kind === 'pair') {
      const afterName = skipField(frame, at)
      next = afterName === undefined ? undefined : skipField(frame, afterName)
      if (afterName !== undefined && next !== undefined) {
        pairs.push([
          frame.toString('utf8', at + 2, afterName),
          frame.toString('utf8', afterName + 2, next),
        ])
      }
    } else if (kind === 'str') next = skipField(frame, at)
    else if (kind === 'varint') next = readVarint(frame, at)?.next
    else if (kind === 'byte') next = at + 1
    else if (kind === 'int16') next = at + 2
    else if (kind === 'int32') next = at + 4
    if (next === undefined || next > end) return undefined
    at = next
  }
  return pairs
}

/**
 * The User Properties of a raw 5.0 PUBLISH, as name/value pairs in wire
 * order. `mqtt-packet` groups them by name into an object, which loses the
 * order the Server must keep [MQTT-3.3.2-18]. Returns `undefined` when the
 * frame cannot be read (the parser has judged it already).
 */
export function publishUserPropertiesInOrder(frame: Buffer): Array<[string, string]> | undefined {
  const header = readVarint(frame, 1)
  if (!header) return undefined
  const qos = ((frame[0] as number) >> 1) & 3
  const afterTopic = skipField(frame, header.next)
  if (afterTopic === undefined) return undefined
  return userPropertiesAt(frame, afterTopic + (qos > 0 ? 2 : 0))
}

/**
 * The will's User Properties of a raw 5.0 CONNECT, in wire order
 * [MQTT-3.1.3-10]; `undefined` when there is no will or it cannot be read.
 */
export function willUserPropertiesInOrder(frame: Buffer): Array<[string, string]> | undefined {
  const header = readVarint(frame, 1)
  if (!header) return undefined
  const afterName = skipField(frame, header.next)
  if (afterName === undefined || afterName + 4 > frame.length) return undefined
  const flags = frame[afterName + 1] as number
  if ((flags & 0x04) === 0) return undefined
  // level, flags, keep alive, then the CONNECT properties and the Client Identifier
  const props = readVarint(frame, afterName + 4)
  if (!props) return undefined
  const afterClientId = skipField(frame, props.next + props.value)
  if (afterClientId === undefined) return undefined
  return userPropertiesAt(frame, afterClientId)
}

/** A 5.0 PUBLISH with its properties, for `encodePublishV5`. */
export interface PublishV5 {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: 0 | 1 | 2
  readonly retain: boolean
  readonly dup: boolean
  readonly packetId: number
  readonly payloadFormatIndicator?: boolean | undefined
  readonly messageExpiryInterval?: number | undefined
  readonly contentType?: string | undefined
  readonly responseTopic?: string | undefined
  readonly correlationData?: Buffer | undefined
  readonly subscriptionIdentifiers?: readonly number[] | undefined
  readonly userProperties?: ReadonlyArray<readonly [string, string]> | undefined
}

function utf8Field(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8')
  const out = Buffer.allocUnsafe(2 + bytes.length)
  out.writeUInt16BE(bytes.length, 0)
  bytes.copy(out, 2)
  return out
}

function varintBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(varintSize(n))
  writeVarint(out, 0, n)
  return out
}

/**
 * Encode a 5.0 PUBLISH with properties. Written here rather than by
 * `mqtt-packet` so User Properties go out as pairs in their order
 * [MQTT-3.3.2-18] (its encoder takes them grouped by name).
 */
export function encodePublishV5(p: PublishV5): Buffer {
  const props: Buffer[] = []
  if (p.payloadFormatIndicator !== undefined)
    props.push(Buffer.from([0x01, p.payloadFormatIndicator ? 1 : 0]))
  if (p.messageExpiryInterval !== undefined) {
    const b = Buffer.allocUnsafe(5)
    b[0] = 0x02
    b.writeUInt32BE(p.messageExpiryInterval, 1)
    props.push(b)
  }
  if (p.contentType !== undefined) props.push(Buffer.from([0x03]), utf8Field(p.contentType))
  if (p.responseTopic !== undefined) props.push(Buffer.from([0x08]), utf8Field(p.responseTopic))
  if (p.correlationData !== undefined) {
    const len = Buffer.allocUnsafe(3)
    len[0] = 0x09
    len.writeUInt16BE(p.correlationData.length, 1)
    props.push(len, p.correlationData)
  }
  for (const id of p.subscriptionIdentifiers ?? []) props.push(Buffer.from([0x0b]), varintBytes(id))
  for (const [name, value] of p.userProperties ?? []) {
    props.push(Buffer.from([0x26]), utf8Field(name), utf8Field(value))
  }
  const properties = Buffer.concat(props)
  const head: Buffer[] = [utf8Field(p.topic)]
  if (p.qos > 0) {
    const id = Buffer.allocUnsafe(2)
    id.writeUInt16BE(p.packetId, 0)
    head.push(id)
  }
  head.push(varintBytes(properties.length), properties)
  const variable = Buffer.concat(head)
  const remaining = variable.length + p.payload.length
  const fixed = Buffer.allocUnsafe(1 + varintSize(remaining))
  fixed[0] = 0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0)
  writeVarint(fixed, 1, remaining)
  return Buffer.concat([fixed, variable, p.payload], fixed.length + remaining)
}
