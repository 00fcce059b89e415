/**
 * Topic patterns of the policy: MQTT filters whose levels may be the
 * placeholders `{tenant}`, `{id}` or `{role}`. A placeholder is a whole
 * level and is replaced by one identity value, which is checked to hold no
 * `+`, `#`, `/`, `$` or U+0000: a value can never act as a wildcard, span
 * levels or reach a `$` topic (C15).
 */
import type { Identity } from '../broker/types.js'
import { isValidFilter } from './topic-filter.js'

/** Placeholders a topic pattern may use, each a whole level. */
export const PLACEHOLDERS = ['tenant', 'id', 'role'] as const
/** One placeholder name. */
export type Placeholder = (typeof PLACEHOLDERS)[number]

type Level =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'placeholder'; readonly name: Placeholder }

/** A compiled pattern: its source and levels. */
export interface TopicPattern {
  readonly source: string
  readonly levels: readonly Level[]
}

const NUL = '\u0000'

/**
 * True when `value` holds a character that means something in a topic:
 * `+`, `#`, `/`, `$` or U+0000.
 */
export function hasTopicMetacharacter(value: string): boolean {
  return /[+#/$]/.test(value) || value.includes(NUL)
}

/** True when `value` can stand in for a whole topic level. */
export function isSafeLevelValue(value: string): boolean {
  return value.length > 0 && value.length <= 128 && !hasTopicMetacharacter(value)
}

/** True when every value the identity carries is safe to substitute. */
export function isSafeIdentity(identity: Identity): boolean {
  const values = [identity.id, identity.tenant, identity.role]
  return values.every((v) => v === undefined || isSafeLevelValue(v))
}

/** Parse a pattern; throws a `SyntaxError` saying what is wrong. */
export function compilePattern(source: string): TopicPattern {
  const levels = source.split('/').map((level): Level => {
    const m = /^\{([a-z]+)\}$/.exec(level)
    if (m) {
      const name = m[1] as Placeholder
      if (!PLACEHOLDERS.includes(name)) throw new SyntaxError(`unknown placeholder {${m[1]}}`)
      return { kind: 'placeholder', name }
    }
    if (/[{}]/.test(level)) {
      throw new SyntaxError('a placeholder must be a whole level, like a/{id}/b')
    }
    return { kind: 'literal', value: level }
  })

  // Check the wildcards with placeholders read as plain levels.
  const shape = levels.map((l) => (l.kind === 'literal' ? l.value : 'x')).join('/')
  if (!isValidFilter(shape)) throw new SyntaxError('not a valid topic filter')
  if (levels[0]?.kind === 'literal' && levels[0].value.startsWith('$share')) {
    throw new SyntaxError('use shareGroups, not $share in a pattern')
  }
  return { source, levels }
}

/**
 * The filter this pattern means for one identity, or `undefined` when the
 * identity lacks a value the pattern needs or holds an unsafe one.
 */
export function resolvePattern(pattern: TopicPattern, identity: Identity): string | undefined {
  const out: string[] = []
  for (const level of pattern.levels) {
    if (level.kind === 'literal') {
      out.push(level.value)
      continue
    }
    const value = identity[level.name]
    if (value === undefined || !isSafeLevelValue(value)) return undefined
    out.push(value)
  }
  return out.join('/')
}

/** Match an identity value against a `who` glob (`*` is any run of characters). */
export function globMatches(glob: string, value: string | undefined): boolean {
  if (value === undefined) return false
  if (!glob.includes('*')) return glob === value
  const parts = glob.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${parts.join('.*')}$`, 's').test(value)
}
