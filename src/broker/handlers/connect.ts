/**
 * CONNECT (MQTT 5.0 section 3.1), as an ordered list of named steps:
 * check the packet -> settle the Client Identifier -> bind it to the
 * identity -> build the will -> ask the gate -> attach the session ->
 * CONNACK -> resume delivery -> audit.
 */
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet'
import { ReasonCode, toConnackReturnCodeV4 } from '../../protocol/reason-codes.js'
import { checkTopicName } from '../../protocol/topic.js'
import { readWillUserProperties } from '../../protocol/utf8-fields.js'
import type { Connection } from '../connection.js'
import { CLIENT_ID_MAX_BYTES } from '../limits.js'
import { SESSION_EXPIRY_NEVER_SECONDS } from '../session.js'
import type { ClientInfo, Identity, Message, Qos } from '../types.js'

/** A refusal decided before the session is touched. */
class Refused {
  constructor(
    readonly reasonCode: number,
    readonly rule: string,
  ) {}
}

export async function handleConnect(conn: Connection, packet: IConnectPacket): Promise<void> {
  conn.state = 'connecting'
  conn.holdPackets()
  const version = packet.protocolVersion
  // [MQTT-3.1.2-2] only 3.1.1 (4) and 5.0 (5)
  if (version !== 4 && version !== 5) {
    conn.writeRaw(Buffer.from([0x20, 0x02, 0x00, 0x01]))
    conn.broker.auditRefusal(conn, ReasonCode.UnsupportedProtocolVersion, 'MQTT-3.1.2-2')
    conn.close({ cause: 'protocol', sendWill: false })
    return
  }
  conn.setVersion(version)

  const malformed = checkPacket(conn, packet)
  if (malformed) {
    conn.broker.auditViolation(conn, malformed.reasonCode, malformed.rule)
    // 3.1.1: a CONNECT that does not conform is closed without CONNACK [MQTT-3.1.4-1].
    if (conn.version === 4) conn.close({ cause: 'protocol', sendWill: false })
    else refuse(conn, malformed)
    return
  }

  const clientId = settleClientId(conn, packet)
  if (clientId instanceof Refused) {
    // The audit event names the id that was attempted (C10).
    conn.clientId = packet.clientId
    refuse(conn, clientId)
    return
  }
  conn.clientId = clientId.id
  // Built now: the raw bytes (for the will's User Properties) last only this turn.
  const will = buildWill(conn, packet)
  await conn.broker.serializeConnect(clientId.id, () => decide(conn, packet, clientId, will))
}

/** Step 1: what the codec leaves to us. */
function checkPacket(conn: Connection, packet: IConnectPacket): Refused | undefined {
  // [MQTT-3.1.2-22] 3.1.1: no password without a user name
  if (conn.version === 4 && packet.password !== undefined && packet.username === undefined) {
    return new Refused(ReasonCode.MalformedPacket, 'MQTT-3.1.2-22')
  }
  const will = packet.will
  if (will) {
    // [MQTT-3.1.2-12] will QoS 3 is malformed
    if ((will.qos ?? 0) > 2) return new Refused(ReasonCode.MalformedPacket, 'MQTT-3.1.2-12')
    const problem = checkTopicName(will.topic, conn.broker.limits)
    if (problem) return new Refused(ReasonCode.TopicNameInvalid, `MQTT-3.1.3-11:${problem}`)
    // MQTT-5.0 3.1.3.2.5: the Will Response Topic is a Topic Name
    const responseTopic = will.properties?.responseTopic
    if (responseTopic !== undefined && checkTopicName(responseTopic, conn.broker.limits)) {
      return new Refused(ReasonCode.ProtocolError, 'MQTT-3.1.3.2.5:response-topic')
    }
  }
  const props = packet.properties
  if (props?.authenticationMethod !== undefined) {
    // Enhanced authentication is not offered; identity comes from the certificate.
    return new Refused(ReasonCode.BadAuthenticationMethod, 'MQTT-4.12.0-1')
  }
  return undefined
}

