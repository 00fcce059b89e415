/**
 * The operational logger (C26): pino, JSON, with redaction defined here and
 * nowhere else. Payloads and passwords are removed; usernames and client
 * ids are replaced by a keyed pseudonym so an operator can follow one
 * client without seeing who it is. Messages come from a small fixed
 * vocabulary; context lives in fields.
 */
import { createHmac, randomBytes } from 'node:crypto'
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino'
import type { Logger } from '../broker/logger.js'

/** Every message phimq logs. Lower case; context goes in fields, never in the message. */
export const LOG_MESSAGES = [
  'server started',
  'server stopped',
  'listener started',
  'listener stopped',
  'client connected',
  'client disconnected',
  'connect refused',
  'protocol violation',
  'acl denied',
  'publish denied',
  'subscribe denied',
  'message dropped',
  'session expired',
  'retained changed',
  'config changed',
  'config invalid',
  'store failed',
  'audit event after close',
  'audit write failed',
  'audit recovered',
  'audit segment deleted',
  'audit segment sealed after a crash',
  'alert raised',
  'clock jumped',
  'clock unsynchronised',
  'export failed',
  'export recovered',
  'metrics started',
  'certificate expiring',
  'ca inventory unreadable',
] as const

export type LogMessage = (typeof LOG_MESSAGES)[number]

/** Keys removed outright, at the top level and one or two levels down. */
const REMOVED_KEYS = ['payload', 'password', 'correlationData'] as const
/** Keys replaced by a pseudonym. */
const MASKED_KEYS = ['clientId', 'username'] as const

/** The one list of redaction paths (pino path syntax). */
export const REDACT_PATHS: readonly string[] = [...REMOVED_KEYS, ...MASKED_KEYS].flatMap((k) => [
  k,
  `*.${k}`,
  `*.*.${k}`,
])

const REMOVED: ReadonlySet<string> = new Set(REMOVED_KEYS)

/** Replaces identifiers with a short keyed hash; same input, same output, per key. */
export type IdentifierMasker = (identifier: string) => string

/**
 * A masker keyed by `key` (random per process when absent: pseudonyms are
 * then stable only for the life of the process). A keyed hash, not a plain
 * one: a plain hash of a 9-digit number is reversed by trying them all.
 */
export function createIdentifierMasker(key: Buffer = randomBytes(32)): IdentifierMasker {
  return (identifier) =>
    `~${createHmac('sha256', key).update(identifier).digest('hex').slice(0, 12)}`
}

const defaultMasker = createIdentifierMasker()

/** Mask a client id, username or other identifier for an operational log. */
export function maskIdentifier(identifier: string): string {
  return defaultMasker(identifier)
}

// Shapes of identifiers that must not show in a topic level in a log line.
const IDENTIFYING_LEVEL = [
  /\d{3}-?\d{2}-?\d{4}/, // SSN-like
  /\d[\d\s().-]{8,}\d/, // phone-like runs of digits
  /[^@\s]+@[^@\s]+\.[a-z]{2,}/i, // e-mail
  /\d{4}-\d{2}-\d{2}|\d{1,2}\/\d{1,2}\/\d{2,4}/, // dates
  /\d{6,}/, // long numbers: record and account numbers
]

/**
 * A topic with every level that looks like an identifier masked, for logs.
 * The PHI detectors of `src/phi/` are stricter; this is the log's own guard.
 */
export function maskTopic(topic: string, masker: IdentifierMasker = defaultMasker): string {
  return topic
    .split('/')
    .map((level) => (IDENTIFYING_LEVEL.some((re) => re.test(level)) ? masker(level) : level))
    .join('/')
}

export interface LoggerOptions {
  readonly level?: 'debug' | 'info' | 'warn' | 'error' | 'silent' | undefined
  /** Where lines go; stdout by default. */
  readonly destination?: DestinationStream | undefined
  /** Fields on every line, e.g. `{ node: 'phimq-1' }`. */
  readonly base?: Record<string, string> | undefined
  /** Key for client-id pseudonyms; random per process when absent. */
  readonly maskKey?: Buffer | undefined
}

/** Make the operational logger. Redaction and serializers are fixed here. */
export function createLogger(options: LoggerOptions = {}): PinoLogger & Logger {
  const masker = options.maskKey ? createIdentifierMasker(options.maskKey) : defaultMasker
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? {},
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [...REDACT_PATHS],
        censor: (value, path) => censor(value, path, masker),
      },
      serializers: {
        err: serializeError,
        topic: (t: unknown) => (typeof t === 'string' ? maskTopic(t, masker) : t),
        filter: (t: unknown) => (typeof t === 'string' ? maskTopic(t, masker) : t),
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination(1),
  )
  return logger as PinoLogger & Logger
}

function censor(value: unknown, path: string[], masker: IdentifierMasker): unknown {
  const key = path.at(-1) ?? ''
  if (REMOVED.has(key)) {
    // Say how big it was, never what it was.
    return value instanceof Uint8Array ? `[redacted ${value.byteLength} bytes]` : '[redacted]'
  }
  return typeof value === 'string' ? masker(value) : '[redacted]'
}

/** Errors keep name, code and message: our messages never carry PHI (see `errors.ts`). */
function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err
  const code = (err as { code?: unknown }).code
  return { type: err.name, code: typeof code === 'string' ? code : undefined, message: err.message }
}
