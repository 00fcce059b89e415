/**
 * Topic classes (C22–C24): the config assigns classes such as `phi`,
 * `deidentified` or `ops` to topic patterns, and each class sets retain,
 * Message Expiry, QoS, payload size, content type and a JSON payload rule.
 * The first class (in config order) whose pattern matches a topic governs
 * it; topics no class matches fall to `defaultClass`, else to built-in
 * strict PHI defaults.
 */
import {
  copyMessage,
  type Identity,
  type Message,
  type ProtocolVersion,
  type Qos,
} from '../broker/types.js'
import type { PayloadRuleConfig, TopicClassConfig } from '../config/policy.js'
import { ReasonCode } from '../protocol/reason-codes.js'
import { TopicDecisions } from './decision-cache.js'
import { compilePattern, resolvePattern, type TopicPattern } from './pattern.js'
import { type PseudonymKey, pseudonymize } from './pseudonym.js'
import { topicMatches } from './topic-filter.js'

interface RetainException {
  readonly pattern: TopicPattern
  readonly expiresAtMs: number
}

interface CompiledClass {
  readonly name: string
  readonly phi: boolean
  readonly patterns: readonly TopicPattern[]
  readonly retain: boolean
  readonly exceptions: readonly RetainException[]
  readonly expiryDefaultSeconds: number
  readonly expiryMaxSeconds: number
  readonly maxQos: Qos
  readonly maxPayloadBytes: number | undefined
  readonly contentType: string | undefined
  readonly payload: PayloadRuleConfig | undefined
  /** JSON rule fields as sets, built once. */
  readonly allowedFields: ReadonlySet<string>
  readonly pseudonymFields: ReadonlySet<string>
}

/** The class topics fall to when none matches and no `defaultClass` is set. */
export const BUILTIN_CLASS_NAME = 'unclassified'

const BUILTIN_CLASS: CompiledClass = {
  name: BUILTIN_CLASS_NAME,
  phi: true,
  patterns: [],
  retain: false,
  exceptions: [],
  expiryDefaultSeconds: 3600,
  expiryMaxSeconds: 86_400,
  maxQos: 2,
  maxPayloadBytes: undefined,
  contentType: undefined,
  payload: undefined,
  allowedFields: new Set(),
  pseudonymFields: new Set(),
}

/**
 * A refusal by a class, with the PUBACK code and the code to use when the
 * same check refuses a will in CONNECT (where 0x9A and 0x9B are valid).
 */
export interface ClassRefusal {
  readonly allow: false
  readonly rule: string
  readonly reasonCode: number
  readonly connectReasonCode: number
}

/** The class's answer: the message to route (maybe rewritten), or a refusal. */
export type ClassOutcome = { readonly allow: true; readonly message: Message } | ClassRefusal

/** What the class check needs to know besides the message. */
export interface PublishContext {
  readonly identity: Identity
  readonly protocolVersion: ProtocolVersion
  /** Epoch ms from the injected clock. */
  readonly now: number
  /** Whether the rules let this identity retain on this topic. */
  readonly ruleRetain: boolean
  readonly ruleMaxQos: Qos
}

function refuse(rule: string, reasonCode: number, connectReasonCode = reasonCode): ClassRefusal {
  return { allow: false, rule, reasonCode, connectReasonCode }
}

function mediaType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase()
}

function compileClass(c: TopicClassConfig): CompiledClass {
  return {
    name: c.name,
    phi: c.phi,
    patterns: c.topics.map(compilePattern),
    retain: c.retain,
    exceptions: c.retainExceptions.map((e) => ({
      pattern: compilePattern(e.topic),
      expiresAtMs: Date.parse(e.expires),
    })),
    expiryDefaultSeconds: c.messageExpiry.defaultSeconds,
    expiryMaxSeconds: c.messageExpiry.maxSeconds,
    maxQos: c.maxQos,
    maxPayloadBytes: c.maxPayloadBytes,
    contentType: c.contentType,
    payload: c.payload,
    allowedFields: new Set(c.payload?.format === 'json' ? c.payload.fields : []),
    pseudonymFields: new Set(c.payload?.format === 'json' ? c.payload.pseudonymize : []),
  }
}

