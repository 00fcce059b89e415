/**
 * The configuration schema: one YAML file, validated once at start. Unknown
 * keys are errors. `npm run schema` writes the JSON Schema to
 * `schema/phimq.schema.json` for editors.
 */
import { z } from 'zod'
import { mqttsListenerSchema, wssListenerSchema } from './listeners-tls.js'

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
  maxPacketSizeBytes: z.number().int().min(64).max(268_435_455).default(1_048_576),
  maxTopicLengthBytes: z.number().int().min(1).max(65_535).default(1024),
  maxTopicLevels: z.number().int().min(1).max(1024).default(32),
  maxSubscriptionsPerClient: z.number().int().min(1).default(100),
  /** Receive Maximum we announce: QoS 1/2 PUBLISHes a client may have unacknowledged. */
  receiveMaximum: z.number().int().min(1).max(65_535).default(32),
  /** Our inflight window toward a client, further capped by its Receive Maximum. */
  maxInflightMessages: z.number().int().min(1).max(65_535).default(32),
  maxQueuedMessages: z.number().int().min(1).default(1000),
  maxQueuedBytes: z
    .number()
    .int()
    .min(1)
    .default(10 * 1024 * 1024),
  topicAliasMaximum: z.number().int().min(0).max(65_535).default(16),
  sessionExpiryMaxSeconds: z.number().int().min(0).max(4_294_967_295).default(86_400),
  /** Seconds a socket may stay open without sending CONNECT. */
  connectTimeoutSeconds: z.number().min(0.1).max(300).default(10),
  /** Keep Alive above this is lowered through Server Keep Alive (MQTT 5). */
  maxKeepAliveSeconds: z.number().int().min(0).max(65_535).default(1200),
})

export const storeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('memory') }),
])

export const auditSchema = z.strictObject({
  /** `memory` keeps events in the process (tests); `jsonl` appends to `path`. */
  sink: z.enum(['memory', 'jsonl']).default('jsonl'),
  path: z.string().min(1).default('audit.jsonl'),
})

export const configSchema = z.strictObject({
  environment: z.enum(ENVIRONMENTS),
  nodeId: z.string().min(1).max(64).default('phimq-1'),
  /** Where state, keys and the audit trail live. Relative to the config file. */
  dataDir: z.string().min(1).default('.phimq'),
  listeners: z.array(listenerSchema).min(1),
  limits: limitsSchema.prefault({}),
  store: storeSchema.prefault({ type: 'memory' }),
  audit: auditSchema.prefault({}),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') })
    .prefault({}),
})

export type Config = z.infer<typeof configSchema>
export type ListenerConfig = z.infer<typeof listenerSchema>
export type Limits = z.infer<typeof limitsSchema>
