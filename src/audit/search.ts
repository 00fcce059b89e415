/**
 * `phimq audit search`: reads a trail directory and yields the records that
 * match a time range, event types, an identity and an MQTT topic filter.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { listSegments } from './segments.js'

export interface SearchQuery {
  /** Epoch ms, inclusive. */
  readonly from?: number | undefined
  /** Epoch ms, exclusive. */
  readonly to?: number | undefined
  /** Exact types, or a prefix ending in `.*` (e.g. `retained.*`). */
  readonly types?: readonly string[] | undefined
  /** Client id or identity id. */
  readonly client?: string | undefined
  /** An MQTT Topic Filter matched against the record's topic or filter. */
  readonly topic?: string | undefined
}

/** One found record with its place in the trail. */
export interface SearchHit {
  readonly segment: string
  readonly index: number
  readonly record: Readonly<Record<string, unknown>>
}

/** Records of `dir` matching `query`, oldest first. */
export function* searchTrail(dir: string, query: SearchQuery): Generator<SearchHit> {
  for (const segment of listSegments(dir)) {
    const lines = readFileSync(join(dir, segment), 'utf8').split('\n')
    for (const [index, line] of lines.entries()) {
      if (line === '') continue
      let record: Record<string, unknown>
      try {
        record = JSON.parse(line) as Record<string, unknown>
      } catch {
        // `audit verify` reports it; search skips what it cannot read.
        continue
      }
      if (recordMatches(record, query)) yield { segment, index, record }
    }
  }
}

/** Whether one record passes every condition of `query`. */
export function recordMatches(record: Record<string, unknown>, query: SearchQuery): boolean {
  const time = typeof record.time === 'string' ? Date.parse(record.time) : Number.NaN
  if (query.from !== undefined && !(time >= query.from)) return false
  if (query.to !== undefined && !(time < query.to)) return false
  if (query.types && query.types.length > 0 && !typeMatches(String(record.type), query.types)) {
    return false
  }
  if (query.client !== undefined && !identitiesOf(record).includes(query.client)) return false
  if (query.topic !== undefined) {
    const topic = record.topic ?? record.filter
    if (typeof topic !== 'string' || !topicFilterMatches(query.topic, topic)) return false
  }
  return true
}

function typeMatches(type: string, types: readonly string[]): boolean {
  return types.some((t) => (t.endsWith('.*') ? type.startsWith(t.slice(0, -1)) : t === type))
}

function identitiesOf(record: Record<string, unknown>): string[] {
  const out: string[] = []
  const push = (v: unknown): void => {
    if (typeof v === 'string') out.push(v)
  }
  push(record.clientId)
  push(record.identityId)
  const actor = record.actor as Record<string, unknown> | undefined
  if (actor && typeof actor === 'object') {
    push(actor.clientId)
    const identity = actor.identity as Record<string, unknown> | undefined
    if (identity && typeof identity === 'object') push(identity.id)
  }
  return out
}

/**
 * MQTT Topic Filter matching (MQTT 5 section 4.7). A subscription filter in
 * a record is matched as if its `+` and `#` were plain levels. Wildcards at
 * the first level do not match topics starting with `$` [MQTT-4.7.2-1].
 */
export function topicFilterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}
