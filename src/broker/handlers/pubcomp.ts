/** PUBCOMP from a subscriber: the QoS 2 flow of that packet id is over. */
import type { IPubcompPacket } from 'mqtt-packet'
import type { Connection } from '../connection.js'

export function handlePubcomp(conn: Connection, packet: IPubcompPacket): void {
  const id = packet.messageId
  if (id === undefined) return
  conn.session?.completed(id)
}
