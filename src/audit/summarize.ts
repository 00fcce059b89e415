/**
 * Per-message volume control (C25): allowed publishes and deliveries become
 * one `traffic.summary` per client, topic, direction and minute, with
 * counts and bytes, enough to answer "which clients received messages on
 * this topic between these times". Every other event passes through one by
 * one. `mode: 'per-message'` passes everything through unchanged.
 */
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import { maskTopic as maskWithDefaultDetector } from '../phi/detectors.js'
import type { AuditEvent } from './events.js'
import { isSinkHealthy } from './health.js'
import type { AuditSink } from './sink.js'

export type TrafficAuditMode = 'summary' | 'per-message'

export interface SummarizingOptions {
  readonly clock?: Clock | undefined
  /** Default `summary`. */
  readonly mode?: TrafficAuditMode | undefined
  /** Window length; default one minute, aligned to the wall clock. */
  readonly windowMs?: number | undefined
  /** Flush a window early once it holds this many client/topic pairs. Default 100 000. */
  readonly maxEntries?: number | undefined
  /**
   * Masks the topic of each summary (C21, C26): the policy gate's
   * `maskTopic` in the broker; default, the default PHI detectors.
   */
  readonly maskTopic?: ((topic: string) => string) | undefined
}

type Counted = Extract<AuditEvent, { type: 'publish.allowed' | 'message.delivered' }>
type Summary = Extract<AuditEvent, { type: 'traffic.summary' }>

interface Entry {
  direction: 'in' | 'out'
  clientId: string
  identityId: string | undefined
  tenant: string | undefined
  topic: string
  messages: number
  bytes: number
  byQos: [number, number, number]
}

/** An `AuditSink` wrapper that sums allowed traffic per minute. */
export class SummarizingAuditSink implements AuditSink {
  readonly #inner: AuditSink
  readonly #clock: Clock
  readonly #mode: TrafficAuditMode
  readonly #windowMs: number
  readonly #maxEntries: number
  readonly #maskTopic: (topic: string) => string
  // Keyed by client input (client id, topic): Maps, never objects. Nested
  // by direction, client and topic so counting builds no key strings.
  #inbound = new Map<string, Map<string, Entry>>()
  #outbound = new Map<string, Map<string, Entry>>()
  #entryCount = 0
  #windowStart = 0
  #timer: TimerHandle | undefined

  constructor(inner: AuditSink, options: SummarizingOptions = {}) {
    this.#inner = inner
    this.#clock = options.clock ?? systemClock
    this.#mode = options.mode ?? 'summary'
    this.#windowMs = options.windowMs ?? 60_000
    this.#maxEntries = options.maxEntries ?? 100_000
    this.#maskTopic = options.maskTopic ?? maskWithDefaultDetector
  }

  /** Passes on the inner sink's health (back-pressure rule, see `trail.ts`). */
  healthy(): boolean {
    return isSinkHealthy(this.#inner)
  }

  emit(event: AuditEvent): void {
    if (!isCounted(event)) {
      this.#inner.emit(event)
      return
    }
    if (this.#mode === 'per-message') {
      // One event per message: the topic is masked as in a summary (the
      // detectors cache per topic, so repeats cost a lookup).
      this.#inner.emit({ ...event, topic: this.#maskTopic(event.topic) })
      return
    }
    const now = this.#clock.now()
    const start = now - (now % this.#windowMs)
    if (this.#entryCount > 0 && start !== this.#windowStart) this.flush()
    if (this.#entryCount === 0) this.#openWindow(start)
    this.#count(event)
    if (this.#entryCount >= this.#maxEntries) this.flush(now)
  }

  /** Emit the summaries of the open window now; `end` defaults to the window's end. */
  flush(end?: number): void {
    this.#timer?.cancel()
    this.#timer = undefined
    if (this.#entryCount === 0) return
    const from = new Date(this.#windowStart).toISOString()
    const to = new Date(end ?? this.#windowStart + this.#windowMs).toISOString()
    const all = [...this.#inbound.values(), ...this.#outbound.values()]
    this.#inbound = new Map()
    this.#outbound = new Map()
    this.#entryCount = 0
    for (const byTopic of all) {
      for (const e of byTopic.values()) {
        // Masked here, once per client, topic and minute, whatever the
        // event carried: a topic the gate let through may still be flagged
        // by a later detector, and the summary must never hold it raw.
        const topic = this.#maskTopic(e.topic)
        const summary: Summary = { type: 'traffic.summary', ...e, topic, from, to }
        this.#inner.emit(summary)
      }
    }
  }

  async close(): Promise<void> {
    this.flush(this.#clock.now())
    await this.#inner.close()
  }

  #openWindow(start: number): void {
    this.#windowStart = start
    // Fire at the window's end so a quiet minute is still summarized on time.
    this.#timer = this.#clock.schedule(start + this.#windowMs - this.#clock.now(), () => {
      this.#timer = undefined
      this.flush()
    })
  }

  #count(event: Counted): void {
    const direction = event.type === 'publish.allowed' ? 'in' : 'out'
    const clientId = event.actor.clientId
    const byClient = direction === 'in' ? this.#inbound : this.#outbound
    let byTopic = byClient.get(clientId)
    if (!byTopic) {
      byTopic = new Map()
      byClient.set(clientId, byTopic)
    }
    let entry = byTopic.get(event.topic)
    if (!entry) {
      entry = {
        direction,
        clientId,
        identityId: event.actor.identity?.id,
        tenant: event.actor.identity?.tenant,
        topic: event.topic,
        messages: 0,
        bytes: 0,
        byQos: [0, 0, 0],
      }
      byTopic.set(event.topic, entry)
      this.#entryCount++
    }
    entry.messages++
    entry.bytes += event.bytes
    const qos = event.qos === 1 || event.qos === 2 ? event.qos : 0
    entry.byQos[qos]++
  }
}

function isCounted(event: AuditEvent): event is Counted {
  return event.type === 'publish.allowed' || event.type === 'message.delivered'
}
