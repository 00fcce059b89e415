/**
 * Routes a decoded packet to its handler, after the checks that depend only
 * on the connection's state: CONNECT first [MQTT-3.1.0-1] and once
 * [MQTT-3.1.0-2]; no packet a client must never send.
 */
import type { Packet } from '../../protocol/codec.js'
import { ReasonCode } from '../../protocol/reason-codes.js'
import type { Connection } from '../connection.js'
import { handleConnect } from './connect.js'
import { handleDisconnect } from './disconnect.js'
import { handlePingreq } from './pingreq.js'
import { handlePuback } from './puback.js'
import { handlePubcomp } from './pubcomp.js'
import { handlePublish } from './publish.js'
import { handlePubrec } from './pubrec.js'
import { handlePubrel } from './pubrel.js'
import { handleSubscribe } from './subscribe.js'
import { handleUnsubscribe } from './unsubscribe.js'

export function dispatchPacket(conn: Connection, packet: Packet): void {
  if (conn.state === 'new') {
    if (packet.cmd !== 'connect') {
      // [MQTT-3.1.0-1] the first packet must be CONNECT; close without a word
      conn.broker.auditViolation(conn, ReasonCode.ProtocolError, 'MQTT-3.1.0-1')
      conn.close({ cause: 'protocol', sendWill: false })
      return
    }
    void handleConnect(conn, packet)
    return
  }
  switch (packet.cmd) {
    case 'publish':
      handlePublish(conn, packet)
      return
    case 'puback':
      handlePuback(conn, packet)
      return
    case 'pubrec':
      handlePubrec(conn, packet)
      return
    case 'pubrel':
      handlePubrel(conn, packet)
      return
    case 'pubcomp':
      handlePubcomp(conn, packet)
      return
    case 'subscribe':
      handleSubscribe(conn, packet)
      return
    case 'unsubscribe':
      handleUnsubscribe(conn, packet)
      return
    case 'pingreq':
      handlePingreq(conn)
      return
    case 'disconnect':
      handleDisconnect(conn, packet)
      return
    case 'connect':
      // [MQTT-3.1.0-2] a second CONNECT is a Protocol Error
      conn.violation(ReasonCode.ProtocolError, 'MQTT-3.1.0-2', 'second connect')
      return
    case 'auth':
      // No enhanced authentication was negotiated, so AUTH is a Protocol Error [MQTT-4.12.0-1].
      conn.violation(ReasonCode.ProtocolError, 'MQTT-4.12.0-1', 'auth without method')
      return
    default:
      // CONNACK, SUBACK, UNSUBACK, PINGRESP travel only from server to client.
      conn.violation(ReasonCode.ProtocolError, 'MQTT-2.1.2', `client sent ${packet.cmd}`)
  }
}