function matchesAny(patterns: readonly TopicPattern[], identity: Identity, topic: string) {
  return patterns.some((p) => {
    const f = resolvePattern(p, identity)
    return f !== undefined && topicMatches(f, topic)
  })
}

/** The compiled classes of one policy version, with the pseudonym keys. */
export class TopicClasses {
  readonly #classes: readonly CompiledClass[]
  readonly #fallback: CompiledClass
  readonly #keys: ReadonlyMap<string, PseudonymKey>
  // Per identity object and topic; bounded per identity (see decision-cache.ts).
  readonly #classCache = new TopicDecisions<CompiledClass>()

  constructor(
    classes: readonly TopicClassConfig[],
    defaultClass: string | undefined,
    keys: ReadonlyMap<string, PseudonymKey>,
  ) {
    this.#classes = classes.map(compileClass)
    this.#fallback = this.#classes.find((c) => c.name === defaultClass) ?? BUILTIN_CLASS
    this.#keys = keys
  }

  /** Name of the class governing `topic` for `identity`. */
  classNameOf(identity: Identity, topic: string): string {
    return this.#classOf(identity, topic).name
  }

  #classOf(identity: Identity, topic: string): CompiledClass {
    // Placeholders make the class depend on the identity's values too.
    const cached = this.#classCache.get(identity, topic)
    if (cached) return cached
    const cls = this.#classes.find((c) => matchesAny(c.patterns, identity, topic)) ?? this.#fallback
    this.#classCache.set(identity, topic, cls)
    return cls
  }

  /** The live retain exception for `topic`, if any (expired ones do not count). */
  #exception(cls: CompiledClass, identity: Identity, topic: string, now: number) {
    return cls.exceptions.find(
      (e) => e.expiresAtMs > now && matchesAny([e.pattern], identity, topic),
    )
  }

  /**
   * May a retained message on `topic` still be delivered? False once the
   * class forbids retain and no live exception covers the topic (C23).
   */
  isRetainAllowed(identity: Identity, topic: string, now: number): boolean {
    const cls = this.#classOf(identity, topic)
    return cls.retain || this.#exception(cls, identity, topic, now) !== undefined
  }

  /**
   * Apply the class to an inbound message: refuse it, or return a rewritten
   * copy stamped with `ctx.identity` as its source (`originIdentity`), so a
   * retained copy can be judged by it later (C15). One copy per message.
   */
  applyPublish(message: Message, ctx: PublishContext): ClassOutcome {
    const cls = this.#classOf(ctx.identity, message.topic)
    // An empty retained payload clears the retained message: always allowed.
    const clearing = message.retain && message.payload.length === 0

    // 1. Retain (C23): both the rule and the class (or a live exception).
    let exceptionEnd: number | undefined
    if (message.retain && !clearing) {
      if (!ctx.ruleRetain)
        return refuse('policy.retain', ReasonCode.NotAuthorized, ReasonCode.RetainNotSupported)
      const exception = this.#exception(cls, ctx.identity, message.topic, ctx.now)
      if (!cls.retain && !exception) {
        return refuse(
          `class.${cls.name}.retain`,
          ReasonCode.NotAuthorized,
          ReasonCode.RetainNotSupported,
        )
      }
      exceptionEnd = cls.retain ? undefined : exception?.expiresAtMs
    }

    // 2. QoS: the lower of the rule's and the class's maximum.
    if (message.qos > ctx.ruleMaxQos) {
      return refuse('policy.qos', ReasonCode.NotAuthorized, ReasonCode.QosNotSupported)
    }
    if (message.qos > cls.maxQos) {
      return refuse(`class.${cls.name}.qos`, ReasonCode.NotAuthorized, ReasonCode.QosNotSupported)
    }

    // 3. Payload size, content type and fields.
    let out: Message = message
    if (!clearing) {
      const checked = this.#applyPayload(cls, message, ctx)
      if (!checked.allow) return checked
      out = checked.message
    }

    // 4. Message Expiry (C24). A will at CONNECT carries its interval, which
    // counts from when it is sent: cap the interval, set no time yet.
    if (message.willExpirySeconds !== undefined) {
      const willExpirySeconds = Math.min(message.willExpirySeconds, cls.expiryMaxSeconds)
      const stamp = { willExpirySeconds, originIdentity: ctx.identity }
      return { allow: true, message: copyMessage(out, stamp) }
    }
    // Otherwise: default when absent, capped at the maximum, and a retained
    // message under an exception dies with the exception.
    const cap = ctx.now + cls.expiryMaxSeconds * 1000
    const asked = message.expiresAt ?? ctx.now + cls.expiryDefaultSeconds * 1000
    const expiresAt = Math.min(asked, cap, exceptionEnd ?? Number.POSITIVE_INFINITY)
    return { allow: true, message: copyMessage(out, { expiresAt, originIdentity: ctx.identity }) }
  }

  #applyPayload(cls: CompiledClass, message: Message, ctx: PublishContext): ClassOutcome {
    if (cls.maxPayloadBytes !== undefined && message.payload.length > cls.maxPayloadBytes) {
      return refuse(`class.${cls.name}.payload-size`, ReasonCode.QuotaExceeded)
    }

    let properties = message.properties
    if (cls.contentType !== undefined) {
      const sent = properties?.contentType
      if (ctx.protocolVersion === 5 && mediaType(sent ?? '') !== mediaType(cls.contentType)) {
        return refuse(`class.${cls.name}.content-type`, ReasonCode.PayloadFormatInvalid)
      }
      // 3.1.1 has no Content Type: the broker states the class's for it.
      if (ctx.protocolVersion === 4) properties = { ...properties, contentType: cls.contentType }
    }

    let payload = message.payload
    if (cls.payload?.format === 'json') {
      const result = this.#applyJson(cls, cls.payload, payload, ctx.identity)
      if (!Buffer.isBuffer(result)) return result
      payload = result
    }
    // Unchanged: no copy (the caller makes one for the expiry anyway).
    if (payload === message.payload && properties === message.properties) {
      return { allow: true, message }
    }
    return { allow: true, message: copyMessage(message, { payload, properties }) }
  }

  #applyJson(
    cls: CompiledClass,
    rule: Extract<PayloadRuleConfig, { format: 'json' }>,
    payload: Buffer,
    identity: Identity,
  ): Buffer | ClassRefusal {
    const prefix = `class.${cls.name}`
    let doc: unknown
    try {
      doc = JSON.parse(payload.toString('utf8'))
    } catch {
      return refuse(`${prefix}.payload-json`, ReasonCode.PayloadFormatInvalid)
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      return refuse(`${prefix}.payload-json`, ReasonCode.PayloadFormatInvalid)
    }

    const allowed = cls.allowedFields
    const pseudo = cls.pseudonymFields
    const key = pseudo.size > 0 ? this.#keys.get(identity.tenant ?? '') : undefined
    const kept: Array<[string, unknown]> = []
    let changed = false

    for (const [field, value] of Object.entries(doc)) {
      if (pseudo.has(field)) {
        if (value === null) {
          kept.push([field, null])
          continue
        }
        if (typeof value !== 'string' && typeof value !== 'number') {
          return refuse(`${prefix}.payload-field`, ReasonCode.PayloadFormatInvalid)
        }
        if (!key) return refuse('pseudonym.no-key', ReasonCode.ImplementationSpecificError)
        kept.push([field, pseudonymize(key, String(value))])
        changed = true
      } else if (allowed.has(field)) {
        kept.push([field, value])
      } else if (rule.unknownFields === 'refuse') {
        return refuse(`${prefix}.payload-field`, ReasonCode.PayloadFormatInvalid)
      } else {
        changed = true
      }
    }
    // Object.fromEntries defines own properties: a `__proto__` key stays data.
    return changed ? Buffer.from(JSON.stringify(Object.fromEntries(kept)), 'utf8') : payload
  }
}
