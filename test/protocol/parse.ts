/** Parse one raw packet with `mqtt-packet`, as the core does. */
import mqttPacket, { type Packet } from 'mqtt-packet'

/** The parsed packet, or the parser's error. `version` is the connection's. */
export function parseOne(raw: Buffer, version: 4 | 5): Packet | Error {
  const parser = mqttPacket.parser({ protocolVersion: version })
  let result: Packet | Error = new Error('no packet')
  parser.on('packet', (packet) => {
    result = packet
  })
  parser.on('error', (error: unknown) => {
    result = error instanceof Error ? error : new Error(String(error))
  })
  parser.parse(raw)
  return result
}

/** Parse and insist on success. */
export function mustParse(raw: Buffer, version: 4 | 5): Packet {
  const result = parseOne(raw, version)
  if (result instanceof Error) throw result
  return result
}
