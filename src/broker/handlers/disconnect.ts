/**
 * DISCONNECT from the client (MQTT 5.0 section 3.14). 0x00 discards the
 * will [MQTT-3.14.4-3]; 0x04 and every other code keep it [MQTT-3.1.2-8].
 * A Session Expiry Interval may change here, but not from 0 [MQTT-3.14.2-2].
 */
import type { IDisconnectPacket } from 'mqtt-packet'
import { ReasonCode } from '../../protocol/reason-codes.js'
import type { Connection } from '../connection.js'

export function handleDisconnect(conn: Connection, packet: IDisconnectPacket): void {
  const session = conn.session
  const code = packet.reasonCode ?? 0
  const expiry = packet.properties?.sessionExpiryInterval
  if (expiry !== undefined && session) {
    if (conn.connectSessionExpiry === 0 && expiry > 0) {
      conn.violation(ReasonCode.ProtocolError, 'MQTT-3.14.2-2', 'session expiry raised from 0')
      return
    }
    session.sessionExpirySeconds = Math.min(expiry, conn.broker.limits.sessionExpiryMaxSeconds)
  }
  conn.close({
    cause: 'client',
    reasonCode: code,
    // Only 0x00 discards the will [MQTT-3.14.4-3]; 0x04 and error codes keep it.
    sendWill: code !== ReasonCode.Success,
  })
}
