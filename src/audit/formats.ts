/**
 * Export formats for stamped audit events (C28): JSON lines, syslog
 * (RFC 5424) and CEF. Each carries the same event id, `{node}-{seq}`, so a
 * SIEM can join records across formats and back to the audit trail.
 */
import { isIP } from 'node:net'
import type { AuditEvent, StampedAuditEvent } from './events.js'
import { toSafeJson } from './serialize.js'

/** The id shared by every format: node id and sequence number. */
export function eventId(event: StampedAuditEvent): string {
  return `${event.node}-${event.seq}`
}

/** One JSON object (no newline) with the event id first. */
export function formatJsonLine(event: StampedAuditEvent): string {
  return toSafeJson({ id: eventId(event), ...event })
}

type Severity = 'alert' | 'warning' | 'info'

/** How loud an event is, for syslog severity and CEF severity. */
export function severityOf(event: AuditEvent): { level: Severity; rank: number } {
  if (event.type === 'alert.raised') {
    return {
      level: 'alert',
      rank: event.severity === 'high' ? 9 : event.severity === 'medium' ? 6 : 3,
    }
  }
  if (/denied|refused|violation|failed|jumped|dropped|revoked|expiring/.test(event.type)) {
    return { level: 'warning', rank: 5 }
  }
  return { level: 'info', rank: 3 }
}

// ---- syslog, RFC 5424 ------------------------------------------------------

/** RFC 5424 facility 13: log audit. */
export const SYSLOG_FACILITY_LOG_AUDIT = 13

/** Structured-data id: name@private-enterprise-number (RFC 5424 section 6.3.2). */
export const SYSLOG_SD_ID = 'phimq@32473'

export interface SyslogFormatOptions {
  /** HOSTNAME field: 1–255 printable US-ASCII; default `-`. */
  readonly hostname?: string | undefined
  /** APP-NAME, at most 48; default `phimq`. */
  readonly appName?: string | undefined
  /** PROCID, at most 128; default `-`. */
  readonly procId?: string | undefined
  readonly facility?: number | undefined
  /** MSG part: the JSON line (default) or the CEF line. */
  readonly message?: 'json' | 'cef' | undefined
}

/**
 * One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
 * [SD] BOM MSG`. Header fields are cut to their length limits (section 6)
 * and made printable US-ASCII; MSGID is the event type; the SD element
 * carries the event id; MSG is the JSON line, UTF-8 with a BOM (6.4).
 */
export function formatSyslog(event: StampedAuditEvent, options: SyslogFormatOptions = {}): string {
  const facility = options.facility ?? SYSLOG_FACILITY_LOG_AUDIT
  const severity = { alert: 1, warning: 4, info: 6 }[severityOf(event).level]
  const header = [
    `<${facility * 8 + severity}>1`,
    event.time,
    headerField(options.hostname, 255),
    headerField(options.appName ?? 'phimq', 48),
    headerField(options.procId, 128),
    headerField(event.type, 32),
  ].join(' ')
  const sd =
    `[${SYSLOG_SD_ID} id="${sdValue(eventId(event))}" seq="${event.seq}"` +
    ` node="${sdValue(event.node)}"]`
  const msg = options.message === 'cef' ? formatCef(event) : formatJsonLine(event)
  return `${header} ${sd} \uFEFF${msg}`
}

/** RFC 5425 section 4.3 / RFC 6587 octet counting: `LEN SP MSG`. */
export function frameOctetCounted(message: string): Buffer {
  const body = Buffer.from(message, 'utf8')
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body])
}

function headerField(value: string | undefined, max: number): string {
  if (value === undefined || value === '') return '-'
  // PRINTUSASCII is %d33-126: no spaces, nothing outside ASCII.
  const printable = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max)
  return printable === '' ? '-' : printable
}

/** PARAM-VALUE escaping: `"`, `\` and `]` get a backslash (section 6.3.3). */
function sdValue(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`)
}

// ---- CEF ---------------------------------------------------------------------

export interface CefFormatOptions {
  readonly vendor?: string | undefined
  readonly product?: string | undefined
  readonly version?: string | undefined
}

/**
 * One CEF line: `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|ext`.
 * Header fields escape `\` and `|`; extension values escape `\`, `=` and
 * line breaks. The whole event rides in `cs6` as JSON.
 */
export function formatCef(event: StampedAuditEvent, options: CefFormatOptions = {}): string {
  const header = [
    'CEF:0',
    cefHeader(options.vendor ?? 'phimq'),
    cefHeader(options.product ?? 'phimq'),
    cefHeader(options.version ?? '0'),
    cefHeader(event.type),
    cefHeader(event.type.replace(/[.-]/g, ' ')),
    String(severityOf(event).rank),
  ].join('|')
  const ext: Array<[string, string | number | undefined]> = [
    ['rt', Date.parse(event.time)],
    ['externalId', eventId(event)],
    ['dvchost', event.node],
    ['cat', event.type],
    ...cefFields(event),
    ['cs6Label', 'event'],
    ['cs6', formatJsonLine(event)],
  ]
  const extension = ext
    .filter((kv): kv is [string, string | number] => kv[1] !== undefined)
    .map(([k, v]) => `${k}=${cefValue(String(v))}`)
    .join(' ')
  return `${header}|${extension}`
}

function cefFields(event: StampedAuditEvent): Array<[string, string | number | undefined]> {
  const record = event as unknown as Record<string, unknown>
  const actor = record.actor as
    | { clientId?: string; remoteAddress?: string; identity?: { id?: string; tenant?: string } }
    | undefined
  const address = actor?.remoteAddress ?? str(record.remoteAddress)
  const topic = str(record.topic) ?? str(record.filter)
  const reasonCode = typeof record.reasonCode === 'number' ? record.reasonCode : undefined
  return [
    ['suser', actor?.clientId ?? str(record.clientId)],
    ['duser', actor?.identity?.id ?? str(record.identityId)],
    ['src', address !== undefined && isIP(address) !== 0 ? address : undefined],
    ['reason', str(record.rule)],
    ['cs1Label', topic === undefined ? undefined : 'topic'],
    ['cs1', topic],
    ['cs2Label', actor?.identity?.tenant === undefined ? undefined : 'tenant'],
    ['cs2', actor?.identity?.tenant],
    ['cn1Label', reasonCode === undefined ? undefined : 'reasonCode'],
    ['cn1', reasonCode],
  ]
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function cefHeader(value: string): string {
  return value.replace(/[\\|]/g, (c) => `\\${c}`).replace(/[\r\n]+/g, ' ')
}

function cefValue(value: string): string {
  return value
    .replace(/[\\=]/g, (c) => `\\${c}`)
    .replace(/\r/g, '\\r')
    .replace(/\n/g, '\\n')
}
