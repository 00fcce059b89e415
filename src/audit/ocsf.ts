/**
 * OCSF JSON export (C28): each stamped audit event as one OCSF 1.1 event.
 *
 * Mapping, by event type:
 * - Authentication (class 3002, category 3 Identity & Access Management):
 *   `client.connected` (Logon, success), `connect.refused` (Logon,
 *   failure), `client.disconnected` (Logoff), `tls.handshake` (Logon with
 *   the certificate, success or failure).
 * - API Activity (class 6003, category 6 Application Activity): the MQTT
 *   operations. PUBLISH is Create, SUBSCRIBE Read, UNSUBSCRIBE Delete,
 *   retained set Update and clear Delete; refusals carry status Failure.
 * - Detection Finding (class 2004, category 2 Findings): `alert.raised`.
 * - Base Event (class 0) for everything else (policy, store, audit,
 *   certificate and clock events).
 *
 * `metadata.uid` is the event id `{node}-{seq}` shared by every format;
 * the whole event rides in `unmapped`, through the payload-safe replacer.
 */
import type { StampedAuditEvent } from './events.js'
import { eventId, severityOf } from './formats.js'
import { toSafeJson } from './serialize.js'

/** OCSF schema version the mapping follows. */
export const OCSF_VERSION = '1.1.0'

export interface OcsfFormatOptions {
  /** `metadata.product.version`. */
  readonly version?: string | undefined
}

interface ClassOf {
  readonly classUid: number
  readonly categoryUid: number
  readonly className: string
  readonly categoryName: string
  readonly activityId: number
  readonly activityName: string
  /** 1 Success, 2 Failure, 0 Unknown. */
  readonly statusId: 0 | 1 | 2
}

const AUTH = {
  classUid: 3002,
  categoryUid: 3,
  className: 'Authentication',
  categoryName: 'Identity & Access Management',
}
const API = {
  classUid: 6003,
  categoryUid: 6,
  className: 'API Activity',
  categoryName: 'Application Activity',
}
const FINDING = {
  classUid: 2004,
  categoryUid: 2,
  className: 'Detection Finding',
  categoryName: 'Findings',
}
const BASE = { classUid: 0, categoryUid: 0, className: 'Base Event', categoryName: 'Uncategorized' }

const ok = (activityId: number, activityName: string) => ({
  activityId,
  activityName,
  statusId: 1 as const,
})
const failed = (activityId: number, activityName: string) => ({
  activityId,
  activityName,
  statusId: 2 as const,
})

function classOf(event: StampedAuditEvent): ClassOf {
  switch (event.type) {
    case 'client.connected':
      return { ...AUTH, ...ok(1, 'Logon') }
    case 'connect.refused':
      return { ...AUTH, ...failed(1, 'Logon') }
    case 'client.disconnected':
      return { ...AUTH, ...ok(2, 'Logoff') }
    case 'tls.handshake':
      return { ...AUTH, ...(event.result === 'accepted' ? ok : failed)(1, 'Logon') }
    case 'publish.allowed':
    case 'traffic.summary':
    case 'will.published':
      return { ...API, ...ok(1, 'Create') }
    case 'publish.denied':
    case 'will.denied':
    case 'tenant.cross-tenant':
      return { ...API, ...failed(1, 'Create') }
    case 'subscribe.allowed':
    case 'message.delivered':
      return { ...API, ...ok(2, 'Read') }
    case 'subscribe.denied':
      return { ...API, ...failed(2, 'Read') }
    case 'retained.set':
      return { ...API, ...ok(3, 'Update') }
    case 'unsubscribe':
    case 'retained.cleared':
      return { ...API, ...ok(4, 'Delete') }
    case 'alert.raised':
      return { ...FINDING, ...ok(1, 'Create') }
    default:
      return { ...BASE, activityId: 0, activityName: 'Unknown', statusId: 0 }
  }
}

const STATUS_NAMES = ['Unknown', 'Success', 'Failure'] as const

/** OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High. */
function severityId(event: StampedAuditEvent): number {
  if (event.type === 'alert.raised') {
    return event.severity === 'high' ? 4 : event.severity === 'medium' ? 3 : 2
  }
  return severityOf(event).level === 'warning' ? 3 : 1
}

const SEVERITY_NAMES = ['Unknown', 'Informational', 'Low', 'Medium', 'High'] as const

/** One OCSF event as a JSON line body (no newline). */
export function formatOcsf(event: StampedAuditEvent, options: OcsfFormatOptions = {}): string {
  const c = classOf(event)
  const sev = severityId(event)
  const record = event as unknown as Record<string, unknown>
  const out: Record<string, unknown> = {
    class_uid: c.classUid,
    class_name: c.className,
    category_uid: c.categoryUid,
    category_name: c.categoryName,
    activity_id: c.activityId,
    activity_name: c.activityName,
    type_uid: c.classUid * 100 + c.activityId,
    severity_id: sev,
    severity: SEVERITY_NAMES[sev],
    status_id: c.statusId,
    status: STATUS_NAMES[c.statusId],
    status_code: typeof record.reasonCode === 'number' ? hex(record.reasonCode) : undefined,
    status_detail: str(record.rule) ?? str(record.reason),
    time: Date.parse(event.time),
    message: event.type,
    metadata: {
      version: OCSF_VERSION,
      uid: eventId(event),
      log_name: 'phimq-audit',
      sequence: event.seq,
      product: { name: 'phimq', vendor_name: 'phimq', version: options.version ?? '0' },
    },
    ...classFields(event, c),
    unmapped: event,
  }
  return toSafeJson(out)
}

function classFields(event: StampedAuditEvent, c: ClassOf): Record<string, unknown> {
  const record = event as unknown as Record<string, unknown>
  const actor = record.actor as
    | {
        clientId: string
        listener: string
        remoteAddress: string
        identity?: { id: string; tenant?: string; role?: string }
      }
    | undefined
  const clientId = actor?.clientId ?? str(record.clientId)
  const identity =
    actor?.identity ?? (record.identity as { id: string; tenant?: string } | undefined)
  const address = actor?.remoteAddress ?? str(record.remoteAddress)
  const user =
    clientId === undefined && identity === undefined
      ? undefined
      : { uid: identity?.id ?? clientId, name: clientId, org: orgOf(identity?.tenant) }
  const src = address === undefined ? undefined : { ip: address }
  if (c.classUid === 3002) {
    return {
      user,
      src_endpoint: src,
      auth_protocol: event.type === 'tls.handshake' ? 'TLS client certificate' : 'MQTT CONNECT',
      auth_protocol_id: 99,
      dst_endpoint: { svc_name: actor?.listener ?? str(record.listener) },
    }
  }
  if (c.classUid === 6003) {
    const topic = str(record.topic) ?? str(record.filter)
    return {
      actor: user === undefined ? undefined : { user },
      src_endpoint: src,
      api: { operation: event.type, service: { name: 'mqtt' } },
      resources: topic === undefined ? undefined : [{ name: topic, type: 'mqtt-topic' }],
    }
  }
  if (c.classUid === 2004 && event.type === 'alert.raised') {
    return {
      finding_info: {
        uid: eventId(event),
        title: event.rule,
        desc: `${event.observed} observed, threshold ${event.threshold}`,
      },
    }
  }
  return {}
}

function orgOf(tenant: string | undefined): { name: string } | undefined {
  return tenant === undefined ? undefined : { name: tenant }
}

function hex(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')}`
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}
