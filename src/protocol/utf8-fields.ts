/**
 * Raw checks of the fields `mqtt-packet` decodes loosely. It turns every
 * string into text with `toString('utf8')`, so ill-formed UTF-8 silently
 * becomes U+FFFD; it does not bound property values by the packet; and it
 * hides repeated or out-of-range properties (see `properties.ts`). This
 * walker reads one complete packet's bytes, field by field, before or after
 * `mqtt-packet` parses it.
 *
 * Every MQTT UTF-8 Encoded String is checked: well-formed UTF-8 with no
 * surrogates [MQTT-1.5.4-1] and no U+0000 [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-1],
 * [MQTT-1.5.3-2]); both strings of a User Property [MQTT-1.5.7-1]. Lengths must
 * stay inside the packet and its property sections, and the fields must fill
 * the Remaining Length exactly where the packet has no free-form payload.
 */
import { isUtf8 } from 'node:buffer'
import { checkNumericValue, checkPlacement, checkRepeat } from './properties.js'
import { Ctx, PROPERTY_BY_ID, type PropertySpec } from './property-table.js'
import { ReasonCode } from './reason-codes.js'
import { type Violation, violation } from './violation.js'

/** A walk step: the position after the field, or why the packet is bad. */
type Step = number | Violation

const TYPE_CONNECT = 1
const TYPE_PUBLISH = 3
const TYPE_PUBACK = 4
const TYPE_PUBCOMP = 7
const TYPE_SUBSCRIBE = 8
const TYPE_UNSUBSCRIBE = 10
const TYPE_PINGREQ = 12
const TYPE_DISCONNECT = 14
const TYPE_AUTH = 15

/**
 * Check every string and length field of one complete packet a client sent
 * (fixed header included). Returns the first problem found, or `undefined`.
 *
 * `version` is the connection's protocol level; for CONNECT the packet's own
 * Protocol Level byte decides instead. Packet types a client may not send
 * (CONNACK, SUBACK ...) pass untouched: refusing them is the core's job.
 *
 * Cost on the hot path: a PUBLISH without properties is one `isUtf8` and one
 * byte search over the Topic Name.
 */
export function checkPacketStrings(raw: Buffer, version: 4 | 5): Violation | undefined {
  const start = fixedHeaderEnd(raw)
  if (typeof start !== 'number') return start
  const end = start + remainingLengthOf(raw)

  const step = walkPacket(raw, start, end, version)
  return typeof step === 'number' ? undefined : step
}

/**
 * The User Properties of a checked 5.0 PUBLISH, in the order received, names
 * repeated as sent [MQTT-3.3.2-18]. Call only on a packet that passed
 * {@link checkPacketStrings}.
 */
export function readPublishUserProperties(raw: Buffer): Array<[string, string]> {
  const start = fixedHeaderEnd(raw)
  if (typeof start !== 'number') return []

  let pos = start + 2 + raw.readUInt16BE(start)
  if (((raw[0]! >> 1) & 3) > 0) pos += 2
  return readUserPropertySection(raw, pos)
}

/**
 * The User Properties of the Will Properties of a checked 5.0 CONNECT, in
 * the order received [MQTT-3.1.3-10]; empty without a will. Call only on a
 * packet that passed {@link checkPacketStrings}.
 */
export function readWillUserProperties(raw: Buffer): Array<[string, string]> {
  const start = fixedHeaderEnd(raw)
  if (typeof start !== 'number') return []

  const level = start + 2 + raw.readUInt16BE(start)
  const flags = raw[level + 1]!
  if ((raw[level]! & 0x7f) !== 5 || (flags & 0x04) === 0) return []

  // Skip the CONNECT properties and the Client Identifier.
  const propertiesAt = level + 4
  const length = readVbi(raw, propertiesAt, raw.length)
  const clientIdAt = propertiesAt + vbiSize(length) + length
  return readUserPropertySection(raw, clientIdAt + 2 + raw.readUInt16BE(clientIdAt))
}

