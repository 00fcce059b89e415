/**
 * Topic Names and Topic Filters (MQTT 5.0 section 4.7; 3.1.1 section 4.7).
 * Pure functions over strings; the UTF-8 rules are checked on the raw bytes
 * in `utf8-fields.ts`.
 */

/** Why a topic or filter was refused; `undefined` means valid. */
export type TopicProblem =
  | 'empty'
  | 'too-long'
  | 'too-many-levels'
  | 'wildcard-in-name'
  | 'misplaced-wildcard'
  | 'null-character'
  | 'bad-share-name'

export interface TopicLimits {
  readonly maxTopicLengthBytes: number
  readonly maxTopicLevels: number
}

function countLevels(topic: string, max: number): number {
  let levels = 1
  for (let i = 0; i < topic.length; i++) {
    if (topic.charCodeAt(i) === 0x2f && ++levels > max) return levels
  }
  return levels
}

/** Check a Topic Name of a PUBLISH or will. */
export function checkTopicName(topic: string, limits: TopicLimits): TopicProblem | undefined {
  // [MQTT-4.7.3-1] at least one character
  if (topic.length === 0) return 'empty'
  if (isLongerThan(topic, limits.maxTopicLengthBytes)) return 'too-long'
  // One pass: characters and levels together.
  let levels = 1
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i)
    // [MQTT-3.3.2-2] no wildcard characters in a Topic Name
    if (c === 0x23 || c === 0x2b) return 'wildcard-in-name'
    // [MQTT-4.7.3-2] no U+0000
    if (c === 0) return 'null-character'
    if (c === 0x2f) levels++
  }
  if (levels > limits.maxTopicLevels) return 'too-many-levels'
  return undefined
}

/**
 * True when `text` takes more than `maxBytes` in UTF-8. Each UTF-16 unit
 * takes 1 to 3 bytes (a surrogate pair, two units, takes 4), so the length
 * bounds the byte count on both sides and most topics are never measured.
 */
function isLongerThan(text: string, maxBytes: number): boolean {
  if (text.length > maxBytes) return true
  if (text.length * 3 <= maxBytes) return false
  return Buffer.byteLength(text) > maxBytes
}

/** Check a Topic Filter (without any `$share/` prefix). */
export function checkTopicFilter(filter: string, limits: TopicLimits): TopicProblem | undefined {
  if (filter.length === 0) return 'empty'
  if (isLongerThan(filter, limits.maxTopicLengthBytes)) return 'too-long'
  // Count first: a filter with tens of thousands of levels is refused
  // before anything is split or allocated for it.
  if (countLevels(filter, limits.maxTopicLevels) > limits.maxTopicLevels) return 'too-many-levels'
  const n = filter.length
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i)
    if (c === 0) return 'null-character'
    const levelStart = i === 0 || filter.charCodeAt(i - 1) === 0x2f
    const levelEnd = i === n - 1 || filter.charCodeAt(i + 1) === 0x2f
    // [MQTT-4.7.1-1] '#' alone in its level and last
    if (c === 0x23 && !(levelStart && i === n - 1)) return 'misplaced-wildcard'
    // [MQTT-4.7.1-2] '+' occupies a whole level
    if (c === 0x2b && !(levelStart && levelEnd)) return 'misplaced-wildcard'
  }
  return undefined
}

/** A subscription's filter split into its share group (if any) and the filter proper. */
export interface ParsedFilter {
  readonly shareGroup?: string | undefined
  readonly filter: string
}

const SHARE_PREFIX = '$share/'

/**
 * Split `$share/{ShareName}/{filter}` [MQTT-4.8.2-1, MQTT-4.8.2-2]. Returns
 * the problem for an ill-formed share; plain filters come back as they are.
 */
export function parseSubscriptionFilter(raw: string): ParsedFilter | TopicProblem {
  if (!raw.startsWith(SHARE_PREFIX)) return { filter: raw }
  const rest = raw.slice(SHARE_PREFIX.length)
  const slash = rest.indexOf('/')
  if (slash <= 0) return 'bad-share-name'
  const shareGroup = rest.slice(0, slash)
  // [MQTT-4.8.2-2] the ShareName has no '/', '+' or '#'
  if (/[+#]/.test(shareGroup)) return 'bad-share-name'
  const filter = rest.slice(slash + 1)
  if (filter.length === 0) return 'empty'
  return { shareGroup, filter }
}

/** True when a value is a problem rather than a parsed filter. */
export function isTopicProblem(v: ParsedFilter | TopicProblem): v is TopicProblem {
  return typeof v === 'string'
}

/**
 * Does `filter` match `topic`? Used off the hot path (retained messages,
 * policy); routing uses the subscription tree.
 */
export function topicMatches(filter: string, topic: string): boolean {
  // [MQTT-4.7.2-1] a filter starting with a wildcard does not match '$' topics
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}
