/**
 * `PolicyGate`: the compiled topic policy and the PHI guards behind the
 * core's `Gate` seam (C15–C18, C21–C24). The core asks; the gate answers
 * with an MQTT reason code and a rule name. Every check is a named step in
 * order; the first step that refuses decides.
 *
 * Reason codes (MQTT 5.0 section 2.4; `docs/policy.md` explains each):
 * PUBLISH refusals use only codes valid in PUBACK/PUBREC (0x87, 0x90,
 * 0x97, 0x99, 0x83). A will checked at CONNECT uses the CONNACK codes that
 * name the cause exactly (0x9A retain, 0x9B QoS). SUBSCRIBE: 0x87, 0x8F;
 * a QoS above the rule's maximum is granted lower, not refused.
 */
import { dirname } from 'node:path'
import type { AuditSink } from '../audit/sink.js'
import type { Clock } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import {
  allowAllGate,
  type ConnectRequest,
  type ConnectVerdict,
  type Gate,
  type PublishVerdict,
  type Refusal,
  type SubscribeRequest,
  type SubscribeVerdict,
} from '../broker/gate.js'
import type { ClientInfo, Identity, Message, Qos } from '../broker/types.js'
import type { LoadedConfig } from '../config/load.js'
import { type PolicyConfig, policySchema } from '../config/policy.js'
import { PhimqError, PolicyInvalidError } from '../errors.js'
import { ReasonCode } from '../protocol/reason-codes.js'
import {
  type CompiledPolicy,
  compilePolicy,
  diffPolicies,
  type Environment,
  type PolicyChanges,
} from './compile.js'
import { TopicDecisions } from './decision-cache.js'
import { checkDollar, checkTenantPrefix, checkWildcards, GuardRule } from './guards.js'
import { hasTopicMetacharacter, isSafeIdentity, isSafeLevelValue } from './pattern.js'
import { PropertyScreen } from './property-screen.js'
import type { AccessDecision } from './rules.js'

/** What a `PolicyGate` is built from. */
export interface PolicyGateOptions {
  /** A `policy` section as the config schema returns it. */
  readonly policy: PolicyConfig
  readonly environment: Environment
  /** Sets `expiresAt` and ages retain exceptions; defaults to the system clock. */
  readonly clock?: Clock | undefined
  /** Receives cross-tenant attempts and reloads. */
  readonly audit?: AuditSink | undefined
  /** Folder that relative pseudonym key files are read from. */
  readonly baseDir?: string | undefined
  /** Environment pseudonym keys are read from; defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

/** What `reload` did: the changes made, or why nothing changed. */
export type ReloadResult =
  | { readonly ok: true; readonly version: number; readonly changes: PolicyChanges }
  | { readonly ok: false; readonly errors: string[] }

/** A refusal with the CONNACK code to use when it refuses a will. */
interface Denial extends Refusal {
  readonly connectReasonCode: number
}

type Checked = { readonly allow: true; readonly message: Message } | Denial

/** What the rules allowed on a topic, when every topic-level step passed. */
type TopicAllowed = Extract<AccessDecision, { allow: true }>

function deny(rule: string, reasonCode: number, connectReasonCode = reasonCode): Denial {
  return { allow: false, rule, reasonCode, connectReasonCode }
}

/** Strip the internal field: the core sees a plain `Refusal`. */
function refusal(d: Denial, useConnectCode = false): Refusal {
  return {
    allow: false,
    rule: d.rule,
    reasonCode: useConnectCode ? d.connectReasonCode : d.reasonCode,
  }
}

/** The topic policy and PHI guards, as a `Gate`. */
export class PolicyGate implements Gate {
  #policy: CompiledPolicy
  #screen: PropertyScreen
  // Topic-level outcomes under `#policy`; replaced with it on reload.
  #published = new TopicDecisions<TopicAllowed>()
  #delivered = new TopicDecisions<boolean>()
  #version = 1
  readonly #options: PolicyGateOptions
  readonly #clock: Clock

  /** Throws `PolicyInvalidError` or `PseudonymKeyError` when the policy cannot be built. */
  constructor(options: PolicyGateOptions) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#policy = this.#compile(options.policy)
    this.#screen = new PropertyScreen(this.#policy.detector)
  }

  /** Policy version: 1 at start, one more per successful reload. */
  get version(): number {
    return this.#version
  }

