/**
 * Builds one immutable policy version from a validated `policy` section:
 * rules, classes, guards, detectors, keys and session caps. A version is
 * swapped in whole, so a decision never sees half of a reload.
 */
import type { Identity } from '../broker/types.js'
import type { PolicyConfig } from '../config/policy.js'
import type { ENVIRONMENTS } from '../config/schema.js'
import { PolicyInvalidError } from '../errors.js'
import { PhiDetector } from '../phi/detectors.js'
import type { GuardSettings } from './guards.js'
import { type KeySources, loadPseudonymKeys } from './pseudonym.js'
import { RuleSet } from './rules.js'
import { TopicClasses } from './topic-classes.js'

/** The config's `environment`: guards are mandatory in `prod`. */
export type Environment = (typeof ENVIRONMENTS)[number]

/** One compiled policy version. */
export interface CompiledPolicy {
  readonly config: PolicyConfig
  readonly rules: RuleSet
  readonly classes: TopicClasses
  readonly detector: PhiDetector
  readonly guards: GuardSettings
  /** Session Expiry cap for an identity, in seconds (C24). */
  sessionExpiryMaxSeconds(identity: Identity): number
}

/** What compiling a policy needs besides the policy: environment and key sources. */
export interface CompileOptions extends KeySources {
  readonly environment: Environment
}

/**
 * Compile a policy. Throws `PolicyInvalidError` (guards off in `prod`, a
 * pattern the schema let through) or `PseudonymKeyError` (a key).
 */
export function compilePolicy(config: PolicyConfig, options: CompileOptions): CompiledPolicy {
  if (options.environment === 'prod' && !config.guards.enabled) {
    throw new PolicyInvalidError('policy.guards.enabled: guards cannot be turned off in prod')
  }

  let rules: RuleSet
  let classes: TopicClasses
  let detector: PhiDetector
  const keys = loadPseudonymKeys(config.pseudonymKeys, options)
  try {
    rules = new RuleSet(config.rules)
    classes = new TopicClasses(config.classes, config.defaultClass, keys)
    detector = new PhiDetector({ formats: config.detectors.formats, zip: config.detectors.zip })
  } catch (err) {
    // The schema's checks catch these first; this is for policies built in code.
    throw new PolicyInvalidError('policy: a topic pattern or format is invalid', { cause: err })
  }

  const byRole = new Map(config.sessions.byRole.map((r) => [r.role, r.expiryMaxSeconds]))
  return {
    config,
    rules,
    classes,
    detector,
    guards: {
      enabled: config.guards.enabled,
      deviceRoles: new Set(config.guards.deviceRoles),
      operationsRoles: new Set(config.guards.operationsRoles),
      requireTenant: config.tenancy.requireTenant,
    },
    sessionExpiryMaxSeconds(identity) {
      const forRole = identity.role === undefined ? undefined : byRole.get(identity.role)
      return Math.min(config.sessions.expiryMaxSeconds, forRole ?? Number.POSITIVE_INFINITY)
    },
  }
}

/** Names added, removed and changed between two lists of named entries. */
export interface NameDiff {
  readonly added: string[]
  readonly removed: string[]
  readonly changed: string[]
}

/** What a reload changed; the core re-evaluates sessions when `changed`. */
export interface PolicyChanges {
  readonly changed: boolean
  readonly rules: NameDiff
  readonly classes: NameDiff
  /** By tenant: a changed key id means pseudonyms change from now on. */
  readonly pseudonymKeys: NameDiff
  /** Top-level sections other than the above that differ, e.g. `guards`. */
  readonly sections: string[]
}

function diffByName<T>(before: readonly T[], after: readonly T[], nameOf: (t: T) => string) {
  const a = new Map(before.map((t) => [nameOf(t), JSON.stringify(t)]))
  const b = new Map(after.map((t) => [nameOf(t), JSON.stringify(t)]))
  const diff: NameDiff = { added: [], removed: [], changed: [] }
  for (const [name, text] of b) {
    if (!a.has(name)) diff.added.push(name)
    else if (a.get(name) !== text) diff.changed.push(name)
  }
  for (const name of a.keys()) if (!b.has(name)) diff.removed.push(name)
  return diff
}

function isEmpty(d: NameDiff): boolean {
  return d.added.length + d.removed.length + d.changed.length === 0
}

/** Compare two policies section by section. */
export function diffPolicies(before: PolicyConfig, after: PolicyConfig): PolicyChanges {
  const rules = diffByName(before.rules, after.rules, (r) => r.name)
  const classes = diffByName(before.classes, after.classes, (c) => c.name)
  const pseudonymKeys = diffByName(before.pseudonymKeys, after.pseudonymKeys, (k) => k.tenant)
  const others = ['tenancy', 'guards', 'defaultClass', 'detectors', 'sessions'] as const
  const sections = others.filter(
    (k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  ) as string[]
  const changed =
    !isEmpty(rules) || !isEmpty(classes) || !isEmpty(pseudonymKeys) || sections.length > 0
  return { changed, rules, classes, pseudonymKeys, sections }
}
