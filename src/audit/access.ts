/**
 * Reads of the audit trail are themselves recorded (control C27).
 *
 * `phimq audit verify` and `search` must not append to the trail while a
 * broker owns it: the trail has one writer, the process holding the data
 * directory's `phimq.pid`. So a read is first written as a small pending
 * file in `<trail>/pending-reads/`; the audit pipeline of the process that
 * owns the trail turns each one into an `audit.read` record, at start and
 * then every second, and deletes the file once the record is queued.
 * When no broker runs, the CLI takes the lock itself and opens the
 * pipeline just long enough to do that (see `src/cli/audit.ts`).
 *
 * Free text the reader typed (the auditor name, the `--client` filter)
 * and topics in the query filters are masked by the PHI detectors before
 * they are written anywhere: a mistyped name can be an e-mail address.
 */
import { randomBytes } from 'node:crypto'
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { defaultDetector, maskTopic } from '../phi/detectors.js'
import type { AuditEvent, AuditReadDenial } from './events.js'
import type { AuditSink } from './sink.js'

/** Folder inside the trail directory where reads wait to be recorded. */
export const PENDING_READS_DIR = 'pending-reads'
/** How often the owning process looks for pending reads. */
export const PENDING_READS_POLL_MS = 1000
/** Text fields of a pending read are capped (a pending file is untrusted input). */
const FIELD_MAX_CHARS = 256
/** At most this many pending files are taken per poll (bounded work). */
const MAX_PER_POLL = 1000

export type AuditReadEvent = Extract<AuditEvent, { type: 'audit.read' }>

/** Every value `reason` may take; anything else in a pending file is dropped. */
const DENIALS: ReadonlySet<string> = new Set<AuditReadDenial>([
  'no-auditor',
  'no-owner',
  'bypass-refused',
  'no-credentials',
  'unknown-auditor',
  'bad-password',
  'bad-otp',
  'otp-reused',
  'record-unsafe',
])

/** What a CLI read was asked for, and whether the auditor check let it. */
export interface AuditReadRequest {
  readonly command: 'verify' | 'search'
  readonly result: 'granted' | 'denied'
  /** The `--auditor` name given (masked by the PHI detectors). */
  readonly auditor?: string | undefined
  readonly reason?: AuditReadDenial | undefined
  /** `--no-auditor` accepted in a `dev` environment. */
  readonly devBypass?: boolean | undefined
  /** OS user name of the reader. */
  readonly user: string
  readonly uid?: number | undefined
  readonly pid: number
  /** RFC 3339: when the command ran (the record's own `time` is when it was recorded). */
  readonly requestedAt: string
  readonly filters?: AuditReadFilters | undefined
  /** `verify --key` was given: checked against an outside trusted key. */
  readonly trustedKey?: boolean | undefined
}

export interface AuditReadFilters {
  readonly from?: string | undefined
  readonly to?: string | undefined
  readonly types?: readonly string[] | undefined
  /** Masked by the PHI detectors. */
  readonly client?: string | undefined
  /** Masked by the PHI detectors. */
  readonly topic?: string | undefined
}

/** The event for one read, with the auditor name, client and topic filters masked. */
export function auditReadEvent(request: AuditReadRequest): AuditReadEvent {
  const f = request.filters
  return {
    type: 'audit.read',
    command: request.command,
    result: request.result,
    auditor: maskOpt(request.auditor),
    reason: request.reason,
    devBypass: request.devBypass,
    user: cap(request.user),
    uid: request.uid,
    pid: request.pid,
    requestedAt: cap(request.requestedAt),
    trustedKey: request.trustedKey,
    filters: f && {
      from: capOpt(f.from),
      to: capOpt(f.to),
      types: f.types?.slice(0, 32).map(cap),
      client: maskOpt(f.client),
      topic: f.topic === undefined ? undefined : cap(maskTopic(f.topic)),
    },
  }
}

/**
 * Leave a read for the trail's owner to record. Throws when the file
 * cannot be written: the caller must then refuse to read (fail closed).
 */
