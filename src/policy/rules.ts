/**
 * The compiled rule set (C15, C17): identities bound to allow/deny on
 * publish/subscribe for topic patterns. Default deny; a deny rule wins over
 * any allow rule. A subscription is allowed only when one allow rule's
 * pattern contains the whole filter, and no deny rule's pattern overlaps it.
 */
import type { Identity, Qos } from '../broker/types.js'
import type { RuleConfig } from '../config/policy.js'
import { compilePattern, globMatches, resolvePattern, type TopicPattern } from './pattern.js'
import { filterContains, filtersIntersect, levelsMatch, levelsOf } from './topic-filter.js'

/** The two actions a rule governs; `subscribe` also governs delivery. */
export type Action = 'publish' | 'subscribe'

/** Rule names of the decisions this module makes. */
export const RULE_DEFAULT_DENY = 'policy.default-deny'
/** Rule name when a `$share` group is not granted (C17). */
export const RULE_SHARE_GROUP = 'policy.share-group'

interface CompiledRule {
  readonly name: string
  readonly effect: 'allow' | 'deny'
  readonly who: RuleConfig['who']
  readonly actions: ReadonlySet<Action>
  readonly patterns: readonly TopicPattern[]
  readonly maxQos: Qos
  readonly retain: boolean
  readonly shareGroups: readonly string[]
}

/** What the rules say about one action. */
export type AccessDecision =
  | {
      readonly allow: true
      /** Highest QoS among the allowing rules. */
      readonly maxQos: Qos
      /** Whether any allowing rule permits RETAIN=1. */
      readonly retain: boolean
    }
  | { readonly allow: false; readonly rule: string }

function bindsIdentity(rule: CompiledRule, identity: Identity): boolean {
  const { tenant, role, id } = rule.who
  if (tenant !== undefined && !globMatches(tenant, identity.tenant)) return false
  if (role !== undefined && !globMatches(role, identity.role)) return false
  return id === undefined || globMatches(id, identity.id)
}

/** The filters of a rule for one identity (patterns it cannot fill drop out). */
function filtersFor(rule: CompiledRule, identity: Identity): string[] {
  const out: string[] = []
  for (const p of rule.patterns) {
    const f = resolvePattern(p, identity)
    if (f !== undefined) out.push(f)
  }
  return out
}

function allowOf(rules: readonly CompiledRule[]): AccessDecision {
  if (rules.length === 0) return { allow: false, rule: RULE_DEFAULT_DENY }
  const maxQos = Math.max(...rules.map((r) => r.maxQos)) as Qos
  return { allow: true, maxQos, retain: rules.some((r) => r.retain) }
}

/** A rule with its patterns resolved for one identity. */
interface BoundRule {
  readonly rule: CompiledRule
  readonly filters: readonly string[]
  /** `filters`, split into levels once. */
  readonly levels: ReadonlyArray<readonly string[]>
}

// Identities repeat: remember this many bindings, then start over.
const BINDING_CACHE_MAX_ENTRIES = 4096

/** Rules compiled once per policy version. */
export class RuleSet {
  readonly #rules: readonly CompiledRule[]
  readonly #bindings = new Map<string, readonly BoundRule[]>()

  /** Throws `SyntaxError` on a bad pattern (the config check reports it first). */
  constructor(rules: readonly RuleConfig[]) {
    this.#rules = rules.map((r) => ({
      name: r.name,
      effect: r.effect,
      who: r.who,
      actions: new Set(r.actions),
      patterns: r.topics.map(compilePattern),
      maxQos: r.maxQos,
      retain: r.retain,
      shareGroups: r.shareGroups,
    }))
  }

  /**
   * The rules binding `identity` for `action`, patterns resolved. Cached by
   * identity: the gate has refused identities holding `/` or U+0000 before
   * they get here, so the key below is unambiguous.
   */
  #binding(identity: Identity, action: Action): readonly BoundRule[] {
    const key = `${action}\u0000${identity.tenant ?? ''}\u0000${identity.role ?? ''}\u0000${identity.id}`
    const cached = this.#bindings.get(key)
    if (cached) return cached
    const bound = this.#rules
      .filter((r) => r.actions.has(action) && bindsIdentity(r, identity))
      .map((rule) => {
        const filters = filtersFor(rule, identity)
        return { rule, filters, levels: filters.map(levelsOf) }
      })
    if (this.#bindings.size >= BINDING_CACHE_MAX_ENTRIES) this.#bindings.clear()
    this.#bindings.set(key, bound)
    return bound
  }

  /** May `identity` publish to the Topic Name `topic`? */
  decidePublish(identity: Identity, topic: string): AccessDecision {
    return this.#decideTopic(identity, 'publish', topic)
  }

  /** May `identity` receive a message published to `topic`? (delivery, C15) */
  decideDelivery(identity: Identity, topic: string): AccessDecision {
    return this.#decideTopic(identity, 'subscribe', topic)
  }

  #decideTopic(identity: Identity, action: Action, topic: string): AccessDecision {
    const t = levelsOf(topic)
    const matching = this.#binding(identity, action)
      .filter((b) => b.levels.some((f) => levelsMatch(f, t)))
      .map((b) => b.rule)
    const deny = matching.find((r) => r.effect === 'deny')
    if (deny) return { allow: false, rule: `policy.rule.${deny.name}` }
    return allowOf(matching)
  }

  /**
   * May `identity` subscribe to `filter` (without its `$share` prefix),
   * optionally in `shareGroup`? Containment, not string comparison.
   */
  decideSubscribe(identity: Identity, filter: string, shareGroup?: string): AccessDecision {
    const bound = this.#binding(identity, 'subscribe')
    const deny = bound.find(
      (b) => b.rule.effect === 'deny' && b.filters.some((f) => filtersIntersect(f, filter)),
    )
    if (deny) return { allow: false, rule: `policy.rule.${deny.rule.name}` }

    const containing = bound
      .filter((b) => b.rule.effect === 'allow' && b.filters.some((f) => filterContains(f, filter)))
      .map((b) => b.rule)
    if (containing.length === 0 || shareGroup === undefined) return allowOf(containing)

    // Joining a shared group needs an explicit grant on a containing rule (C17).
    const granting = containing.filter((r) => r.shareGroups.some((g) => globMatches(g, shareGroup)))
    if (granting.length === 0) return { allow: false, rule: RULE_SHARE_GROUP }
    return allowOf(granting)
  }
}
