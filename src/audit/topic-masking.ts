/**
 * An `AuditSink` wrapper that masks the `topic` and `filter` of every event
 * with the PHI detectors before passing it on (C26). The composition root
 * puts it outermost when no policy detector masks topics at the source
 * (`dev` with the allow-all gate).
 */
import type { AuditEvent } from './events.js'
import { isSinkHealthy } from './health.js'
import type { AuditSink } from './sink.js'

export class TopicMaskingAuditSink implements AuditSink {
  readonly #inner: AuditSink
  readonly #mask: (topic: string) => string

  constructor(inner: AuditSink, mask: (topic: string) => string) {
    this.#inner = inner
    this.#mask = mask
  }

  healthy(): boolean {
    return isSinkHealthy(this.#inner)
  }

  emit(event: AuditEvent): void {
    const e = event as AuditEvent & { topic?: unknown; filter?: unknown }
    if (typeof e.topic === 'string' || typeof e.filter === 'string') {
      const masked: Record<string, unknown> = { ...e }
      if (typeof e.topic === 'string') masked.topic = this.#mask(e.topic)
      if (typeof e.filter === 'string') masked.filter = this.#mask(e.filter)
      this.#inner.emit(masked as unknown as AuditEvent)
      return
    }
    this.#inner.emit(event)
  }

  close(): Promise<void> {
    return this.#inner.close()
  }
}