function walkPacket(raw: Buffer, pos: number, end: number, version: 4 | 5): Step {
  const type = raw[0]! >> 4
  switch (type) {
    case TYPE_PUBLISH:
      return walkPublish(raw, pos, end, version)
    case TYPE_CONNECT:
      return walkConnect(raw, pos, end)
    case TYPE_SUBSCRIBE:
      return walkSubscribe(raw, pos, end, version)
    case TYPE_UNSUBSCRIBE:
      return walkUnsubscribe(raw, pos, end, version)
    case TYPE_DISCONNECT:
      return walkReasonAndProperties(raw, pos, end, version, Ctx.DISCONNECT)
    case TYPE_AUTH:
      return version === 5 ? walkReasonAndProperties(raw, pos, end, 5, Ctx.AUTH) : pos
    case TYPE_PINGREQ:
      return expectEnd(pos, end, 'pingreq', 'MQTT-5.0 3.12')
    default:
      if (type >= TYPE_PUBACK && type <= TYPE_PUBCOMP) return walkAck(raw, pos, end, version)
      return pos
  }
}

// --- packets ---------------------------------------------------------------

function walkPublish(raw: Buffer, pos: number, end: number, version: 4 | 5): Step {
  let at: Step = checkString(raw, pos, end, 'topic name', version)
  if (typeof at !== 'number') return at

  // The Packet Identifier is present at QoS 1 and 2 (3.3.2.2).
  if (((raw[0]! >> 1) & 3) > 0) {
    at += 2
    if (at > end) return pastEnd('packet identifier')
  }
  if (version === 4) return at

  // Fast path: most PUBLISH packets carry no properties.
  if (at < end && raw[at] === 0) return at + 1
  return walkProperties(raw, at, end, Ctx.PUBLISH)
}

function walkConnect(raw: Buffer, pos: number, end: number): Step {
  // The packet's own Protocol Level, after the Protocol Name, decides its
  // layout and which edition's statement ids apply; 3 is MQTT 3.1.
  const nameEnd = pos + 2 <= end ? pos + 2 + raw.readUInt16BE(pos) : end
  const level = nameEnd < end ? raw[nameEnd]! & 0x7f : 4
  const version: 4 | 5 = level === 5 ? 5 : 4

  let at: Step = checkString(raw, pos, end, 'protocol name', version)
  if (typeof at !== 'number') return at
  if (at + 4 > end) return pastEnd('connect variable header')
  if (level < 3 || level > 5) return at // the core answers 0x84 [MQTT-3.1.2-2]

  const flags = raw[at + 1]!
  at += 4 // level, flags, Keep Alive

  if (version === 5) at = walkProperties(raw, at, end, Ctx.CONNECT)
  if (typeof at !== 'number') return at

  at = checkString(raw, at, end, 'client identifier', version)
  if (typeof at !== 'number') return at

  if ((flags & 0x04) !== 0) {
    at = walkWill(raw, at, end, version)
    if (typeof at !== 'number') return at
  }
  if ((flags & 0x80) !== 0) at = checkString(raw, at, end, 'user name', version)
  if (typeof at !== 'number') return at
  if ((flags & 0x40) !== 0) at = skipBinary(raw, at, end, 'password')
  if (typeof at !== 'number') return at

  // Bytes left over mean the Remaining Length disagrees with the fields.
  return at === end ? at : malformed('[MQTT-3.1.4-1]', 'connect longer than its fields')
}

function walkWill(raw: Buffer, pos: number, end: number, version: 4 | 5): Step {
  let at: Step = pos
  if (version === 5) at = walkProperties(raw, at, end, Ctx.WILL)
  if (typeof at !== 'number') return at

  at = checkString(raw, at, end, 'will topic', version)
  if (typeof at !== 'number') return at
  return skipBinary(raw, at, end, 'will payload')
}

