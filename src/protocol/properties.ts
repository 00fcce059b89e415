/**
 * MQTT 5.0 property rules for packets a client sends: which properties a
 * packet may carry, which may repeat, and which values are allowed.
 *
 * `mqtt-packet` accepts any known property on any packet, turns a repeated
 * property into an array, and decodes Byte properties as booleans. The rules
 * here run twice: per property by the raw walker in `utf8-fields.ts` (which
 * sees the bytes, so nothing is hidden from it), and over the parsed packet
 * by {@link checkInboundProperties}, which also checks the rules that tie two
 * properties together.
 */
import type { Packet } from 'mqtt-packet'
import {
  Ctx,
  PROPERTY_BY_KEY,
  type PropertySpec,
  SUBSCRIPTION_IDENTIFIER_ID,
  SUBSCRIPTION_IDENTIFIER_MAX,
  USER_PROPERTY_ID,
} from './property-table.js'
import { ReasonCode } from './reason-codes.js'
import { type Violation, violation } from './violation.js'

/** Section 2.2.2.2: an identifier not valid for its packet type is malformed. */
const RULE_PLACEMENT = 'MQTT-5.0 2.2.2.2'

/** The property section of each packet type a client may send. */
const CONTEXT_BY_CMD: ReadonlyMap<string, number> = new Map([
  ['connect', Ctx.CONNECT],
  ['publish', Ctx.PUBLISH],
  ['puback', Ctx.PUBACK],
  ['pubrec', Ctx.PUBACK],
  ['pubrel', Ctx.PUBACK],
  ['pubcomp', Ctx.PUBACK],
  ['subscribe', Ctx.SUBSCRIBE],
  ['unsubscribe', Ctx.UNSUBSCRIBE],
  ['disconnect', Ctx.DISCONNECT],
  ['auth', Ctx.AUTH],
])

/**
 * Whether a property may appear in a section sent by a client.
 * Section 2.2.2.2 makes a wrong packet type malformed (0x81); a Subscription
 * Identifier is valid on PUBLISH, but only from the server [MQTT-3.3.4-6].
 */
export function checkPlacement(spec: PropertySpec, context: number): Violation | undefined {
  if (spec.id === SUBSCRIPTION_IDENTIFIER_ID && context === Ctx.PUBLISH) {
    return violation(
      ReasonCode.ProtocolError,
      '[MQTT-3.3.4-6]',
      'subscription identifier on publish from a client',
    )
  }
  if ((spec.contexts & context) !== 0) return undefined

  return violation(
    ReasonCode.MalformedPacket,
    RULE_PLACEMENT,
    `${spec.label} not allowed on this packet`,
  )
}

/**
 * A second occurrence of a property. Only the User Property may repeat on a
 * packet from a client; the Subscription Identifier repeats only on PUBLISH
 * from the server (sections 3.3.2.3.8, 3.8.2.1.2, and the "more than once"
 * sentence of every other property).
 */
export function checkRepeat(spec: PropertySpec): Violation | undefined {
  if (spec.id === USER_PROPERTY_ID) return undefined
  return violation(
    ReasonCode.ProtocolError,
    `MQTT-5.0 ${sectionOf(spec)}`,
    `${spec.label} included more than once`,
  )
}

/**
 * The value rules of numeric properties, on the number as sent.
 * Section numbers are those of the sentence that makes the value an error.
 */
export function checkNumericValue(spec: PropertySpec, value: number): Violation | undefined {
  switch (spec.key) {
    case 'payloadFormatIndicator':
      // Only 0 (unspecified bytes) and 1 (UTF-8) are defined (3.3.2.3.2).
      return value === 0 || value === 1
        ? undefined
        : protocolError('MQTT-5.0 3.3.2.3.2', 'payload format indicator not 0 or 1')
    case 'requestProblemInformation':
      return value === 0 || value === 1
        ? undefined
        : protocolError('MQTT-5.0 3.1.2.11.7', 'request problem information not 0 or 1')
    case 'requestResponseInformation':
      return value === 0 || value === 1
        ? undefined
        : protocolError('MQTT-5.0 3.1.2.11.6', 'request response information not 0 or 1')
    case 'receiveMaximum':
      return value === 0 ? protocolError('MQTT-5.0 3.1.2.11.3', 'receive maximum is 0') : undefined
    case 'maximumPacketSize':
      return value === 0
        ? protocolError('MQTT-5.0 3.1.2.11.4', 'maximum packet size is 0')
        : undefined
    case 'topicAlias':
      // Section 3.3.4: a Topic Alias of 0 is answered with 0x94, not 0x82.
      // The check against Topic Alias Maximum needs the connection: the core does it.
      return value === 0
        ? violation(ReasonCode.TopicAliasInvalid, '[MQTT-3.3.2-8]', 'topic alias is 0')
        : undefined
    case 'subscriptionIdentifier':
      return value === 0 || value > SUBSCRIPTION_IDENTIFIER_MAX
        ? protocolError('MQTT-5.0 3.8.2.1.2', 'subscription identifier out of range')
        : undefined
    default:
      return undefined
  }
}

