/**
 * Remembered topic decisions of one policy version (issue #7, hot path).
 *
 * The steps of a publish or delivery check that depend only on who asks and
 * on the Topic Name (identity, `$` guard, PHI in the topic, tenant prefix,
 * rules) give the same answer for every message on that topic. A fan-in of
 * a thousand messages a second on a hundred topics asks a hundred questions,
 * not a thousand. A cache belongs to one compiled policy, so a reload
 * starts from an empty one: nothing decided under the old rules survives.
 *
 * Keyed by the identity object (mapped identities are frozen, one per
 * certificate mapping), then by topic; an identity's map is cleared when it
 * reaches `TOPIC_DECISIONS_MAX_ENTRIES`, so memory stays bounded per
 * identity and goes with it.
 */
import type { Identity } from '../broker/types.js'

/** Topics remembered per identity before its map starts over. */
export const TOPIC_DECISIONS_MAX_ENTRIES = 1024

/** Decisions of type `T` per identity and Topic Name. */
export class TopicDecisions<T> {
  readonly #byIdentity = new WeakMap<Identity, Map<string, T>>()

  /** The decision remembered for `identity` on `topic`, if any. */
  get(identity: Identity, topic: string): T | undefined {
    return this.#byIdentity.get(identity)?.get(topic)
  }

  /** Remember a decision; never call it for one with side effects (audit events). */
  set(identity: Identity, topic: string, decision: T): void {
    let byTopic = this.#byIdentity.get(identity)
    if (!byTopic) {
      byTopic = new Map()
      this.#byIdentity.set(identity, byTopic)
    } else if (byTopic.size >= TOPIC_DECISIONS_MAX_ENTRIES) {
      byTopic.clear()
    }
    byTopic.set(topic, decision)
  }
}
