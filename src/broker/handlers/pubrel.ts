/**
 * PUBREL from a publisher: release the QoS 2 packet id and answer PUBCOMP
 * [MQTT-4.3.3-11]; in 5.0 an unknown id gets 0x92.
 */
import type { IPubrelPacket } from 'mqtt-packet'
import { ReasonCode } from '../../protocol/reason-codes.js'
import type { Connection } from '../connection.js'

export function handlePubrel(conn: Connection, packet: IPubrelPacket): void {
  const id = packet.messageId
  const session = conn.session
  if (id === undefined || !session) return
  const known = session.inboundQos2.delete(id)
  if (known) {
    conn.inboundUnacked = Math.max(0, conn.inboundUnacked - 1)
    if (session.stored) conn.broker.store.deleteInboundQos2(session.clientId, id)
  }
  const reply = (): void => {
    if (conn.version === 5 && !known) {
      conn.send({ cmd: 'pubcomp', messageId: id, reasonCode: ReasonCode.PacketIdentifierNotFound })
    } else {
      conn.writeRaw(Buffer.from([0x70, 0x02, id >> 8, id & 0xff]))
    }
  }
  conn.acknowledge(reply)
}
