/**
 * SUBSCRIBE (MQTT 5.0 section 3.8): check each Topic Filter, ask the gate,
 * record the subscription, answer SUBACK, then send retained messages as
 * Retain Handling says.
 */
import type { ISubscribePacket, ISubscription } from 'mqtt-packet'
import { ReasonCode, SUBACK_FAILURE_V4 } from '../../protocol/reason-codes.js'
import {
  checkTopicFilter,
  isTopicProblem,
  type ParsedFilter,
  parseSubscriptionFilter,
} from '../../protocol/topic.js'
import type { SubscriptionRecord } from '../../store/store.js'
import type { Connection } from '../connection.js'
import type { Session } from '../session.js'
import type { Qos } from '../types.js'

interface Granted {
  readonly record: SubscriptionRecord
  readonly parsed: ParsedFilter
  readonly sendRetained: boolean
}

export function handleSubscribe(conn: Connection, packet: ISubscribePacket): void {
  const session = conn.session
  if (!session) return
  // [MQTT-2.2.1-3] SUBSCRIBE carries a non-zero Packet Identifier
  if (!packet.messageId) {
    conn.violation(ReasonCode.MalformedPacket, 'MQTT-2.2.1-3', 'packet identifier 0')
    return
  }
  // More filters in one packet than a client may hold can never be granted:
  // one refusal for the packet, not one audit record per filter.
  if (packet.subscriptions.length > conn.broker.limits.maxSubscriptionsPerClient) {
    conn.violation(ReasonCode.QuotaExceeded, 'phimq.subscribe-filters', 'too many filters')
    return
  }
  const subId = packet.properties?.subscriptionIdentifier
  const codes: number[] = []
  const granted: Granted[] = []
  for (const sub of packet.subscriptions) {
    const result = subscribeOne(conn, session, sub, subId)
    if (result === undefined) return // the connection was closed
    if (typeof result === 'number') {
      codes.push(conn.version === 5 ? result : SUBACK_FAILURE_V4)
    } else {
      codes.push(result.record.qos)
      granted.push(result)
    }
  }
  // [MQTT-3.8.4-1] SUBACK with the same Packet Identifier, one code per filter
  conn.send({ cmd: 'suback', messageId: packet.messageId ?? 0, granted: codes })
  for (const g of granted) if (g.sendRetained) sendRetained(conn, session, g)
}

/** One filter: the granted subscription, a failure code, or undefined once closed. */
function subscribeOne(
  conn: Connection,
  session: Session,
  sub: ISubscription,
  subId: number | undefined,
): Granted | number | undefined {
  const broker = conn.broker
  const raw = sub.topic
  const parsed = parseSubscriptionFilter(raw)
  if (isTopicProblem(parsed)) {
    // [MQTT-4.8.2-1, MQTT-4.8.2-2] an ill-formed share name
    return deny(conn, raw, ReasonCode.TopicFilterInvalid, `MQTT-4.8.2-2:${parsed}`)
  }
  const problem = checkTopicFilter(parsed.filter, broker.limits)
  if (problem === 'misplaced-wildcard' || problem === 'null-character' || problem === 'empty') {
    // [MQTT-4.7.1-1, MQTT-4.7.1-2, MQTT-4.7.3-1] a malformed Topic Filter
    conn.violation(ReasonCode.MalformedPacket, 'MQTT-4.7.1-1', `topic filter ${problem}`)
    return undefined
  }
  if (problem !== undefined)
    return deny(conn, raw, ReasonCode.TopicFilterInvalid, `phimq.filter-${problem}`)
  const noLocal = sub.nl ?? false
  if (parsed.shareGroup !== undefined && noLocal) {
    // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error
    conn.violation(ReasonCode.ProtocolError, 'MQTT-3.8.3-4', 'no local on shared subscription')
    return undefined
  }
  const existed = session.subscriptions.has(raw)
  if (!existed && session.subscriptions.size >= broker.limits.maxSubscriptionsPerClient) {
    return deny(conn, raw, ReasonCode.QuotaExceeded, 'phimq.max-subscriptions')
  }
  const verdict = broker.gate.authorizeSubscribe(conn.clientInfo!, {
    filter: parsed.filter,
    shareGroup: parsed.shareGroup,
    qos: sub.qos,
  })
  if (!verdict.allow) return deny(conn, raw, verdict.reasonCode, verdict.rule)

  const qos = Math.min(sub.qos, verdict.maxQos) as Qos
  const record: SubscriptionRecord = {
    filter: raw,
    qos,
    noLocal,
    retainAsPublished: sub.rap ?? false,
    retainHandling: (sub.rh ?? 0) as 0 | 1 | 2,
    subscriptionIdentifier: subId,
  }
  // [MQTT-3.8.4-3] a subscription to the same filter is replaced
  session.subscriptions.set(raw, {
    record,
    filter: parsed.filter,
    shareGroup: parsed.shareGroup,
    grantedQos: qos,
  })
  broker.tree.add(parsed.filter, {
    clientId: session.clientId,
    record,
    qos,
    shareGroup: parsed.shareGroup,
  })
  if (session.stored) broker.store.saveSubscription(session.clientId, record)
  broker.emit({ type: 'subscribe.allowed', actor: conn.actor, filter: raw, qos })

  // [MQTT-3.3.1-9, MQTT-3.3.1-10, MQTT-3.3.1-11] Retain Handling; never for shared [MQTT-4.8.2 note]
  const rh = record.retainHandling
  const sendRetainedNow = parsed.shareGroup === undefined && (rh === 0 || (rh === 1 && !existed))
  return { record, parsed, sendRetained: sendRetainedNow }
}

function deny(conn: Connection, filter: string, code: number, rule: string): number {
  const masked = conn.broker.maskTopic(filter)
  conn.broker.emit({
    type: 'subscribe.denied',
    actor: conn.actor,
    filter: masked,
    reasonCode: code,
    rule,
  })
  return code
}

/** Retained messages go out with RETAIN 1 [MQTT-3.3.1-8]. */
function sendRetained(conn: Connection, session: Session, granted: Granted): void {
  const now = conn.broker.clock.now()
  const id = granted.record.subscriptionIdentifier
  for (const message of conn.broker.retained.match(granted.parsed.filter)) {
    if (message.expiresAt !== undefined && message.expiresAt <= now) {
      conn.broker.retained.set(message.topic, undefined)
      conn.broker.store.setRetained(message.topic, undefined)
      continue
    }
    const qos = Math.min(message.qos, granted.record.qos) as Qos
    session.offer(message, qos, true, id === undefined ? undefined : [id])
  }
}
