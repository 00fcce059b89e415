/**
 * Config keys of the audit trail, alerts and metrics (issue #6, C25–C29).
 * Wired into `configSchema` in `schema.ts` as `audit`, `alerts`, `metrics`.
 * Relative paths are resolved against `dataDir`.
 */
import { z } from 'zod'

const fileExporterSchema = z.strictObject({
  type: z.literal('file'),
  path: z.string().min(1),
  /** One event per line, as JSON, as CEF or as OCSF 1.1 JSON. */
  format: z.enum(['jsonl', 'cef', 'ocsf']).default('jsonl'),
})

const syslogTlsExporterSchema = z.strictObject({
  type: z.literal('syslog-tls'),
  host: z.string().min(1),
  /** RFC 5425 port. */
  port: z.number().int().min(1).max(65_535).default(6514),
  /** CA file (PEM) the collector certificate must chain to; verification cannot be turned off. */
  caFile: z.string().min(1),
  /** Name to check in the collector certificate; default `host`. */
  servername: z.string().min(1).optional(),
  /** Client certificate and key for mutual TLS, when the collector asks. */
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  /** MSG part of each RFC 5424 message. */
  message: z.enum(['json', 'cef']).default('json'),
  /** HOSTNAME field; default the node id. */
  hostname: z.string().min(1).max(255).optional(),
})

const otlpExporterSchema = z.strictObject({
  type: z.literal('otlp'),
  /** OTLP/HTTP base URL, e.g. `https://collector:4318`; `/v1/logs` is appended. https only. */
  endpoint: z.url({ protocol: /^https$/ }),
  /** CA file (PEM) the collector certificate must chain to; the system store when absent. Verification cannot be turned off. */
  caFile: z.string().min(1).optional(),
  /** Name to check in the collector certificate; default the endpoint host. */
  servername: z.string().min(1).optional(),
  /** Client certificate and key for mutual TLS, when the collector asks. */
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  /** `service.name` resource attribute. */
  serviceName: z.string().min(1).max(255).default('phimq'),
  maxBatchRecords: z.number().int().min(1).max(10_000).default(512),
  flushIntervalMs: z.number().int().min(10).max(60_000).default(1000),
})

export const auditExporterSchema = z.discriminatedUnion('type', [
  fileExporterSchema,
  syslogTlsExporterSchema,
  otlpExporterSchema,
])

export const auditTrailSchema = z.strictObject({
  /** Segment directory. */
  dir: z.string().min(1).default('audit'),
  /** Ed25519 signing key (PEM), made with mode 0600 on first start. */
  keyFile: z.string().min(1).default('keys/audit-signing.pem'),
  maxSegmentBytes: z
    .number()
    .int()
    .min(4096)
    .default(64 * 1024 * 1024),
  rotateMinutes: z.number().int().min(1).default(1440),
  checkpointMinutes: z.number().int().min(1).default(5),
  /** Six years (of 366 days) by default: HIPAA documentation retention, a product choice. */
  retentionDays: z.number().int().min(1).default(2196),
  flushIntervalMs: z.number().int().min(1).max(10_000).default(200),
  maxBufferedBytes: z
    .number()
    .int()
    .min(65_536)
    .default(64 * 1024 * 1024),
})

export const auditSchema = z.strictObject({
  /**
   * `trail` (default): hash-chained, signed segments under `trail.dir`.
   * `jsonl` appends plain lines to `path`; `memory` keeps events in the
   * process (tests).
   */
  sink: z.enum(['memory', 'jsonl', 'trail']).default('trail'),
  path: z.string().min(1).default('audit.jsonl'),
  trail: auditTrailSchema.prefault({}),
  /** Allowed publishes and deliveries: one summary per client, topic and minute, or one each. */
  traffic: z.enum(['summary', 'per-message']).default('summary'),
  /**
   * When the trail cannot write: `refuse` new connections and publishes
   * (default) rather than lose records, or `continue` and keep buffering.
   */
  onWriteFailure: z.enum(['refuse', 'continue']).default('refuse'),
  /** Record a `clock.jumped` event when wall and monotonic clocks differ by more. */
  clockJumpLimitMs: z.number().int().min(1).default(1000),
  /**
   * Host clock synchronisation status (C25), read from `chronyc` or
   * `timedatectl` by the running broker at start and every `checkMinutes`.
   */
  clockSync: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Record `clock.unsynchronised` (and alert) when the offset is above this. */
      maxOffsetMs: z.number().int().min(1).default(1000),
      checkMinutes: z.number().int().min(1).max(1440).default(10),
    })
    .prefault({}),
  /** Where else events go; none until configured. */
  exporters: z.array(auditExporterSchema).default([]),
  /** `cert.expiring` warnings for connected and issued client certificates (C12). */
  certExpiry: z
    .strictObject({
      /** Days-left steps; each certificate is warned once per step. */
      warningDays: z.array(z.number().int().min(1).max(3650)).min(1).max(10).default([30, 7, 1]),
      /** How often the built-in CA's inventory under `dataDir/ca` is scanned (also at start). */
      inventoryScanMinutes: z.number().int().min(1).max(10_080).default(60),
    })
    .prefault({}),
})

export const alertsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  wildcardSubscribe: z.boolean().default(true),
  /** Refusal rule names starting with one of these count as cross-tenant attempts. */
  crossTenantRulePrefixes: z.array(z.string().min(1)).default(['tenant.']),
  aclDenialsPerMinute: z.number().int().min(1).default(20),
  authFailuresPerMinute: z.number().int().min(1).default(10),
  qos2SpikeFactor: z.number().min(1).default(5),
  qos2BaselineMinutes: z.number().int().min(1).max(1440).default(15),
  qos2MinPerMinute: z.number().int().min(1).default(10),
  retainedChangesPerMinute: z.number().int().min(1).default(50),
  certExpiryDays: z.number().int().min(1).default(30),
  cooldownSeconds: z.number().int().min(1).default(60),
  /** POST each alert (rule and numbers, no subject) to an HTTPS URL. */
  webhook: z
    .strictObject({
      url: z.url({ protocol: /^https$/ }),
      /** CA file (PEM) for the receiver; the system store when absent. */
      caFile: z.string().min(1).optional(),
      timeoutMs: z.number().int().min(100).max(60_000).default(5000),
    })
    .optional(),
})

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

export const metricsSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** The operations port binds loopback unless `exposed` says otherwise. */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(9464),
    /** Set to bind a non-loopback `host` on purpose. */
    exposed: z.boolean().default(false),
    processMetrics: z.boolean().default(true),
  })
  .refine((m) => m.exposed || LOOPBACK.test(m.host), {
    message: 'metrics host is not loopback; set exposed: true to allow it',
    path: ['host'],
  })

export type AuditConfig = z.infer<typeof auditSchema>
export type AuditExporterConfig = z.infer<typeof auditExporterSchema>
export type AlertsConfig = z.infer<typeof alertsSchema>
export type MetricsConfig = z.infer<typeof metricsSchema>