export function queueAuditRead(trailDir: string, event: AuditReadEvent): string {
  const dir = join(trailDir, PENDING_READS_DIR)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const name = `${Date.now()}-${process.pid}-${randomBytes(4).toString('hex')}`
  const tmp = join(dir, `${name}.tmp`)
  const path = join(dir, `${name}.json`)
  // Written whole, then renamed: the owner never sees half a file.
  writeFileSync(tmp, JSON.stringify(event), { mode: 0o600 })
  renameSync(tmp, path)
  return path
}

/**
 * Record every pending read in `trailDir` through `sink`, oldest first,
 * and delete each file after its record is queued. A file that does not
 * parse is renamed `*.bad` and recorded as a read with command `unknown`,
 * so a read is never silently lost. Returns the number recorded.
 */
export function ingestPendingReads(trailDir: string, sink: AuditSink): number {
  const dir = join(trailDir, PENDING_READS_DIR)
  let names: string[]
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .sort(byTimePrefix)
  } catch {
    return 0
  }
  let count = 0
  for (const name of names.slice(0, MAX_PER_POLL)) {
    const path = join(dir, name)
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch {
      continue // taken by a concurrent poll, or unreadable: try next time
    }
    const event = parsePendingRead(text)
    sink.emit(event ?? unknownRead())
    try {
      if (event) unlinkSync(path)
      else renameSync(path, `${path}.bad`)
    } catch {
      // Already gone; nothing else to do.
    }
    count++
  }
  return count
}

/** Rebuild an event from a pending file, keeping only known fields. */
function parsePendingRead(text: string): AuditReadEvent | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof raw !== 'object' || raw === null) return undefined
  const r = raw as Record<string, unknown>
  if (r.type !== 'audit.read' || (r.command !== 'verify' && r.command !== 'search')) {
    return undefined
  }
  if (typeof r.user !== 'string' || typeof r.pid !== 'number') return undefined
  const f = (typeof r.filters === 'object' && r.filters !== null ? r.filters : undefined) as
    | Record<string, unknown>
    | undefined
  return auditReadEvent({
    command: r.command,
    // A pending file without a result comes from before the auditor check: it was read.
    result: r.result === 'denied' ? 'denied' : 'granted',
    auditor: str(r.auditor),
    reason:
      typeof r.reason === 'string' && DENIALS.has(r.reason)
        ? (r.reason as AuditReadDenial)
        : undefined,
    devBypass: typeof r.devBypass === 'boolean' ? r.devBypass : undefined,
    user: r.user,
    uid: typeof r.uid === 'number' ? r.uid : undefined,
    pid: r.pid,
    requestedAt: typeof r.requestedAt === 'string' ? r.requestedAt : '',
    trustedKey: typeof r.trustedKey === 'boolean' ? r.trustedKey : undefined,
    filters: f && {
      from: str(f.from),
      to: str(f.to),
      types: Array.isArray(f.types) ? f.types.filter((t) => typeof t === 'string') : undefined,
      client: str(f.client),
      topic: str(f.topic),
    },
  })
}

function unknownRead(): AuditReadEvent {
  // Whether it was granted is unknown: assume the worst, a read happened.
  return {
    type: 'audit.read',
    command: 'unknown',
    result: 'granted',
    user: 'unknown',
    pid: 0,
    requestedAt: '',
  }
}

function byTimePrefix(a: string, b: string): number {
  const ta = Number(a.split('-')[0])
  const tb = Number(b.split('-')[0])
  return ta - tb || (a < b ? -1 : a > b ? 1 : 0)
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function cap(text: string): string {
  return text.length > FIELD_MAX_CHARS ? text.slice(0, FIELD_MAX_CHARS) : text
}

function capOpt(text: string | undefined): string | undefined {
  return text === undefined ? undefined : cap(text)
}

/** Capped first, so the detectors' work is bounded too. */
function maskOpt(text: string | undefined): string | undefined {
  return text === undefined ? undefined : defaultDetector.maskText(cap(text))
}