function walkSubscribe(raw: Buffer, pos: number, end: number, version: 4 | 5): Step {
  let at: Step = afterPacketIdentifier(pos, end)
  if (typeof at !== 'number') return at
  if (version === 5) at = walkProperties(raw, at, end, Ctx.SUBSCRIBE)
  if (typeof at !== 'number') return at

  if (at === end) return noPayload('subscribe', version === 5 ? '[MQTT-3.8.3-2]' : '[MQTT-3.8.3-3]')
  while (at < end) {
    at = checkString(raw, at, end, 'topic filter', version)
    if (typeof at !== 'number') return at
    // Each Topic Filter is followed by its Subscription Options byte.
    if (at >= end) return pastEnd('subscription options')
    at += 1
  }
  return at
}

function walkUnsubscribe(raw: Buffer, pos: number, end: number, version: 4 | 5): Step {
  let at: Step = afterPacketIdentifier(pos, end)
  if (typeof at !== 'number') return at
  if (version === 5) at = walkProperties(raw, at, end, Ctx.UNSUBSCRIBE)
  if (typeof at !== 'number') return at

  if (at === end) return noPayload('unsubscribe', '[MQTT-3.10.3-2]')
  while (at < end) {
    at = checkString(raw, at, end, 'topic filter', version)
    if (typeof at !== 'number') return at
  }
  return at
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP. */
function walkAck(raw: Buffer, pos: number, end: number, version: 4 | 5): Step {
  // 3.1.1 acknowledgements are exactly a Packet Identifier (3.4.1).
  if (version === 4) {
    return end - pos === 2 ? end : malformed('MQTT-3.1.1 3.4.1', 'acknowledgement length is not 2')
  }
  const at = afterPacketIdentifier(pos, end)
  if (typeof at !== 'number') return at
  // Remaining Length 2: no Reason Code; 3: no Property Length (3.4.2.1).
  if (end - at <= 1) return end
  return walkPropertiesToEnd(raw, at + 1, end, Ctx.PUBACK, 'acknowledgement')
}

/** DISCONNECT and AUTH: an optional Reason Code, then optional properties. */
function walkReasonAndProperties(
  raw: Buffer,
  pos: number,
  end: number,
  version: 4 | 5,
  context: number,
): Step {
  const name = context === Ctx.AUTH ? 'auth' : 'disconnect'
  if (version === 4) return expectEnd(pos, end, name, 'MQTT-3.1.1 3.14')
  // Remaining Length 0: Reason Code 0; below 2: no properties (3.14.2.1, 3.15.2.1).
  if (end - pos <= 1) return end
  return walkPropertiesToEnd(raw, pos + 1, end, context, name)
}

function walkPropertiesToEnd(raw: Buffer, pos: number, end: number, ctx: number, name: string) {
  const at = walkProperties(raw, pos, end, ctx)
  if (typeof at !== 'number') return at
  return at === end ? at : malformed('MQTT-5.0 2.2.2', `${name} longer than its fields`)
}

// --- properties ------------------------------------------------------------

/**
 * Walk one property section: its length must stay inside the packet, each
 * value inside the section; strings are checked, identifiers must be valid
 * here, once-only properties must not repeat, numbers must be in range.
 */
function walkProperties(raw: Buffer, pos: number, end: number, context: number): Step {
  // No properties is a Property Length of 0, never an absent one [MQTT-2.2.2-1].
  if (pos >= end) return malformed('[MQTT-2.2.2-1]', 'property length missing')
  const length = readVbi(raw, pos, end)
  if (length < 0) return badVbi(length, 'property length')
  const start = pos + vbiSize(length)
  const sectionEnd = start + length
  if (sectionEnd > end) {
    return malformed('MQTT-5.0 2.2.2.1', 'property length past the packet end')
  }

  // Identifiers are below 64 in 5.0, so two 32-bit masks record the seen set.
  let seenLow = 0
  let seenHigh = 0
  let at = start
  while (at < sectionEnd) {
    const id = raw[at]!
    const spec = PROPERTY_BY_ID[id]
    if (spec === undefined) return malformed('MQTT-5.0 2.2.2.2', 'unknown property identifier')
    const placed = checkPlacement(spec, context)
    if (placed !== undefined) return placed

    const bit = 1 << (id & 31)
    const seen = id < 32 ? seenLow & bit : seenHigh & bit
    if (seen !== 0) {
      const repeated = checkRepeat(spec)
      if (repeated !== undefined) return repeated
    }
    if (id < 32) seenLow |= bit
    else seenHigh |= bit

    const next = walkPropertyValue(raw, at + 1, sectionEnd, spec)
    if (typeof next !== 'number') return next
    at = next
  }
  return sectionEnd
}

function walkPropertyValue(raw: Buffer, pos: number, end: number, spec: PropertySpec): Step {
  switch (spec.type) {
    case 'byte':
      if (pos + 1 > end) return pastEnd(spec.label)
      return numeric(spec, raw[pos]!, pos + 1)
    case 'u16':
      if (pos + 2 > end) return pastEnd(spec.label)
      return numeric(spec, raw.readUInt16BE(pos), pos + 2)
    case 'u32':
      if (pos + 4 > end) return pastEnd(spec.label)
      return numeric(spec, raw.readUInt32BE(pos), pos + 4)
    case 'vbi': {
      const value = readVbi(raw, pos, end)
      if (value < 0) return badVbi(value, spec.label)
      return numeric(spec, value, pos + vbiSize(value))
    }
    case 'string':
      return checkString(raw, pos, end, spec.label, 5)
    case 'binary':
      return skipBinary(raw, pos, end, spec.label)
    case 'pair': {
      const at = checkString(raw, pos, end, 'user property name', 5)
      if (typeof at !== 'number') return at
      return checkString(raw, at, end, 'user property value', 5)
    }
  }
}

function numeric(spec: PropertySpec, value: number, next: number): Step {
  return checkNumericValue(spec, value) ?? next
}

function readUserPropertySection(raw: Buffer, pos: number): Array<[string, string]> {
  const pairs: Array<[string, string]> = []
  const length = readVbi(raw, pos, raw.length)
  if (length <= 0) return pairs

  const sectionEnd = pos + vbiSize(length) + length
  let at = pos + vbiSize(length)
  while (at < sectionEnd) {
    const spec = PROPERTY_BY_ID[raw[at]!]
    if (spec === undefined) return pairs
    if (spec.type === 'pair') {
      const nameLength = raw.readUInt16BE(at + 1)
      const name = raw.toString('utf8', at + 3, at + 3 + nameLength)
      const valueAt = at + 3 + nameLength
      const valueEnd = valueAt + 2 + raw.readUInt16BE(valueAt)
      pairs.push([name, raw.toString('utf8', valueAt + 2, valueEnd)])
      at = valueEnd
      continue
    }
    at = skipValue(raw, at + 1, spec)
  }
  return pairs
}

/** Skip a checked value (no bounds checks: the packet already passed). */
function skipValue(raw: Buffer, pos: number, spec: PropertySpec): number {
  switch (spec.type) {
    case 'byte':
      return pos + 1
    case 'u16':
      return pos + 2
    case 'u32':
      return pos + 4
    case 'vbi':
      return pos + vbiSize(readVbi(raw, pos, raw.length))
    case 'pair': {
      const valueAt = pos + 2 + raw.readUInt16BE(pos)
      return valueAt + 2 + raw.readUInt16BE(valueAt)
    }
    default:
      return pos + 2 + raw.readUInt16BE(pos)
  }
}

// --- primitives ------------------------------------------------------------

/**
 * A UTF-8 Encoded String at `pos`: Two Byte length, then the bytes, which
 * must lie before `end`. `isUtf8` rejects overlong forms, surrogates
 * (ED A0..BF ..) and truncated sequences; U+0000 is searched for apart.
 */
function checkString(raw: Buffer, pos: number, end: number, field: string, version: 4 | 5): Step {
  if (pos + 2 > end) return pastEnd(`${field} length`)
  const stringEnd = pos + 2 + raw.readUInt16BE(pos)
  if (stringEnd > end) return pastEnd(field)
  if (stringEnd === pos + 2) return stringEnd

  // Short ASCII strings (most topics) are settled by one pass in JS, which
  // costs less than making a view for the native check.
  const from = pos + 2
  if (stringEnd - from <= ASCII_SCAN_MAX_BYTES && isPlainAscii(raw, from, stringEnd)) {
    return stringEnd
  }
  const bytes = raw.subarray(from, stringEnd)
  if (!isUtf8(bytes)) {
    const rule = version === 5 ? '[MQTT-1.5.4-1]' : '[MQTT-1.5.3-1]'
    return malformed(rule, `${field} is not well-formed utf-8`)
  }
  if (bytes.indexOf(0) !== -1) {
    const rule = version === 5 ? '[MQTT-1.5.4-2]' : '[MQTT-1.5.3-2]'
    return malformed(rule, `${field} contains u+0000`)
  }
  return stringEnd
}

/** Strings up to this length are first scanned in JS for plain ASCII. */
const ASCII_SCAN_MAX_BYTES = 256

/** Every byte in 0x01..0x7F: well-formed UTF-8 without U+0000. */
function isPlainAscii(raw: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const byte = raw[i]!
    if (byte === 0 || byte > 0x7f) return false
  }
  return true
}

