/**
 * Build MQTT packets byte by byte, so tests can send what no well-behaved
 * encoder would: ill-formed strings, wrong lengths, repeated properties.
 */

/** One piece of a packet: a byte, bytes, or text written as UTF-8 without a prefix. */
export type Part = number | readonly number[] | Buffer | string

/** Concatenate parts into one buffer. */
export function bytes(...parts: Part[]): Buffer {
  return Buffer.concat(
    parts.map((part) => {
      if (typeof part === 'number') return Buffer.from([part])
      if (typeof part === 'string') return Buffer.from(part, 'utf8')
      return Buffer.from(part)
    }),
  )
}

/** A Two Byte Integer. */
export function u16(value: number): Buffer {
  const out = Buffer.alloc(2)
  out.writeUInt16BE(value)
  return out
}

/** A Four Byte Integer. */
export function u32(value: number): Buffer {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(value)
  return out
}

/** A Variable Byte Integer, minimally encoded. */
export function vbi(value: number): Buffer {
  const out: number[] = []
  let rest = value
  do {
    let byte = rest % 128
    rest = Math.floor(rest / 128)
    if (rest > 0) byte |= 0x80
    out.push(byte)
  } while (rest > 0)
  return Buffer.from(out)
}

/** A UTF-8 Encoded String (or Binary Data): a Two Byte length, then the bytes. */
export function str(...content: Part[]): Buffer {
  const body = bytes(...content)
  return bytes(u16(body.length), body)
}

/** A property section: Property Length, then the properties. */
export function props(...properties: Part[]): Buffer {
  const body = bytes(...properties)
  return bytes(vbi(body.length), body)
}

/** A User Property (0x26) with the given name and value bytes. */
export function userProp(name: Part, value: Part): Buffer {
  return bytes(0x26, str(name), str(value))
}

/** A packet: the first byte, the Remaining Length of the body, the body. */
export function packet(first: number, ...body: Part[]): Buffer {
  const rest = bytes(...body)
  return bytes(first, vbi(rest.length), rest)
}

/** A packet whose Remaining Length is `declared`, whatever the body's size. */
export function packetDeclaring(first: number, declared: number, ...body: Part[]): Buffer {
  return bytes(first, vbi(declared), ...body)
}

/** Fields of a CONNECT; raw parts so tests can put bad bytes anywhere. */
export interface ConnectFields {
  version: 4 | 5
  clientId?: Part
  properties?: Part
  will?: { properties?: Part; topic: Part; payload?: Part }
  username?: Part
  password?: Part
  /** Extra bytes after the last field. */
  trailing?: Part
}

/** A CONNECT with the fields given, Clean Start set, Keep Alive 60. */
export function connect(fields: ConnectFields): Buffer {
  let flags = 0x02
  if (fields.will !== undefined) flags |= 0x04
  if (fields.username !== undefined) flags |= 0x80
  if (fields.password !== undefined) flags |= 0x40

  const parts: Part[] = [str('MQTT'), fields.version, flags, u16(60)]
  if (fields.version === 5) parts.push(fields.properties ?? props())
  parts.push(str(fields.clientId ?? 'c1'))
  if (fields.will !== undefined) {
    if (fields.version === 5) parts.push(fields.will.properties ?? props())
    parts.push(str(fields.will.topic), str(fields.will.payload ?? ''))
  }
  if (fields.username !== undefined) parts.push(str(fields.username))
  if (fields.password !== undefined) parts.push(str(fields.password))
  if (fields.trailing !== undefined) parts.push(fields.trailing)
  return packet(0x10, ...parts)
}

/** A PUBLISH; `properties` only for 5.0. */
export function publish(fields: {
  version: 4 | 5
  topic: Part
  qos?: 0 | 1 | 2
  properties?: Part
  payload?: Part
}): Buffer {
  const qos = fields.qos ?? 0
  const parts: Part[] = [str(fields.topic)]
  if (qos > 0) parts.push(u16(1))
  if (fields.version === 5) parts.push(fields.properties ?? props())
  parts.push(fields.payload ?? 'x')
  return packet(0x30 | (qos << 1), ...parts)
}

/** A SUBSCRIBE of the given filters at QoS 0; `properties` only for 5.0. */
export function subscribe(version: 4 | 5, filters: Part[], properties?: Part): Buffer {
  const parts: Part[] = [u16(1)]
  if (version === 5) parts.push(properties ?? props())
  for (const filter of filters) parts.push(str(filter), 0)
  return packet(0x82, ...parts)
}

/** An UNSUBSCRIBE of the given filters; `properties` only for 5.0. */
export function unsubscribe(version: 4 | 5, filters: Part[], properties?: Part): Buffer {
  const parts: Part[] = [u16(1)]
  if (version === 5) parts.push(properties ?? props())
  for (const filter of filters) parts.push(str(filter))
  return packet(0xa2, ...parts)
}
