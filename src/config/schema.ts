/**
 * The configuration schema: one YAML file, validated once at start. Unknown
 * keys are errors. `npm run schema` writes the JSON Schema to
 * `schema/phimq.schema.json` for editors.
 */
import { z } from 'zod'
import { DEFAULT_LIMITS } from '../broker/limits.js'
import { alertsSchema, auditSchema, metricsSchema } from './audit.js'
import { mqttsListenerSchema, wssListenerSchema } from './listeners-tls.js'
import { policySchema } from './policy.js'
import { memoryStoreSchema, sqliteStoreSchema } from './store.js'

export const ENVIRONMENTS = ['dev', 'test', 'prod'] as const

const listenerBase = {
  /** Name used in logs and audit events. */
  name: z.string().min(1).max(64),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535),
}

/** Plain TCP: only in `dev`, only on loopback (checked by the loader). */
export const tcpListenerSchema = z.strictObject({ ...listenerBase, type: z.literal('tcp') })

export const listenerSchema = z.discriminatedUnion('type', [
  tcpListenerSchema,
  mqttsListenerSchema,
  wssListenerSchema,
])

export const limitsSchema = z.strictObject({
  /** Largest packet accepted, checked from the fixed header before buffering. */
  maxPacketSizeBytes: z
    .number()
    .int()
    .min(64)
    .max(268_435_455)
    .default(DEFAULT_LIMITS.maxPacketSizeBytes),
  maxTopicLengthBytes: z
    .number()
    .int()
    .min(1)
    .max(65_535)
    .default(DEFAULT_LIMITS.maxTopicLengthBytes),
  maxTopicLevels: z.number().int().min(1).max(1024).default(DEFAULT_LIMITS.maxTopicLevels),
  maxSubscriptionsPerClient: z
    .number()
    .int()
    .min(1)
    .default(DEFAULT_LIMITS.maxSubscriptionsPerClient),
  /** Receive Maximum we announce: QoS 1/2 PUBLISHes a client may have unacknowledged. */
  receiveMaximum: z.number().int().min(1).max(65_535).default(DEFAULT_LIMITS.receiveMaximum),
  /** Our inflight window toward a client, further capped by its Receive Maximum. */
  maxInflightMessages: z
    .number()
    .int()
    .min(1)
    .max(65_535)
    .default(DEFAULT_LIMITS.maxInflightMessages),
  /** Queue cap per session while its client is away (C24). */
  maxQueuedMessages: z.number().int().min(1).default(DEFAULT_LIMITS.maxQueuedMessages),
  /** Queue cap per session while its client is connected: a burst buffer. */
  maxQueuedMessagesOnline: z.number().int().min(1).default(DEFAULT_LIMITS.maxQueuedMessagesOnline),
  maxQueuedBytes: z
    .number()
    .int()
    .min(1)
    .default(10 * 1024 * 1024),
  topicAliasMaximum: z.number().int().min(0).max(65_535).default(DEFAULT_LIMITS.topicAliasMaximum),
  sessionExpiryMaxSeconds: z
    .number()
    .int()
    .min(0)
    .max(4_294_967_295)
    .default(DEFAULT_LIMITS.sessionExpiryMaxSeconds),
  /** Seconds a socket may stay open without sending CONNECT. */
  connectTimeoutSeconds: z.number().min(0.1).max(300).default(DEFAULT_LIMITS.connectTimeoutSeconds),
  /** Keep Alive above this is lowered through Server Keep Alive (MQTT 5). */
  maxKeepAliveSeconds: z
    .number()
    .int()
    .min(0)
    .max(65_535)
    .default(DEFAULT_LIMITS.maxKeepAliveSeconds),
  /** Retained messages held at most; a new one past it is refused with 0x97. */
  maxRetainedMessages: z.number().int().min(0).default(DEFAULT_LIMITS.maxRetainedMessages),
  /** Payload bytes of all retained messages together. */
  maxRetainedBytes: z.number().int().min(0).default(DEFAULT_LIMITS.maxRetainedBytes),
})

export const storeSchema = z.discriminatedUnion('type', [memoryStoreSchema, sqliteStoreSchema])

export { auditSchema } from './audit.js'

export const configSchema = z.strictObject({
  environment: z.enum(ENVIRONMENTS),
  nodeId: z.string().min(1).max(64).default('phimq-1'),
  /** Where state, keys and the audit trail live. Relative to the config file. */
  dataDir: z.string().min(1).default('.phimq'),
  listeners: z.array(listenerSchema).min(1),
  limits: limitsSchema.prefault({}),
  store: storeSchema.prefault({ type: 'memory' }),
  audit: auditSchema.prefault({}),
  alerts: alertsSchema.prefault({}),
  metrics: metricsSchema.prefault({}),
  policy: policySchema.optional(),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') })
    .prefault({}),
})

export type Config = z.infer<typeof configSchema>
export type ListenerConfig = z.infer<typeof listenerSchema>
export type Limits = z.infer<typeof limitsSchema>