/** Step 2 and 3: the Client Identifier, assigned if empty, bound to the identity. */
function settleClientId(
  conn: Connection,
  packet: IConnectPacket,
): { id: string; assigned: boolean } | Refused {
  const identity = conn.context.identity
  const binding = conn.context.clientIdBinding ?? (identity ? 'equal' : 'free')
  let id = packet.clientId
  let assigned = false
  if (id.length === 0) {
    // [MQTT-3.1.3-8] 3.1.1: an empty id needs Clean Session 1
    if (conn.version === 4 && !packet.clean) {
      return new Refused(ReasonCode.ClientIdentifierNotValid, 'MQTT-3.1.3-8')
    }
    // [MQTT-3.1.3-6] assign one; with an identity, the identity's own id
    id = identity && binding !== 'free' ? identity.id : conn.broker.assignClientId()
    assigned = true
  }
  if (Buffer.byteLength(id) > CLIENT_ID_MAX_BYTES) {
    return new Refused(ReasonCode.ClientIdentifierNotValid, 'phimq.client-id-length')
  }
  if (identity && binding === 'equal' && id !== identity.id) {
    return new Refused(ReasonCode.NotAuthorized, 'C10.client-id-binding')
  }
  if (identity && binding === 'prefix' && !id.startsWith(identity.id)) {
    return new Refused(ReasonCode.NotAuthorized, 'C10.client-id-binding')
  }
  // A user name, when sent, names the same identity as the certificate (C10).
  if (
    identity &&
    binding !== 'free' &&
    packet.username !== undefined &&
    packet.username !== identity.id
  ) {
    return new Refused(ReasonCode.NotAuthorized, 'C10.username-binding')
  }
  return { id, assigned }
}

/** Steps 4 to 9, one Client Identifier at a time. */
async function decide(
  conn: Connection,
  packet: IConnectPacket,
  clientId: { id: string; assigned: boolean },
  will: Message | undefined,
): Promise<void> {
  const broker = conn.broker
  const limits = broker.limits
  const props = packet.properties
  const info: ClientInfo = {
    clientId: clientId.id,
    identity: conn.context.identity,
    username: packet.username,
    listener: conn.context.listener,
    remoteAddress: conn.context.remoteAddress,
    protocolVersion: conn.version,
  }
  conn.clientInfo = info

  // Session Expiry: 3.1.1 Clean Session 0 means "keep", capped like 5.0.
  const requestedExpiry =
    conn.version === 5
      ? (props?.sessionExpiryInterval ?? 0)
      : packet.clean
        ? 0
        : SESSION_EXPIRY_NEVER_SECONDS
  conn.connectSessionExpiry = requestedExpiry

  // No connection the audit trail cannot record (C25): fail closed.
  if (!broker.acceptingWork()) {
    refuse(conn, new Refused(ReasonCode.ServerUnavailable, 'phimq.audit-unavailable'))
    return
  }
  let verdict: Awaited<ReturnType<typeof broker.gate.authorizeConnect>>
  try {
    verdict = await broker.gate.authorizeConnect({
      ...info,
      cleanStart: packet.clean ?? true,
      keepAliveSeconds: packet.keepalive ?? 0,
      sessionExpirySeconds: requestedExpiry,
      password: packet.password,
      will,
      userProperties: userPropertyPairs(props?.userProperties),
    })
  } catch (err) {
    // Fail closed: a gate that throws refuses.
    conn.log.error({ event: 'gate.failed', err }, 'gate failed')
    verdict = { allow: false, reasonCode: ReasonCode.UnspecifiedError, rule: 'phimq.gate-error' }
  }
  if (conn.state === 'closed') return
  if (!verdict.allow) {
    refuse(conn, new Refused(verdict.reasonCode, verdict.rule))
    return
  }
  // A session belongs to the identity that made it: another identity with
  // the same Client Identifier (another tenant's device, or a prefix match)
  // never resumes, wipes or takes it over (C10, C18).
  const owner = broker.sessions.get(clientId.id)
  if (owner && !sameIdentity(owner.identity, info.identity)) {
    refuse(conn, new Refused(ReasonCode.NotAuthorized, 'C10.session-owner'))
    return
  }
  // The will is a publish like any other: refused will, refused CONNECT.
  if (will) {
    const willVerdict = broker.gate.authorizePublish(info, will)
    if (!willVerdict.allow) {
      refuse(conn, new Refused(willVerdict.reasonCode, `will:${willVerdict.rule}`))
      return
    }
    conn.will = willVerdict.message
    conn.willDelaySeconds = packet.will?.properties?.willDelayInterval ?? 0
  }

  const cap = Math.min(limits.sessionExpiryMaxSeconds, verdict.sessionExpiryMaxSeconds ?? Infinity)
  const sessionExpiry = Math.min(requestedExpiry, cap)

  // Negotiated limits toward the client (5.0).
  if (conn.version === 5) {
    conn.clientReceiveMaximum = props?.receiveMaximum ?? 65_535
    conn.clientMaximumPacketSize = props?.maximumPacketSize ?? Number.POSITIVE_INFINITY
    conn.requestProblemInformation = props?.requestProblemInformation ?? true
  }
  let keepAlive = packet.keepalive ?? 0
  let serverKeepAlive: number | undefined
  if (conn.version === 5 && (keepAlive === 0 || keepAlive > limits.maxKeepAliveSeconds)) {
    // [MQTT-3.2.2-21] the client must use the Server Keep Alive we send
    keepAlive = limits.maxKeepAliveSeconds
    serverKeepAlive = keepAlive
  }

  const { session, sessionPresent } = broker.attachSession(
    conn,
    packet.clean ?? true,
    sessionExpiry,
  )

  // CONNACK [MQTT-3.2.2-2, MQTT-3.2.2-3]
  const connack: IConnackPacket = { cmd: 'connack', sessionPresent, reasonCode: 0, returnCode: 0 }
  if (conn.version === 5) {
    const out: NonNullable<IConnackPacket['properties']> = {
      receiveMaximum: limits.receiveMaximum,
      maximumPacketSize: limits.maxPacketSizeBytes,
      topicAliasMaximum: limits.topicAliasMaximum,
      retainAvailable: true,
      wildcardSubscriptionAvailable: true,
      subscriptionIdentifiersAvailable: true,
      sharedSubscriptionAvailable: true,
    }
    if (clientId.assigned) out.assignedClientIdentifier = clientId.id
    if (sessionExpiry !== requestedExpiry) out.sessionExpiryInterval = sessionExpiry
    if (serverKeepAlive !== undefined) out.serverKeepAlive = serverKeepAlive
    connack.properties = out
  }
  conn.state = 'open'
  conn.send(connack)
  conn.startKeepAlive(keepAlive)

  broker.emit({
    type: 'client.connected',
    actor: conn.actor,
    protocolVersion: conn.version,
    cleanStart: packet.clean ?? true,
    sessionPresent,
    sessionExpirySeconds: sessionExpiry,
  })
  conn.log.info(
    { event: 'client.connected', version: conn.version, sessionPresent },
    'client connected',
  )

  session.resume(conn)
  conn.releaseHeld()
}

