/**
 * Sink health, for the back-pressure rule: a sink that can fail to record
 * (the audit trail) says so through `healthy()`, and every wrapper passes
 * the question on, so the broker asks the outermost sink only.
 */
import type { AuditSink } from './sink.js'

/** A sink that can report it is failing to record. */
export interface HealthReporting {
  healthy(): boolean
}

/** True unless `sink` reports that it cannot record. */
export function isSinkHealthy(sink: AuditSink): boolean {
  const probe = (sink as Partial<HealthReporting>).healthy
  return typeof probe === 'function' ? probe.call(sink) : true
}
