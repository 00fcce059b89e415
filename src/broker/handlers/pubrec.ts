/**
 * PUBREC from a subscriber (QoS 2, step 1 of 2 on our side). Success: send
 * PUBREL [MQTT-4.3.3-4]. A failure code ends the flow [MQTT-4.3.3-4 note].
 */
import type { IPubrecPacket } from 'mqtt-packet'
import { ReasonCode } from '../../protocol/reason-codes.js'
import type { Connection } from '../connection.js'

export function handlePubrec(conn: Connection, packet: IPubrecPacket): void {
  const id = packet.messageId
  const session = conn.session
  if (id === undefined || !session) return
  if ((packet.reasonCode ?? 0) >= 0x80) {
    session.acknowledge(id, 2)
    return
  }
  if (session.received(id)) {
    // PUBREL only once 'released' is committed: after a crash the broker
    // must not resend the PUBLISH of a flow it has already moved on [MQTT-4.3.3-4].
    conn.acknowledge(() => conn.sendPubrel(id))
    return
  }
  // Unknown id: still answer, so the client can finish [MQTT-4.3.3-4]; 5.0 says why.
  if (conn.version === 5) {
    conn.send({ cmd: 'pubrel', messageId: id, reasonCode: ReasonCode.PacketIdentifierNotFound })
  } else {
    conn.sendPubrel(id)
  }
}
