/**
 * The MQTT 5.0 property table (section 2.2.2.2, table 2-4): for each
 * Property Identifier its value type, the packets it may appear on, and the
 * name `mqtt-packet` gives it. Shared by the raw walker (`utf8-fields.ts`)
 * and the parsed-packet checks (`properties.ts`).
 */

/** How a property value is encoded on the wire (section 1.5). */
export type PropertyType = 'byte' | 'u16' | 'u32' | 'vbi' | 'string' | 'binary' | 'pair'

/**
 * Where a property section sits. Bit flags, so one table row can list all
 * its packets. `WILL` is the Will Properties section of CONNECT.
 */
export const Ctx = {
  CONNECT: 1 << 0,
  WILL: 1 << 1,
  PUBLISH: 1 << 2,
  PUBACK: 1 << 3,
  SUBSCRIBE: 1 << 4,
  UNSUBSCRIBE: 1 << 5,
  DISCONNECT: 1 << 6,
  AUTH: 1 << 7,
  CONNACK: 1 << 8,
  SUBACK: 1 << 9,
  UNSUBACK: 1 << 10,
} as const

/** One row of the property table. */
export interface PropertySpec {
  readonly id: number
  /** The spec's name, for messages. */
  readonly label: string
  /** The key `mqtt-packet` uses in `packet.properties`. */
  readonly key: string
  readonly type: PropertyType
  /** OR of {@link Ctx} flags: the sections this property is valid in. */
  readonly contexts: number
}

const ACKS = Ctx.PUBACK
const MESSAGE = Ctx.WILL | Ctx.PUBLISH

const ROWS: readonly PropertySpec[] = [
  row(0x01, 'payload format indicator', 'payloadFormatIndicator', 'byte', MESSAGE),
  row(0x02, 'message expiry interval', 'messageExpiryInterval', 'u32', MESSAGE),
  row(0x03, 'content type', 'contentType', 'string', MESSAGE),
  row(0x08, 'response topic', 'responseTopic', 'string', MESSAGE),
  row(0x09, 'correlation data', 'correlationData', 'binary', MESSAGE),
  row(
    0x0b,
    'subscription identifier',
    'subscriptionIdentifier',
    'vbi',
    Ctx.PUBLISH | Ctx.SUBSCRIBE,
  ),
  row(
    0x11,
    'session expiry interval',
    'sessionExpiryInterval',
    'u32',
    Ctx.CONNECT | Ctx.CONNACK | Ctx.DISCONNECT,
  ),
  row(0x12, 'assigned client identifier', 'assignedClientIdentifier', 'string', Ctx.CONNACK),
  row(0x13, 'server keep alive', 'serverKeepAlive', 'u16', Ctx.CONNACK),
  row(
    0x15,
    'authentication method',
    'authenticationMethod',
    'string',
    Ctx.CONNECT | Ctx.CONNACK | Ctx.AUTH,
  ),
  row(
    0x16,
    'authentication data',
    'authenticationData',
    'binary',
    Ctx.CONNECT | Ctx.CONNACK | Ctx.AUTH,
  ),
  row(0x17, 'request problem information', 'requestProblemInformation', 'byte', Ctx.CONNECT),
  row(0x18, 'will delay interval', 'willDelayInterval', 'u32', Ctx.WILL),
  row(0x19, 'request response information', 'requestResponseInformation', 'byte', Ctx.CONNECT),
  row(0x1a, 'response information', 'responseInformation', 'string', Ctx.CONNACK),
  row(0x1c, 'server reference', 'serverReference', 'string', Ctx.CONNACK | Ctx.DISCONNECT),
  row(
    0x1f,
    'reason string',
    'reasonString',
    'string',
    Ctx.CONNACK | ACKS | Ctx.SUBACK | Ctx.UNSUBACK | Ctx.DISCONNECT | Ctx.AUTH,
  ),
  row(0x21, 'receive maximum', 'receiveMaximum', 'u16', Ctx.CONNECT | Ctx.CONNACK),
  row(0x22, 'topic alias maximum', 'topicAliasMaximum', 'u16', Ctx.CONNECT | Ctx.CONNACK),
  row(0x23, 'topic alias', 'topicAlias', 'u16', Ctx.PUBLISH),
  row(0x24, 'maximum qos', 'maximumQoS', 'byte', Ctx.CONNACK),
  row(0x25, 'retain available', 'retainAvailable', 'byte', Ctx.CONNACK),
  row(0x26, 'user property', 'userProperties', 'pair', 0x7ff),
  row(0x27, 'maximum packet size', 'maximumPacketSize', 'u32', Ctx.CONNECT | Ctx.CONNACK),
  row(
    0x28,
    'wildcard subscription available',
    'wildcardSubscriptionAvailable',
    'byte',
    Ctx.CONNACK,
  ),
  row(
    0x29,
    'subscription identifiers available',
    'subscriptionIdentifiersAvailable',
    'byte',
    Ctx.CONNACK,
  ),
  row(0x2a, 'shared subscription available', 'sharedSubscriptionAvailable', 'byte', Ctx.CONNACK),
]

function row(
  id: number,
  label: string,
  key: string,
  type: PropertyType,
  contexts: number,
): PropertySpec {
  return { id, label, key, type, contexts }
}

/** Property Identifier → row; an array because identifiers are small integers. */
export const PROPERTY_BY_ID: ReadonlyArray<PropertySpec | undefined> = (() => {
  const byId = new Array<PropertySpec | undefined>(0x2b).fill(undefined)
  for (const spec of ROWS) byId[spec.id] = spec
  return byId
})()

/** `mqtt-packet` key → row. */
export const PROPERTY_BY_KEY: ReadonlyMap<string, PropertySpec> = new Map(
  ROWS.map((spec) => [spec.key, spec]),
)

/** Identifier of the User Property, the one property that may always repeat. */
export const USER_PROPERTY_ID = 0x26

/** Identifier of the Subscription Identifier. */
export const SUBSCRIPTION_IDENTIFIER_ID = 0x0b

/** The largest Subscription Identifier (section 3.8.2.1.2). */
export const SUBSCRIPTION_IDENTIFIER_MAX = 268_435_455
