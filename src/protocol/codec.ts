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

/**
 * Decode the packets of the hot path without `mqtt-packet`: PUBLISH with no
 * properties, the two-byte acknowledgements and PINGREQ. Anything unusual
 * returns `undefined` and goes through `mqtt-packet`, which then reports
 * whatever is wrong with it.
 */
export function decodeFast(raw: Buffer, protocolVersion: 4 | 5): Packet | undefined {
  const first = raw[0] as number
  const type = first >> 4
  if (type === 3) return decodePublish(raw, first, protocolVersion)
  if (raw.length === 4 && raw[1] === 2) {
    const messageId = ((raw[2] as number) << 8) | (raw[3] as number)
    // Reserved flags as the spec fixes them [MQTT-2.2.2-1]: 0, 0, 2, 0.
    if (first === 0x40) return { cmd: 'puback', messageId }
    if (first === 0x50) return { cmd: 'pubrec', messageId }
    if (first === 0x62) return { cmd: 'pubrel', messageId }
    if (first === 0x70) return { cmd: 'pubcomp', messageId }
    return undefined
  }
  if (first === 0xc0 && raw.length === 2) return { cmd: 'pingreq' }
  return undefined
}

function decodePublish(raw: Buffer, first: number, protocolVersion: 4 | 5): Packet | undefined {
  const qos = (first >> 1) & 3
  if (qos === 3) return undefined
  let at = 1
  while ((raw[at] as number) & 0x80) at++
  at++
  if (at + 2 > raw.length) return undefined
  const topicLength = raw.readUInt16BE(at)
  at += 2
  const topicEnd = at + topicLength
  if (topicEnd > raw.length) return undefined
  const topic = raw.toString('utf8', at, topicEnd)
  at = topicEnd
  let messageId: number | undefined
  if (qos > 0) {
    if (at + 2 > raw.length) return undefined
    messageId = raw.readUInt16BE(at)
    at += 2
  }
  if (protocolVersion === 5) {
    // Only an empty property list takes the fast path.
    if (raw[at] !== 0 || at >= raw.length) return undefined
    at++
  }
  const packet: Packet = {
    cmd: 'publish',
    topic,
    payload: raw.subarray(at),
    qos: qos as 0 | 1 | 2,
    dup: (first & 0x08) !== 0,
    retain: (first & 0x01) !== 0,
  }
  if (messageId !== undefined) packet.messageId = messageId
  return packet
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
