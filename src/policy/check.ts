/**
 * Static checks of a parsed policy, run by the config schema: each problem
 * names its key path. The config's own topic patterns go through the PHI
 * detectors (C21): a hit is a config error, reported masked.
 */
import type { PolicyConfig } from '../config/policy.js'
import { PhiDetector } from '../phi/detectors.js'
import { compilePattern } from './pattern.js'

/** One thing wrong with a policy, at a key path. */
export interface PolicyProblem {
  readonly path: Array<string | number>
  readonly message: string
}

type Path = Array<string | number>

// A group holding `+`, `*` or `{n,}` followed by `+`, `*` or `{`.
const NESTED_REPETITION = /\([^()]*(?:[+*]|\{\d*,\})[^()]*\)\s*[+*{]/

/** Build the configured detector; a bad format is a problem, not a throw. */
function buildDetector(policy: PolicyConfig, problems: PolicyProblem[]): PhiDetector {
  const good = policy.detectors.formats.filter((format, i) => {
    // A group that repeats and holds a repetition, e.g. (\d+)+, can take
    // exponential time on a long topic: refuse it at load.
    if (NESTED_REPETITION.test(format.pattern)) {
      const message = 'nested repetition such as (x+)+ can stall the broker; bound it'
      problems.push({ path: ['detectors', 'formats', i, 'pattern'], message })
      return false
    }
    try {
      new PhiDetector({ formats: [format] })
      return true
    } catch (err) {
      const why = err instanceof SyntaxError ? err.message : 'invalid'
      problems.push({ path: ['detectors', 'formats', i, 'pattern'], message: why })
      return false
    }
  })
  return new PhiDetector({ formats: good, zip: policy.detectors.zip })
}

function checkPattern(
  source: string,
  path: Path,
  detector: PhiDetector,
  problems: PolicyProblem[],
): void {
  try {
    compilePattern(source)
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message : 'invalid'
    problems.push({ path, message: `topic pattern: ${why}` })
    return
  }
  const kinds = [...new Set(detector.detectTopic(source).map((h) => h.kind))]
  if (kinds.length > 0) {
    const masked = detector.maskTopic(source)
    problems.push({
      path,
      message: `topic pattern ${masked} holds phi (${kinds.join(', ')}); topics must be phi-free`,
    })
  }
}

function checkUnique(names: string[], base: Path, problems: PolicyProblem[]): void {
  const seen = new Set<string>()
  names.forEach((n, i) => {
    if (seen.has(n)) problems.push({ path: [...base, i, 'name'], message: `duplicate name ${n}` })
    seen.add(n)
  })
}

function checkRules(policy: PolicyConfig, detector: PhiDetector, problems: PolicyProblem[]) {
  checkUnique(
    policy.rules.map((r) => r.name),
    ['rules'],
    problems,
  )
  policy.rules.forEach((rule, i) => {
    rule.topics.forEach((topic, j) => {
      const path = ['rules', i, 'topics', j]
      checkPattern(topic, path, detector, problems)
      // A leading wildcard would reach every tenant's namespace (C18).
      const first = topic.split('/')[0]
      if (first === '+' || first === '#') {
        problems.push({ path, message: 'a rule pattern may not begin with a wildcard (C18)' })
      }
    })
    rule.shareGroups.forEach((group, j) => {
      if (/[/+#]/.test(group) || group.includes('\u0000') || detector.hasPhi(group)) {
        const message = 'share group names hold no "/", "+", "#" or phi'
        problems.push({ path: ['rules', i, 'shareGroups', j], message })
      }
    })
    for (const key of ['tenant', 'role', 'id'] as const) {
      const value = rule.who[key]
      if (value !== undefined && detector.hasPhi(value)) {
        problems.push({ path: ['rules', i, 'who', key], message: 'identity match holds phi' })
      }
    }
  })
}

function checkClasses(policy: PolicyConfig, detector: PhiDetector, problems: PolicyProblem[]) {
  checkUnique(
    policy.classes.map((c) => c.name),
    ['classes'],
    problems,
  )
  policy.classes.forEach((cls, i) => {
    const at = (...rest: Path): Path => ['classes', i, ...rest]
    cls.topics.forEach((t, j) => {
      checkPattern(t, at('topics', j), detector, problems)
    })
    cls.retainExceptions.forEach((e, j) => {
      checkPattern(e.topic, at('retainExceptions', j, 'topic'), detector, problems)
    })
    if (cls.phi && cls.retain) {
      const message = 'a phi class may not allow retain; list retainExceptions instead (C23)'
      problems.push({ path: at('retain'), message })
    }
    if (cls.phi && !cls.payload) {
      const message = 'a phi class needs a payload rule: json with fields, or binary with a reason'
      problems.push({ path: at('payload'), message })
    }
    if (cls.messageExpiry.defaultSeconds > cls.messageExpiry.maxSeconds) {
      const message = 'defaultSeconds is above maxSeconds'
      problems.push({ path: at('messageExpiry', 'defaultSeconds'), message })
    }
  })
  const names = new Set(policy.classes.map((c) => c.name))
  if (policy.defaultClass !== undefined && !names.has(policy.defaultClass)) {
    problems.push({ path: ['defaultClass'], message: `no class named ${policy.defaultClass}` })
  }
}

/** Every static problem of the policy, in config order. */
export function checkPolicy(policy: PolicyConfig): PolicyProblem[] {
  const problems: PolicyProblem[] = []
  const detector = buildDetector(policy, problems)
  checkUnique(
    policy.detectors.formats.map((f) => f.name),
    ['detectors', 'formats'],
    problems,
  )
  checkRules(policy, detector, problems)
  checkClasses(policy, detector, problems)

  const tenants = new Set<string>()
  policy.pseudonymKeys.forEach((key, i) => {
    if (tenants.has(key.tenant)) {
      const message = `more than one key for tenant ${key.tenant}; rotate by changing keyId`
      problems.push({ path: ['pseudonymKeys', i, 'tenant'], message })
    }
    tenants.add(key.tenant)
  })
  return problems
}
