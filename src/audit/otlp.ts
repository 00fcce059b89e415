/**
 * OpenTelemetry logs (OTLP/HTTP, JSON encoding) for audit events (C28).
 *
 * Each event becomes one LogRecord: `timeUnixNano` from the event time,
 * severity from `severityOf`, the event itself (through the payload-safe
 * replacer) as a structured `body`, and attributes `event.id` (the
 * `{node}-{seq}` id shared with every other format and the trail),
 * `event.name` (the type), `phimq.node`, `phimq.seq`. Records are sent in
 * batches as `POST <endpoint>/v1/logs` with an ExportLogsServiceRequest:
 * resourceLogs → scopeLogs → logRecords.
 */
import type { StampedAuditEvent } from './events.js'
import { eventId, severityOf } from './formats.js'
import { toSafeJson } from './serialize.js'

/** OTLP AnyValue in its JSON mapping (64-bit integers as strings). */
export type OtlpAnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: OtlpAnyValue[] } }
  | { kvlistValue: { values: OtlpKeyValue[] } }

export interface OtlpKeyValue {
  key: string
  value: OtlpAnyValue
}

export interface OtlpLogRecord {
  timeUnixNano: string
  observedTimeUnixNano: string
  severityNumber: number
  severityText: string
  body: OtlpAnyValue
  attributes: OtlpKeyValue[]
}

/** Who sends: becomes the resource and scope of each request. */
export interface OtlpResourceOptions {
  /** `service.name`; default `phimq`. */
  readonly serviceName?: string | undefined
  /** `service.instance.id`: the node id. */
  readonly instanceId?: string | undefined
  /** `service.version` and the scope version. */
  readonly version?: string | undefined
}

/** OTLP SeverityNumber values (logs data model): INFO, WARN, ERROR. */
const SEVERITY = {
  info: { severityNumber: 9, severityText: 'INFO' },
  warning: { severityNumber: 13, severityText: 'WARN' },
  alert: { severityNumber: 17, severityText: 'ERROR' },
} as const

/** Instrumentation scope of every record. */
export const OTLP_SCOPE_NAME = 'phimq.audit'

/** One event as an OTLP LogRecord. */
export function toOtlpLogRecord(event: StampedAuditEvent): OtlpLogRecord {
  const nanos = `${BigInt(Date.parse(event.time)) * 1_000_000n}`
  // Through the one replacer: no payload, password or raw bytes (C26).
  const safe = JSON.parse(toSafeJson(event)) as unknown
  return {
    timeUnixNano: nanos,
    observedTimeUnixNano: nanos,
    ...SEVERITY[severityOf(event).level],
    body: toAnyValue(safe) ?? { stringValue: '' },
    attributes: [
      attr('event.id', { stringValue: eventId(event) }),
      attr('event.name', { stringValue: event.type }),
      attr('phimq.node', { stringValue: event.node }),
      attr('phimq.seq', { intValue: String(event.seq) }),
    ],
  }
}

/** One event as a JSON line (the golden-file form of a LogRecord). */
export function formatOtlpLogRecord(event: StampedAuditEvent): string {
  return JSON.stringify(toOtlpLogRecord(event))
}

/** The body of `POST /v1/logs` for a batch of records. */
export function otlpLogsRequest(
  records: readonly OtlpLogRecord[],
  options: OtlpResourceOptions = {},
): unknown {
  const resource: OtlpKeyValue[] = [
    attr('service.name', { stringValue: options.serviceName ?? 'phimq' }),
  ]
  if (options.instanceId !== undefined) {
    resource.push(attr('service.instance.id', { stringValue: options.instanceId }))
  }
  if (options.version !== undefined) {
    resource.push(attr('service.version', { stringValue: options.version }))
  }
  const scope = { name: OTLP_SCOPE_NAME, ...(options.version ? { version: options.version } : {}) }
  return {
    resourceLogs: [
      { resource: { attributes: resource }, scopeLogs: [{ scope, logRecords: records }] },
    ],
  }
}

function attr(key: string, value: OtlpAnyValue): OtlpKeyValue {
  return { key, value }
}

/** JSON value → AnyValue; `null` and `undefined` leave the field out. */
function toAnyValue(v: unknown): OtlpAnyValue | undefined {
  if (v === null || v === undefined) return undefined
  if (typeof v === 'string') return { stringValue: v }
  if (typeof v === 'boolean') return { boolValue: v }
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) ? { intValue: String(v) } : { doubleValue: v }
  }
  if (Array.isArray(v)) {
    const values = v.map(toAnyValue).filter((x): x is OtlpAnyValue => x !== undefined)
    return { arrayValue: { values } }
  }
  if (typeof v === 'object') {
    const values: OtlpKeyValue[] = []
    for (const [key, inner] of Object.entries(v)) {
      const value = toAnyValue(inner)
      if (value !== undefined) values.push({ key, value })
    }
    return { kvlistValue: { values } }
  }
  return { stringValue: String(v) }
}