  #compile(config: PolicyConfig): CompiledPolicy {
    return compilePolicy(config, {
      environment: this.#options.environment,
      baseDir: this.#options.baseDir ?? '.',
      env: this.#options.env ?? process.env,
    })
  }

  /** The topic with every level a PHI detector flags replaced by `***` (C21, C26). */
  maskTopic(topic: string): string {
    return this.#policy.detector.maskTopic(topic)
  }

  /** The client id with detector hits replaced by `***`. */
  maskClientId(clientId: string): string {
    return this.#policy.detector.maskText(clientId)
  }

  // --- identity ----------------------------------------------------------

  /** Steps shared by every decision: an identity, safe values, a tenant. */
  #checkIdentity(identity: Identity | undefined): Denial | undefined {
    if (!identity) return deny(GuardRule.NoIdentity, ReasonCode.NotAuthorized)
    if (!isSafeIdentity(identity)) return deny(GuardRule.IdentityInvalid, ReasonCode.NotAuthorized)
    if (this.#policy.guards.requireTenant && identity.tenant === undefined) {
      return deny(GuardRule.TenantMissing, ReasonCode.NotAuthorized)
    }
    return undefined
  }

  #tenantStep(client: ClientInfo, identity: Identity, topic: string, op: string) {
    const rule = checkTenantPrefix(identity, topic)
    if (rule === undefined) return undefined
    // A cross-tenant attempt is a high-severity fact, not only a denial (C18, C29).
    this.#options.audit?.emit({
      type: 'tenant.cross-tenant',
      actor: {
        clientId: this.maskClientId(client.clientId),
        identity,
        listener: client.listener,
        remoteAddress: client.remoteAddress,
      },
      op,
      topic: this.maskTopic(topic),
      rule,
      severity: 'high',
    })
    return deny(rule, ReasonCode.NotAuthorized)
  }

  // --- CONNECT -------------------------------------------------------------

  /**
   * At CONNECT: identity, client id (characters, PHI: 0x85), the will as a
   * publish, and the Session Expiry cap (C24).
   */
  authorizeConnect(request: ConnectRequest): ConnectVerdict {
    const bad = this.#checkIdentity(request.identity)
    if (bad) return refusal(bad)
    const identity = request.identity as Identity

    // 1. The client id holds nothing a topic level may not (a client named
    // `#` or `a/b` is refused before it reaches a rule), and no PHI (C21).
    const id = request.clientId
    if (hasTopicMetacharacter(id)) {
      return {
        allow: false,
        rule: 'connect.client-id-chars',
        reasonCode: ReasonCode.ClientIdentifierNotValid,
      }
    }
    const hit = this.#policy.detector.detect(id)[0]
    if (hit) {
      const reasonCode = ReasonCode.ClientIdentifierNotValid
      return { allow: false, rule: `phi.client-id.${hit.kind}`, reasonCode }
    }

    // 2. CONNECT User Properties hold no PHI (C21): 0x83, as for a publish.
    if (request.userProperties !== undefined) {
      const found = this.#screen.screenUserProperties(
        request.userProperties,
        'connect-user-property',
      )
      if (found) return { allow: false, ...found }
    }

    // 3. The will, checked now as the publish it will become.
    if (request.will) {
      const checked = this.#checkPublish(request, request.will, 'connect')
      if (!checked.allow) return refusal(checked, true)
    }

    // 4. Session Expiry cap.
    return { allow: true, sessionExpiryMaxSeconds: this.#policy.sessionExpiryMaxSeconds(identity) }
  }

  // --- PUBLISH -------------------------------------------------------------

  /** Inbound PUBLISH (after alias resolution) and wills when sent. */
  authorizePublish(client: ClientInfo, message: Message, now?: number): PublishVerdict {
    const checked = this.#checkPublish(client, message, 'publish', now)
    return checked.allow ? checked : refusal(checked)
  }

  #checkPublish(client: ClientInfo, message: Message, op: string, now?: number): Checked {
    const identity = client.identity
    const topic = message.topic
    // Steps 1-4 depend on identity and topic only; a remembered allow skips them.
    const decision =
      (identity && this.#published.get(identity, topic)) ??
      this.#checkPublishTopic(client, topic, op)
    if (!decision.allow) return decision
    // Steps 5-6 depend on the message: never remembered.
    const found = this.#checkProperties(client, message, op)
    if (found) return found
    return this.#applyClass(client, message, decision, now ?? this.#clock.now())
  }

  #checkPublishTopic(client: ClientInfo, topic: string, op: string): TopicAllowed | Denial {
    const p = this.#policy
    const bad = this.#checkIdentity(client.identity)
    if (bad) return bad
    const identity = client.identity as Identity

    // 1. `$` topics belong to the broker.
    const dollar = checkDollar(p.guards, identity, topic, 'publish')
    if (dollar) return deny(dollar, ReasonCode.NotAuthorized)

    // 2. No PHI in the Topic Name (C21): 0x90 Topic Name invalid.
    const hit = p.detector.detectTopic(topic)[0]
    if (hit) return deny(`phi.topic.${hit.kind}`, ReasonCode.TopicNameInvalid)

    // 3. Tenant prefix (C18).
    const tenant = this.#tenantStep(client, identity, topic, op)
    if (tenant) return tenant

    // 4. Rules (C15): default deny, deny wins.
    const decision = p.rules.decidePublish(identity, topic)
    if (!decision.allow) return deny(decision.rule, ReasonCode.NotAuthorized)
    // Only allows are remembered: a refusal may have an audit event to emit.
    this.#published.set(identity, topic, decision)
    return decision
  }

  #checkProperties(client: ClientInfo, message: Message, op: string): Denial | undefined {
    const props = message.properties
    if (props === undefined) return undefined
    // 5. No PHI in the properties that travel with the message (C21):
    // Response Topic 0x90, the others 0x83 (see property-screen.ts).
    const found = this.#screen.screenMessage(props)
    if (found) return deny(found.rule, found.reasonCode)
    // 6. The Response Topic stays in the publisher's tenant (C18): a request
    // must not steer the response into another tenant.
    const responseTopic = props.responseTopic
    if (responseTopic === undefined) return undefined
    return this.#responseTopicStep(client, client.identity as Identity, responseTopic, op)
  }

  #applyClass(client: ClientInfo, message: Message, decision: TopicAllowed, now: number): Checked {
    const identity = client.identity as Identity
    // 7. Topic class: retain, QoS, payload, expiry (C22–C24). The class
    // stamps the source (`originIdentity`) on its copy, so a retained copy
    // can be judged by it later.
    return this.#policy.classes.applyPublish(message, {
      identity,
      protocolVersion: client.protocolVersion,
      now,
      ruleRetain: decision.retain,
      ruleMaxQos: decision.maxQos,
    })
  }

  /**
   * The Response Topic is a Topic Name the responder will publish to: no `$`
   * topic, and the publisher's own tenant. Whether the responder may publish
   * there is decided by the rules when it does.
   */
  #responseTopicStep(
    client: ClientInfo,
    identity: Identity,
    responseTopic: string,
    op: string,
  ): Denial | undefined {
    if (responseTopic.startsWith('$')) {
      return deny('policy.response-topic-dollar', ReasonCode.NotAuthorized)
    }
    return this.#tenantStep(client, identity, responseTopic, `${op}.response-topic`)
  }

  /** May the source of a stored retained message still publish there? */
  #isSourceStillAllowed(message: Message): boolean {
    const origin = message.originIdentity
    if (origin === undefined) return true
    if (this.#checkIdentity(origin)) return false
    if (checkTenantPrefix(origin, message.topic)) return false
    return this.#policy.rules.decidePublish(origin, message.topic).allow
  }

  // --- SUBSCRIBE -----------------------------------------------------------

  /** Each Topic Filter of a SUBSCRIBE, with its `$share` group if any. */
  authorizeSubscribe(client: ClientInfo, request: SubscribeRequest): SubscribeVerdict {
    const p = this.#policy
    const bad = this.#checkIdentity(client.identity)
    if (bad) return refusal(bad)
    const identity = client.identity as Identity
    const { filter, shareGroup } = request

    // 1. No PHI in the filter or the share group name (C21): 0x8F.
    const hit = p.detector.detectTopic(filter)[0]
    if (hit) return this.#refuse(`phi.filter.${hit.kind}`, ReasonCode.TopicFilterInvalid)
    if (shareGroup !== undefined) {
      if (!isSafeLevelValue(shareGroup)) {
        return this.#refuse('policy.share-group-name', ReasonCode.TopicFilterInvalid)
      }
      const groupHit = p.detector.detect(shareGroup)[0]
      if (groupHit) {
        return this.#refuse(`phi.share-group.${groupHit.kind}`, ReasonCode.TopicFilterInvalid)
      }
    }

    // 2. Guards (C16): `$` topics, root wildcards, device multi-level.
    const guard =
      checkDollar(p.guards, identity, filter, 'subscribe') ??
      checkWildcards(p.guards, identity, filter)
    if (guard) return this.#refuse(guard, ReasonCode.NotAuthorized)

    // 3. Tenant prefix (C18).
    const tenant = this.#tenantStep(client, identity, filter, 'subscribe')
    if (tenant) return refusal(tenant)

    // 4. Rules by containment, share group grant (C15, C17).
    const decision = p.rules.decideSubscribe(identity, filter, shareGroup)
    if (!decision.allow) return this.#refuse(decision.rule, ReasonCode.NotAuthorized)

    // A QoS above the maximum is granted lower, as MQTT 5 section 3.9.3 allows.
    return { allow: true, maxQos: Math.min(request.qos, decision.maxQos) as Qos }
  }

  #refuse(rule: string, reasonCode: number): Refusal {
    return { allow: false, rule, reasonCode }
  }

  // --- delivery ------------------------------------------------------------

  /**
   * Each delivery, retained and queued ones included, so a reload takes
   * effect on messages already stored (C15, C23).
   */
  authorizeDelivery(client: ClientInfo, message: Message, now = this.#clock.now()): boolean {
    const identity = client.identity
    if (!identity) return false
    const topic = message.topic

    if (message.expiresAt !== undefined && message.expiresAt <= now) return false
    let allowed = this.#delivered.get(identity, topic)
    if (allowed === undefined) {
      allowed = this.#isDeliveryTopicAllowed(identity, topic)
      this.#delivered.set(identity, topic, allowed)
    }
    if (!allowed) return false
    if (!message.retain) return true
    // A retained message whose class no longer allows retain, or whose source
    // lost the right to publish there, is not delivered (C15, C23).
    if (!this.#policy.classes.isRetainAllowed(identity, topic, now)) return false
    return this.#isSourceStillAllowed(message)
  }

  /** The steps of a delivery check that depend on identity and topic only. */
  #isDeliveryTopicAllowed(identity: Identity, topic: string): boolean {
    const p = this.#policy
    if (this.#checkIdentity(identity)) return false
    if (checkDollar(p.guards, identity, topic, 'subscribe')) return false
    if (p.detector.detectTopic(topic).length > 0) return false
    if (checkTenantPrefix(identity, topic)) return false
    return p.rules.decideDelivery(identity, topic).allow
  }

  // --- reload --------------------------------------------------------------

  /**
   * Validate and swap in a new `policy` section. An invalid policy changes
   * nothing and says why. On success the core must re-evaluate stored
   * subscriptions and queued messages with `authorizeSubscribe` and
   * `authorizeDelivery` (see docs/policy.md, "Reload").
   */
  reload(input: unknown): ReloadResult {
    const parsed = policySchema.safeParse(input)
    if (!parsed.success) {
      const errors = parsed.error.issues.map((i) => `${i.path.join('.') || 'policy'}: ${i.message}`)
      return this.#refuseReload(errors)
    }

    let next: CompiledPolicy
    try {
      next = this.#compile(parsed.data)
    } catch (err) {
      if (err instanceof PhimqError) return this.#refuseReload([err.message])
      throw err
    }

    const changes = diffPolicies(this.#policy.config, parsed.data)
    this.#policy = next
    this.#screen = new PropertyScreen(next.detector)
    this.#published = new TopicDecisions()
    this.#delivered = new TopicDecisions()
    this.#version += 1
    this.#options.audit?.emit({
      type: 'policy.reloaded',
      version: this.#version,
      changes: {
        'rules.added': changes.rules.added,
        'rules.removed': changes.rules.removed,
        'rules.changed': changes.rules.changed,
        'classes.added': changes.classes.added,
        'classes.removed': changes.classes.removed,
        'classes.changed': changes.classes.changed,
        'pseudonymKeys.changed': [
          ...changes.pseudonymKeys.added,
          ...changes.pseudonymKeys.removed,
          ...changes.pseudonymKeys.changed,
        ],
        sections: changes.sections,
      },
    })
    return { ok: true, version: this.#version, changes }
  }

  #refuseReload(errors: string[]): ReloadResult {
    this.#options.audit?.emit({ type: 'policy.reload-refused', problems: errors })
    return { ok: false, errors }
  }
}

/** What `createPolicyGate` needs besides the loaded config. */
export interface CreatePolicyGateOptions {
  readonly clock?: Clock | undefined
  readonly audit?: AuditSink | undefined
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

/**
 * The gate for a loaded config, for `src/server.ts`. A config without a
 * `policy` section is refused outside `dev` (no silent fallback); in `dev`
 * it gets `allowAllGate`.
 */
export function createPolicyGate(
  loaded: LoadedConfig,
  options: CreatePolicyGateOptions = {},
): Gate {
  const { config } = loaded
  if (config.policy === undefined) {
    if (config.environment === 'dev') return allowAllGate
    throw new PolicyInvalidError(
      `policy: missing in environment ${config.environment}; add a policy section ` +
        '(see docs/policy.md)',
    )
  }
  const baseDir = loaded.source === '<inline>' ? '.' : dirname(loaded.source)
  return new PolicyGate({
    policy: config.policy,
    environment: config.environment,
    clock: options.clock,
    audit: options.audit,
    env: options.env,
    baseDir,
  })
}
