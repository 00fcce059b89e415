/** PINGREQ: answer PINGRESP [MQTT-3.12.4-1]. */
import type { Connection } from '../connection.js'

const PINGRESP = Buffer.from([0xd0, 0x00])

export function handlePingreq(conn: Connection): void {
  conn.writeRaw(PINGRESP)
}