/** mqtt-packet groups User Properties by name; the gate wants pairs (order does not matter). */
function userPropertyPairs(
  grouped: Record<string, string | string[]> | undefined,
): Array<[string, string]> | undefined {
  if (grouped === undefined) return undefined
  const pairs: Array<[string, string]> = []
  for (const [name, values] of Object.entries(grouped)) {
    for (const value of Array.isArray(values) ? values : [values]) pairs.push([name, value])
  }
  return pairs
}

function sameIdentity(a: Identity | undefined, b: Identity | undefined): boolean {
  if (!a || !b) return a === b
  return a.id === b.id && a.tenant === b.tenant && a.role === b.role
}

function buildWill(conn: Connection, packet: IConnectPacket): Message | undefined {
  const will = packet.will
  if (!will) return undefined
  const props = will.properties
  const message: Message = {
    topic: will.topic,
    payload: typeof will.payload === 'string' ? Buffer.from(will.payload) : will.payload,
    qos: (will.qos ?? 0) as Qos,
    retain: will.retain ?? false,
    origin: conn.clientId,
  }
  const p: NonNullable<Message['properties']> = {}
  if (props?.contentType !== undefined) p.contentType = props.contentType
  if (props?.responseTopic !== undefined) p.responseTopic = props.responseTopic
  if (props?.correlationData !== undefined) p.correlationData = props.correlationData
  if (props?.payloadFormatIndicator !== undefined)
    p.payloadFormatIndicator = props.payloadFormatIndicator
  if (props?.userProperties && conn.currentRaw) {
    // From the raw bytes, in the order sent [MQTT-3.1.3-10].
    p.userProperties = readWillUserProperties(conn.currentRaw)
  }
  if (Object.keys(p).length > 0) message.properties = p
  // Counted from when the will is sent, not from CONNECT.
  if (props?.messageExpiryInterval !== undefined)
    message.willExpirySeconds = props.messageExpiryInterval
  return message
}

/** Answer a refused CONNECT and close [MQTT-3.2.2-7]. */
function refuse(conn: Connection, refusal: Refused): void {
  if (conn.state === 'closed') return
  conn.broker.auditRefusal(conn, refusal.reasonCode, refusal.rule)
  conn.log.info(
    { event: 'connect.refused', rule: refusal.rule, reasonCode: refusal.reasonCode },
    'connect refused',
  )
  const code = conn.version === 5 ? refusal.reasonCode : toConnackReturnCodeV4(refusal.reasonCode)
  conn.send({ cmd: 'connack', sessionPresent: false, reasonCode: code, returnCode: code })
  conn.close({ cause: 'protocol', sendWill: false })
}
