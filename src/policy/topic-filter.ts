/**
 * Topic Name and Topic Filter algebra for the policy: matching, containment
 * and overlap of filters (MQTT 5.0 section 4.7). Pure functions over
 * strings; the inputs are assumed to be valid per the protocol layer, and
 * `isValidFilter` is there for the config.
 */

/** Levels of a topic or filter: `a//b` has an empty middle level. */
export function levelsOf(topic: string): string[] {
  return topic.split('/')
}

/** A `$`-topic is matched by no filter whose first level is a wildcard [MQTT-4.7.2-1]. */
function isDollar(level: string | undefined): boolean {
  return level?.startsWith('$') === true
}

/**
 * A valid Topic Filter: `#` only as the last level and alone in it
 * [MQTT-4.7.1-1], `+` alone in its level [MQTT-4.7.1-2], no U+0000
 * [MQTT-4.7.3-2], at least one character [MQTT-4.7.3-1].
 */
export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false
  const levels = levelsOf(filter)
  return levels.every((level, i) => {
    if (level === '#') return i === levels.length - 1
    return !level.includes('#') && (level === '+' || !level.includes('+'))
  })
}

/** A valid Topic Name: no wildcards, no U+0000, not empty [MQTT-4.7.3-1]. */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !/[+#]/.test(topic) && !topic.includes('\u0000')
}

/** True when `filter` matches the Topic Name `topic` (section 4.7). */
export function topicMatches(filter: string, topic: string): boolean {
  return levelsMatch(levelsOf(filter), levelsOf(topic))
}

/** `topicMatches` over levels already split, for hot paths. */
export function levelsMatch(f: readonly string[], t: readonly string[]): boolean {
  if ((f[0] === '+' || f[0] === '#') && isDollar(t[0])) return false
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}

/**
 * True when every Topic Name that `inner` can match is also matched by
 * `outer`. This is containment of the sets of topics, not a string test:
 * `ward/+/ecg` is not contained in `ward/dev-1/ecg`, while `a/b` is
 * contained in `a/#` and `a` is too (`#` also matches the parent level).
 */
export function filterContains(outer: string, inner: string): boolean {
  const o = levelsOf(outer)
  const n = levelsOf(inner)

  // A wildcard first level in `outer` misses `$` topics that `inner` names.
  if ((o[0] === '+' || o[0] === '#') && isDollar(n[0])) return false

  for (let i = 0; i < o.length; i++) {
    const level = o[i]
    if (level === '#') return true
    if (i >= n.length) return false
    const other = n[i]
    // `#` in inner reaches deeper than any single outer level can.
    if (other === '#') return false
    if (level === '+') continue
    // A literal outer level contains only the same literal.
    if (other !== level) return false
  }
  // Outer ran out of levels: inner must end here too.
  return n.length === o.length
}

/**
 * True when some Topic Name is matched by both filters. Used for deny
 * rules: a subscription overlapping a denied area is refused.
 */
export function filtersIntersect(a: string, b: string): boolean {
  const x = levelsOf(a)
  const y = levelsOf(b)

  // A wildcard first level on one side cannot meet a `$` literal on the other.
  const xWild = x[0] === '+' || x[0] === '#'
  const yWild = y[0] === '+' || y[0] === '#'
  if ((xWild && isDollar(y[0]) && !yWild) || (yWild && isDollar(x[0]) && !xWild)) return false

  const n = Math.max(x.length, y.length)
  for (let i = 0; i < n; i++) {
    const p = x[i]
    const q = y[i]
    if (p === '#' || q === '#') return true
    // One side ended: only a trailing `#` on the other could still meet it.
    if (p === undefined || q === undefined) return false
    if (p !== '+' && q !== '+' && p !== q) return false
  }
  return true
}
