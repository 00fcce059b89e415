/** PUBACK from a subscriber: the QoS 1 flow of that packet id is over. */
import type { IPubackPacket } from 'mqtt-packet'
import type { Connection } from '../connection.js'

export function handlePuback(conn: Connection, packet: IPubackPacket): void {
  const id = packet.messageId
  if (id === undefined) return
  // An unknown id is ignored: it may be a late duplicate after a resend.
  conn.session?.acknowledge(id, 1)
}
