/**
 * Inbound PUBLISH (MQTT 5.0 section 3.3): resolve the Topic Alias, check the
 * Topic Name and flow control, ask the gate, store and route, acknowledge.
 */
import { isUtf8 } from 'node:buffer'
import type { IPublishPacket } from 'mqtt-packet'
import { publishAllowedEvent } from '../../audit/build.js'
import { ReasonCode } from '../../protocol/reason-codes.js'
import { checkTopicName } from '../../protocol/topic.js'
import { readPublishUserProperties } from '../../protocol/utf8-fields.js'
import type { Connection } from '../connection.js'
import type { Message, MessageProperties, Qos } from '../types.js'

export function handlePublish(conn: Connection, packet: IPublishPacket): void {
  const broker = conn.broker
  const qos = packet.qos as Qos
  // [MQTT-3.3.1-2] DUP must be 0 for QoS 0
  if (qos === 0 && packet.dup) {
    conn.violation(ReasonCode.MalformedPacket, 'MQTT-3.3.1-2', 'dup on qos 0')
    return
  }

  // Step 1: the Topic Name, through the alias if any.
  const topic = resolveTopic(conn, packet)
  if (topic === undefined) return

  // Step 2: flow control [MQTT-3.3.4-9]; a client over our Receive Maximum.
  const packetId = packet.messageId ?? 0
  // [MQTT-2.2.1-3] a QoS 1 or 2 PUBLISH carries a non-zero Packet Identifier
  if (qos > 0 && packetId === 0) {
    conn.violation(ReasonCode.MalformedPacket, 'MQTT-2.2.1-3', 'packet identifier 0')
    return
  }
  const session = conn.session
  if (!session) return
  // A resent QoS 2 packet id still open: answer again, route nothing [MQTT-4.3.3-10].
  // Checked before Receive Maximum: a resend is not one more unacknowledged
  // PUBLISH [MQTT-3.3.4-7].
  if (qos === 2 && session.inboundQos2.has(packetId)) {
    sendPubrec(conn, packetId, ReasonCode.Success)
    return
  }
  // 3.1.1 has no Receive Maximum; its publishers are not held to ours.
  if (qos > 0 && conn.version === 5 && conn.inboundUnacked >= broker.limits.receiveMaximum) {
    conn.violation(ReasonCode.ReceiveMaximumExceeded, 'MQTT-3.3.4-9', 'receive maximum')
    return
  }

  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
  // The clock is read once per message: expiry, the gate and every delivery share it.
  const now = broker.clock.now()
  let message = buildMessage(conn, packet, topic, payload, now)

  // Step 3: what the broker itself refuses.
  const refusal = checkMessage(conn, message)
  if (refusal !== undefined) {
    refuse(conn, message, packetId, refusal.code, refusal.rule)
    return
  }

  // Step 4: the gate (policy, PHI guards, lifetimes).
  const verdict = broker.gate.authorizePublish(conn.clientInfo!, message, now)
  if (!verdict.allow) {
    refuse(conn, message, packetId, verdict.reasonCode, verdict.rule)
    return
  }
  message = verdict.message
  // Nothing moves that the audit trail cannot record (C25).
  if (!broker.acceptingWork()) {
    refuse(conn, message, packetId, ReasonCode.UnspecifiedError, 'phimq.audit-unavailable')
    return
  }
  if (message.retain && !broker.canRetain(message)) {
    refuse(conn, message, packetId, ReasonCode.QuotaExceeded, 'phimq.retained-quota')
    return
  }
  if (broker.auditTraffic) broker.emit(publishAllowedEvent(conn.clientInfo!, message))

  // Step 5: retained, route, acknowledge once stored.
  const matched = broker.publish(message, conn.actor, now)
  if (qos === 0) return
  conn.inboundUnacked++
  if (qos === 1) {
    const code = matched === 0 && conn.version === 5 ? ReasonCode.NoMatchingSubscribers : 0
    if (conn.canAcknowledgeNow) {
      // The common case (nothing to wait for) takes no closure per message.
      conn.inboundUnacked--
      sendPuback(conn, packetId, code)
      return
    }
    conn.acknowledge(() => {
      conn.inboundUnacked = Math.max(0, conn.inboundUnacked - 1)
      sendPuback(conn, packetId, code)
    })
    return
  }
  session.inboundQos2.add(packetId)
  if (session.stored) broker.store.addInboundQos2(session.clientId, packetId)
  const code = matched === 0 && conn.version === 5 ? ReasonCode.NoMatchingSubscribers : 0
  conn.acknowledge(() => sendPubrec(conn, packetId, code))
}