function skipBinary(raw: Buffer, pos: number, end: number, field: string): Step {
  if (pos + 2 > end) return pastEnd(`${field} length`)
  const dataEnd = pos + 2 + raw.readUInt16BE(pos)
  return dataEnd > end ? pastEnd(field) : dataEnd
}

function afterPacketIdentifier(pos: number, end: number): Step {
  return pos + 2 > end ? pastEnd('packet identifier') : pos + 2
}

function expectEnd(pos: number, end: number, name: string, rule: string): Step {
  return pos === end ? pos : malformed(rule, `${name} longer than its fields`)
}

/** Where the variable header starts: after the type byte and Remaining Length. */
function fixedHeaderEnd(raw: Buffer): Step {
  if (raw.length < 2) return pastEnd('fixed header')
  const remaining = readVbi(raw, 1, raw.length)
  if (remaining < 0) return badVbi(remaining, 'remaining length')

  const start = 1 + vbiSize(remaining)
  if (start + remaining > raw.length) return pastEnd('remaining length')
  return start
}

function remainingLengthOf(raw: Buffer): number {
  return readVbi(raw, 1, raw.length)
}

const VBI_TRUNCATED = -1
const VBI_INVALID = -2

/**
 * A Variable Byte Integer at `pos`, bounded by `end`. Negative when
 * truncated or invalid: more than four bytes, or not the minimum number of
 * bytes [MQTT-1.5.5-1]. Being minimal, its size follows from its value.
 */
function readVbi(raw: Buffer, pos: number, end: number): number {
  let value = 0
  let multiplier = 1
  for (let i = 0; i < 4; i++) {
    if (pos + i >= end) return VBI_TRUNCATED
    const byte = raw[pos + i]!
    value += (byte & 0x7f) * multiplier
    if ((byte & 0x80) === 0) return i > 0 && byte === 0 ? VBI_INVALID : value
    multiplier *= 128
  }
  return VBI_INVALID
}

function vbiSize(value: number): number {
  if (value < 0x80) return 1
  if (value < 0x4000) return 2
  return value < 0x200000 ? 3 : 4
}

function badVbi(code: number, field: string): Violation {
  return code === VBI_TRUNCATED
    ? pastEnd(field)
    : malformed('[MQTT-1.5.5-1]', `${field} is not a valid variable byte integer`)
}

function pastEnd(field: string): Violation {
  return malformed('MQTT-5.0 1.5', `${field} past the packet end`)
}

function noPayload(name: string, rule: string): Violation {
  return violation(ReasonCode.ProtocolError, rule, `${name} without a topic filter`)
}

function malformed(rule: string, message: string): Violation {
  return violation(ReasonCode.MalformedPacket, rule, message)
}