/**
 * Check the properties of a packet a client sent, after `mqtt-packet` parsed
 * it: placement, repetition (arrays), values, and the rules between two
 * properties. 3.1.1 packets have no properties and always pass.
 *
 * Blind spots of the parsed form (Byte values other than 0 and 1 become
 * `true`; a repeat after a falsy first value overwrites it) are caught by
 * `checkPacketStrings` on the raw bytes: call both.
 */
export function checkInboundProperties(packet: Packet, version: 4 | 5): Violation | undefined {
  if (version !== 5) return undefined
  const context = CONTEXT_BY_CMD.get(packet.cmd)
  if (context === undefined) return undefined

  const properties = propertiesOf(packet)
  const found = properties === undefined ? undefined : checkSection(properties, context)
  if (found !== undefined) return found

  if (packet.cmd === 'connect') return checkConnect(packet)
  if (packet.cmd === 'auth') return checkAuth(packet)
  return undefined
}

function checkSection(properties: object, context: number): Violation | undefined {
  for (const [key, value] of Object.entries(properties)) {
    const spec = PROPERTY_BY_KEY.get(key)
    if (spec === undefined) {
      return violation(ReasonCode.MalformedPacket, RULE_PLACEMENT, 'unknown property')
    }
    const found = checkParsedValue(spec, value, context)
    if (found !== undefined) return found
  }
  return undefined
}

function checkParsedValue(spec: PropertySpec, value: unknown, context: number) {
  const placed = checkPlacement(spec, context)
  if (placed !== undefined) return placed

  // mqtt-packet turns a repeated property into an array of its values.
  if (Array.isArray(value) && spec.id !== USER_PROPERTY_ID) return checkRepeat(spec)

  if (typeof value === 'number') return checkNumericValue(spec, value)
  return undefined
}

function checkConnect(packet: Packet & { cmd: 'connect' }): Violation | undefined {
  const props = packet.properties
  if (props?.authenticationData !== undefined && props.authenticationMethod === undefined) {
    return protocolError('MQTT-5.0 3.1.2.11.10', 'authentication data without a method')
  }
  const willProps = packet.will?.properties
  return willProps === undefined ? undefined : checkSection(willProps, Ctx.WILL)
}

function checkAuth(packet: Packet & { cmd: 'auth' }): Violation | undefined {
  // Section 3.15.2.1 lets an AUTH with Reason Code 0 and no properties be
  // empty; any other AUTH must name its method (3.15.2.2.2).
  const empty = packet.properties === undefined && packet.reasonCode === 0
  if (empty || packet.properties?.authenticationMethod !== undefined) return undefined
  return protocolError('MQTT-5.0 3.15.2.2.2', 'auth without an authentication method')
}

function propertiesOf(packet: Packet): object | undefined {
  return 'properties' in packet ? packet.properties : undefined
}

function protocolError(rule: string, message: string): Violation {
  return violation(ReasonCode.ProtocolError, rule, message)
}

/** The section whose "more than once" sentence a repeated property breaks. */
function sectionOf(spec: PropertySpec): string {
  return REPEAT_SECTION.get(spec.id) ?? '2.2.2.2'
}

const REPEAT_SECTION: ReadonlyMap<number, string> = new Map([
  [0x01, '3.1.3.2.3'],
  [0x02, '3.1.3.2.4'],
  [0x03, '3.3.2.3.9'],
  [0x08, '3.3.2.3.5'],
  [0x09, '3.3.2.3.6'],
  [0x0b, '3.8.2.1.2'],
  [0x11, '3.1.2.11.2'],
  [0x15, '3.1.2.11.9'],
  [0x16, '3.1.2.11.10'],
  [0x17, '3.1.2.11.7'],
  [0x18, '3.1.3.2.2'],
  [0x19, '3.1.2.11.6'],
  [0x1c, '3.14.2.2.5'],
  [0x1f, '3.4.2.2.2'],
  [0x21, '3.1.2.11.3'],
  [0x22, '3.1.2.11.5'],
  [0x23, '3.3.2.3.4'],
  [0x27, '3.1.2.11.4'],
])