function resolveTopic(conn: Connection, packet: IPublishPacket): string | undefined {
  const broker = conn.broker
  let topic = packet.topic
  const alias = packet.properties?.topicAlias
  if (alias !== undefined) {
    // [MQTT-3.3.2-8, MQTT-3.3.2-9] alias in 1..Topic Alias Maximum
    if (alias === 0 || alias > broker.limits.topicAliasMaximum) {
      conn.violation(ReasonCode.TopicAliasInvalid, 'MQTT-3.3.2-9', 'topic alias out of range')
      return undefined
    }
    if (topic.length > 0) {
      conn.topicAliases.set(alias, topic)
    } else {
      const known = conn.topicAliases.get(alias)
      if (known === undefined) {
        conn.violation(ReasonCode.ProtocolError, 'MQTT-3.3.4-7', 'unknown topic alias')
        return undefined
      }
      topic = known
    }
  }
  const responseTopic = packet.properties?.responseTopic
  if (responseTopic !== undefined && checkTopicName(responseTopic, broker.limits) !== undefined) {
    // [MQTT-3.3.2-13, MQTT-3.3.2-14] the Response Topic is a Topic Name: no wildcards
    conn.violation(ReasonCode.ProtocolError, 'MQTT-3.3.2-14', 'response topic not a topic name')
    return undefined
  }
  const problem = checkTopicName(topic, broker.limits)
  conn.topicProblem = problem
  if (problem === undefined) return topic
  if (problem === 'empty') {
    // [MQTT-3.3.2-1] a zero-length Topic Name needs an alias
    conn.violation(ReasonCode.ProtocolError, 'MQTT-3.3.2-1', 'empty topic without alias')
  } else if (problem === 'wildcard-in-name' || problem === 'null-character') {
    conn.violation(ReasonCode.TopicNameInvalid, 'MQTT-3.3.2-2', problem)
  } else {
    // Over our own limits: refused, the connection stays.
    return topic
  }
  return undefined
}

interface Refusal {
  readonly code: number
  readonly rule: string
}

/** The message as the broker holds it; one object shape, no properties deleted later. */
function buildMessage(
  conn: Connection,
  packet: IPublishPacket,
  topic: string,
  payload: Buffer,
  now: number,
): Message {
  const props = packet.properties
  if (!props) {
    return { topic, payload, qos: packet.qos, retain: packet.retain, origin: conn.clientId }
  }
  const message: Message = {
    topic,
    payload,
    qos: packet.qos,
    retain: packet.retain,
    origin: conn.clientId,
  }
  if (props.messageExpiryInterval !== undefined) {
    message.expiresAt = now + props.messageExpiryInterval * 1000
  }
  const properties = messageProperties(props, conn.currentRaw)
  if (properties) message.properties = properties
  return message
}

function checkMessage(conn: Connection, message: Message): Refusal | undefined {
  const problem = conn.topicProblem
  if (problem !== undefined) {
    return { code: ReasonCode.TopicNameInvalid, rule: `phimq.topic-${problem}` }
  }
  // '$' topics belong to the broker [MQTT-4.7.2-1 note]; clients do not publish there.
  if (message.topic.startsWith('$'))
    return { code: ReasonCode.NotAuthorized, rule: 'phimq.dollar-topic' }
  // [MQTT-3.3.2-4 note] Payload Format Indicator 1 promises UTF-8
  if (message.properties?.payloadFormatIndicator && !isUtf8(message.payload)) {
    return { code: ReasonCode.PayloadFormatInvalid, rule: 'MQTT-3.3.2-4' }
  }
  return undefined
}

function refuse(
  conn: Connection,
  message: Message,
  packetId: number,
  code: number,
  rule: string,
): void {
  conn.broker.emit({
    type: 'publish.denied',
    actor: conn.actor,
    topic: conn.broker.maskTopic(message.topic),
    qos: message.qos,
    retain: message.retain,
    reasonCode: code,
    rule,
  })
  // 3.1.1 has no negative acknowledgement: the message is acknowledged and
  // dropped, and the audit event above records the refusal.
  const wire = conn.version === 5 ? code : ReasonCode.Success
  if (message.qos === 1) conn.acknowledge(() => sendPuback(conn, packetId, wire))
  else if (message.qos === 2) conn.acknowledge(() => sendPubrec(conn, packetId, wire))
}

function sendPuback(conn: Connection, id: number, code: number): void {
  if (code === 0 || conn.version === 4) conn.writeRaw(Buffer.from([0x40, 0x02, id >> 8, id & 0xff]))
  else conn.send({ cmd: 'puback', messageId: id, reasonCode: code })
}

function sendPubrec(conn: Connection, id: number, code: number): void {
  if (code === 0 || conn.version === 4) conn.writeRaw(Buffer.from([0x50, 0x02, id >> 8, id & 0xff]))
  else conn.send({ cmd: 'pubrec', messageId: id, reasonCode: code })
}

function messageProperties(
  props: NonNullable<IPublishPacket['properties']>,
  raw: Buffer | undefined,
): MessageProperties | undefined {
  const out: MessageProperties = {}
  let any = false
  if (props.payloadFormatIndicator !== undefined) {
    out.payloadFormatIndicator = props.payloadFormatIndicator
    any = true
  }
  if (props.contentType !== undefined) {
    out.contentType = props.contentType
    any = true
  }
  if (props.responseTopic !== undefined) {
    out.responseTopic = props.responseTopic
    any = true
  }
  if (props.correlationData !== undefined) {
    out.correlationData = props.correlationData
    any = true
  }
  if (props.userProperties !== undefined) {
    // From the raw bytes: mqtt-packet groups them by name [MQTT-3.3.2-18].
    out.userProperties = raw ? readPublishUserProperties(raw) : []
    any = true
  }
  return any ? out : undefined
}
