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

// Content types and User Property pairs repeat from message to message:
// remember this many clean texts (up to a length), then start over.
const CACHE_MAX_ENTRIES = 4096
const CACHE_MAX_TEXT_CHARS = 256

/**
 * Screens properties with one policy's detectors. Build one per compiled
 * policy: it remembers texts found clean, so a publish repeating the
 * properties of the last one costs a set lookup, not a run of every
 * detector (about 8 µs per text). Texts with a hit are never kept: the
 * cache must not hold PHI.
 */
export class PropertyScreen {
  readonly #detector: PhiDetector
  // Client input, so a Set (never a plain object); clean texts only.
  readonly #clean = new Set<string>()

  constructor(detector: PhiDetector) {
    this.#detector = detector
  }

  /**
   * Screen the properties of a PUBLISH or a will, in wire order: Content
   * Type, Response Topic, Correlation Data, User Properties. The first hit
   * decides.
   */
  screenMessage(props: MessageProperties): PropertyHit | undefined {
    if (props.contentType !== undefined) {
      const kind = this.#firstKind(props.contentType)
      if (kind) return hit('content-type', kind, ReasonCode.ImplementationSpecificError)
    }
    if (props.responseTopic !== undefined) {
      // Read as a topic (`/` separates levels), as in the Topic Name check.
      const kind = this.#detector.detectTopic(props.responseTopic)[0]?.kind
      if (kind) return hit('response-topic', kind, ReasonCode.TopicNameInvalid)
    }
    if (props.correlationData !== undefined) {
      const found = this.#screenCorrelationData(props.correlationData)
      if (found) return found
    }
    if (props.userProperties !== undefined) {
      return this.screenUserProperties(props.userProperties, 'user-property')
    }
    return undefined
  }

  /** The first User Property whose name or value trips a detector. */
  screenUserProperties(
    pairs: Iterable<readonly [string, string]>,
    property: string,
  ): PropertyHit | undefined {
    for (const [name, value] of pairs) {
      const kind = this.#firstKind(name) ?? this.#firstKind(value)
      if (kind) return hit(property, kind, ReasonCode.ImplementationSpecificError)
    }
    return undefined
  }

  /**
   * Correlation Data is binary and application-defined. Opaque bytes (not
   * valid UTF-8, such as a random request id) pass unread; bytes that are
   * valid UTF-8 are text to a receiver and are screened like any text.
   */
  #screenCorrelationData(data: Buffer): PropertyHit | undefined {
    if (data.length === 0 || !isUtf8(data)) return undefined
    const kind = this.#firstKind(data.toString('utf8'))
    return kind ? hit('correlation-data', kind, ReasonCode.ImplementationSpecificError) : undefined
  }

  /** The first detector kind found in `text`, if any. */
  #firstKind(text: string): PhiKind | undefined {
    if (text.length === 0 || this.#clean.has(text)) return undefined
    const kind = this.#detector.detect(text)[0]?.kind
    if (kind === undefined && text.length <= CACHE_MAX_TEXT_CHARS) {
      if (this.#clean.size >= CACHE_MAX_ENTRIES) this.#clean.clear()
      this.#clean.add(text)
    }
    return kind
  }
}
