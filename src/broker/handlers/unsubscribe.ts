/**
 * UNSUBSCRIBE (MQTT 5.0 section 3.10): remove each subscription that exists,
 * answer UNSUBACK with one code per filter in 5.0 [MQTT-3.11.3-1].
 */
import type { IUnsubscribePacket } from 'mqtt-packet'
import { ReasonCode } from '../../protocol/reason-codes.js'
import { checkTopicFilter, isTopicProblem, parseSubscriptionFilter } from '../../protocol/topic.js'
import type { Connection } from '../connection.js'

export function handleUnsubscribe(conn: Connection, packet: IUnsubscribePacket): void {
  const session = conn.session
  if (!session) return
  // [MQTT-2.2.1-3] UNSUBSCRIBE carries a non-zero Packet Identifier
  if (!packet.messageId) {
    conn.violation(ReasonCode.MalformedPacket, 'MQTT-2.2.1-3', 'packet identifier 0')
    return
  }
  const broker = conn.broker
  const codes: number[] = []
  for (const raw of packet.unsubscriptions) {
    const parsed = parseSubscriptionFilter(raw)
    const problem = isTopicProblem(parsed) ? parsed : checkTopicFilter(parsed.filter, broker.limits)
    if (problem === 'misplaced-wildcard' || problem === 'null-character' || problem === 'empty') {
      conn.violation(ReasonCode.MalformedPacket, 'MQTT-4.7.1-1', `topic filter ${problem}`)
      return
    }
    const held = session.subscriptions.get(raw)
    if (!held) {
      codes.push(ReasonCode.NoSubscriptionExisted)
      continue
    }
    session.subscriptions.delete(raw)
    broker.tree.remove(held.filter, session.clientId, held.shareGroup)
    if (session.stored) broker.store.deleteSubscription(session.clientId, raw)
    broker.emit({ type: 'unsubscribe', actor: conn.actor, filter: raw })
    codes.push(ReasonCode.Success)
  }
  const messageId = packet.messageId ?? 0
  // [MQTT-3.10.4-4] UNSUBACK even when nothing was removed
  if (conn.version === 5) conn.send({ cmd: 'unsuback', messageId, granted: codes })
  else conn.send({ cmd: 'unsuback', messageId, granted: [] })
}
