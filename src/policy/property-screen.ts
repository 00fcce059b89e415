/**
 * PHI screening of the MQTT 5 properties that travel with an application
 * message (C21): Content Type, Response Topic, Correlation Data and User
 * Properties reach every subscriber untouched, so a detector hit in any of
 * them refuses the message just as a hit in the Topic Name does. CONNECT
 * User Properties are screened too (they are client input the broker keeps
 * in memory for the life of the connection).
 *
 * Reason codes (MQTT 5.0 sections 3.4.2.1 and 3.2.2.2; docs/policy.md,
 * "Reason codes"):
 * - Response Topic: 0x90 Topic Name invalid. It is a Topic Name the
 *   responder will publish to, and the broker will not accept it.
 * - every other property: 0x83 Implementation specific error, "the PUBLISH
 *   is valid but the receiver is not willing to accept it". 0x99 (Payload
 *   format invalid) is about the payload, 0x90 about the Topic Name: neither
 *   describes a refused property. All three are valid in PUBACK, PUBREC and
 *   CONNACK, so a will gets the same code as a publish.
 *
 * A refusal names the property and the detector kind (`phi.user-property.ssn`),
 * never the property's name or value: both are client input and may be PHI.
 */
import { isUtf8 } from 'node:buffer'
import type { MessageProperties } from '../broker/types.js'
import type { PhiDetector, PhiKind } from '../phi/detectors.js'
import { ReasonCode } from '../protocol/reason-codes.js'

/** A property that holds PHI: the rule to audit and the reason code to send. */
export interface PropertyHit {
  readonly rule: string
  readonly reasonCode: number
}

function hit(property: string, kind: PhiKind, reasonCode: number): PropertyHit {
  return { rule: `phi.${property}.${kind}`, reasonCode }
}

/** The first detector kind found in `text`, if any. */
function firstKind(detector: PhiDetector, text: string): PhiKind | undefined {
  return detector.detect(text)[0]?.kind
}

/** The first User Property whose name or value trips a detector. */
export function screenUserProperties(
  detector: PhiDetector,
  pairs: Iterable<readonly [string, string]>,
  property: string,
): PropertyHit | undefined {
  for (const [name, value] of pairs) {
    const kind = firstKind(detector, name) ?? firstKind(detector, value)
    if (kind) return hit(property, kind, ReasonCode.ImplementationSpecificError)
  }
  return undefined
}

/**
 * Correlation Data is binary and application-defined. Opaque bytes (not
 * valid UTF-8, such as a random request id) pass unread; bytes that are
 * valid UTF-8 are text to a receiver and are screened like any text.
 */
function screenCorrelationData(detector: PhiDetector, data: Buffer): PropertyHit | undefined {
  if (data.length === 0 || !isUtf8(data)) return undefined
  const kind = firstKind(detector, data.toString('utf8'))
  return kind ? hit('correlation-data', kind, ReasonCode.ImplementationSpecificError) : undefined
}

/**
 * Screen the properties of a PUBLISH or a will, in wire order: Content
 * Type, Response Topic, Correlation Data, User Properties. The first hit
 * decides.
 */
export function screenMessageProperties(
  detector: PhiDetector,
  props: MessageProperties,
): PropertyHit | undefined {
  if (props.contentType !== undefined) {
    const kind = firstKind(detector, props.contentType)
    if (kind) return hit('content-type', kind, ReasonCode.ImplementationSpecificError)
  }
  if (props.responseTopic !== undefined) {
    // Read as a topic: `/` separates levels, as in the Topic Name check.
    const kind = detector.detectTopic(props.responseTopic)[0]?.kind
    if (kind) return hit('response-topic', kind, ReasonCode.TopicNameInvalid)
  }
  if (props.correlationData !== undefined) {
    const found = screenCorrelationData(detector, props.correlationData)
    if (found) return found
  }
  if (props.userProperties !== undefined) {
    return screenUserProperties(detector, props.userProperties, 'user-property')
  }
  return undefined
}
