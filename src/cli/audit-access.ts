/**
 * Who may read the audit trail through `phimq audit`, and the record of
 * every try (C27). The steps, in order, for `verify` and `search`:
 *
 * 1. find the config that owns the trail (`--config`, else `phimq.yaml`
 *    beside the trail directory): it names the data directory, which
 *    holds the auditors. It must be the config file named by the trail's
 *    latest `audit.started` record: a config the reader wrote, pointing
 *    at someone else's trail, owns nothing (src/audit/trail-starts.ts);
 * 2. check the reader: `--auditor NAME` with its password and a current
 *    one-time code (src/audit/auditors.ts), or `--no-auditor`, accepted
 *    only when the owning config says `environment: dev` and so does
 *    every `audit.started` record in the trail (fail closed: a record
 *    without an environment refuses the bypass);
 * 3. write the read, granted or denied, as a pending file in
 *    `<trail>/pending-reads/`; if that fails, nothing is read (fail closed);
 * 4. a granted command reads the trail now, as the files are: nothing has
 *    written to the trail since step 1 (a verifier must not sign what it
 *    checks);
 * 5. if a broker holds the data directory's `phimq.pid`, it records the
 *    pending read within a second (one writer per trail); otherwise the
 *    command takes `phimq.pid`, opens the audit pipeline (which records
 *    every pending read), closes it and lets go.
 *
 * Without an owning config, with a signing key this user cannot read, or
 * with a last segment left open by a crash (sealing it is the broker's
 * job at its next start), the read stays pending until the broker's next
 * start; stderr says so.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { userInfo } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { type AuditReadRequest, auditReadEvent, queueAuditRead } from '../audit/access.js'
import { auditorRecordPath, authenticateAuditor } from '../audit/auditors.js'
import type { AuditReadDenial } from '../audit/events.js'
import { createAuditPipeline } from '../audit/pipeline.js'
import { trailLeftOpen } from '../audit/trail.js'
import { readTrailStarts, type TrailStart } from '../audit/trail-starts.js'
import { type LoadedConfig, loadConfigFile } from '../config/load.js'
import { AuditorDeniedError } from '../errors.js'
import { dataDirHolder, lockDataDir } from './start.js'

/** Environment variable holding the auditor's password. */
export const AUDITOR_PASSWORD_ENV = 'PHIMQ_AUDITOR_PASSWORD'
/** Environment variable holding the current one-time code. */
export const AUDITOR_OTP_ENV = 'PHIMQ_AUDITOR_OTP'

/** Where the access check talks and what it reads; tests pass their own. */
export interface AccessIo {
  err(line: string): void
  exit(code: number): void
  /** Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>> | undefined
  /** Ask for a secret without echo; `undefined` when nobody can answer. */
  prompt?(question: string): Promise<string | undefined>
  /** Epoch ms, for the one-time code; defaults to now. */
  now?(): number
}

/** The reader options every `phimq audit` read takes. */
export interface ReaderOptions {
  dir: string
  config?: string
  /** A name, or `false` for `--no-auditor`. */
  auditor?: string | false
  passwordFile?: string
  otp?: string
}

type Access =
  | { result: 'granted'; auditor?: string; devBypass?: true }
  | { result: 'denied'; reason: AuditReadDenial; auditor?: string | undefined; message: string }

/** A granted read: what the reader may assume, and step 5 to run after reading. */
export interface Admission {
  /** A broker holds the data directory: it writes the trail's last segment now. */
  readonly live: boolean
  /** Step 5: record the pending read (call after reading). */
  record(): Promise<void>
}

/**
 * Steps 1–3 of the header. An `Admission` when the reader may read (the
 * read is queued; call `record()` once done); undefined, with exit code 2
 * and the reason on stderr, when the read is refused or cannot be queued.
 */
export async function admitRead(
  opts: ReaderOptions,
  what: Pick<AuditReadRequest, 'command' | 'filters' | 'trustedKey'>,
  io: AccessIo,
): Promise<Admission | undefined> {
  const owner = findOwner(opts)
  const access = await checkReader(opts, owner, io)
  const event = auditReadEvent({
    ...what,
    ...(access.result === 'granted'
      ? access
      : { result: 'denied', reason: access.reason, auditor: access.auditor }),
    ...currentUser(),
    pid: process.pid,
    requestedAt: new Date().toISOString(),
  })
  try {
    queueAuditRead(opts.dir, event)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    io.err(`cannot record this read of the audit trail (${code}); nothing was read (C27)`)
    io.exit(2)
    return undefined
  }

  if (access.result === 'denied') {
    await flushPendingReads(opts.dir, owner, io)
    const err = new AuditorDeniedError(access.message)
    io.err(`phimq: ${err.message} [${err.code}]`)
    io.exit(2)
    return undefined
  }
  const live = 'loaded' in owner && dataDirHolder(owner.loaded.dataDir) !== undefined
  return { live, record: () => flushPendingReads(opts.dir, owner, io) }
}

type Owner = { loaded: LoadedConfig; starts: TrailStart[] } | { problem: string }

/**
 * Step 1: the loaded config whose trail directory is `opts.dir`, and
 * which the trail's latest start names as its config.
 */
function findOwner(opts: { dir: string; config?: string | undefined }): Owner {
  const path = opts.config ?? join(dirname(resolve(opts.dir)), 'phimq.yaml')
  if (opts.config === undefined && !existsSync(path)) {
    return { problem: 'no config owns this trail (no phimq.yaml beside it): pass --config FILE' }
  }
  let loaded: LoadedConfig
  try {
    loaded = loadConfigFile(path)
  } catch (err) {
    const code = (err as { code?: unknown }).code ?? 'error'
    return { problem: `the config owning this trail cannot be loaded (${String(code)})` }
  }
  const audit = loaded.config.audit
  const trailDir = isAbsolute(audit.trail.dir)
    ? audit.trail.dir
    : resolve(loaded.dataDir, audit.trail.dir)
  if (audit.sink !== 'trail' || !samePath(trailDir, opts.dir)) {
    return { problem: `${path} does not own this trail (its audit.trail.dir is elsewhere)` }
  }
  // The trail, not the command line, says which config its broker runs with.
  const starts = readTrailStarts(opts.dir)
  const latest = starts.at(-1)
  if (latest?.config === undefined) {
    return {
      problem:
        'the trail names no config it was started with (no audit.started record with one): start its broker once',
    }
  }
  if (!samePath(latest.config, loaded.source)) {
    return { problem: `${path} is not the config this trail's broker last started with` }
  }
  return { loaded, starts }
}

/**
 * The dev bypass needs the config and the trail to agree: the config says
 * `dev`, and every start recorded in the trail says `dev`. A start that
 * names no environment (an older trail, an unreadable record) refuses.
 */
function isDevTrail(owner: { loaded: LoadedConfig; starts: TrailStart[] }): boolean {
  if (owner.loaded.config.environment !== 'dev') return false
  return owner.starts.length > 0 && owner.starts.every((s) => s.environment === 'dev')
}

/** Step 2: may this reader read? */
async function checkReader(opts: ReaderOptions, owner: Owner, io: AccessIo): Promise<Access> {
  const auditor = typeof opts.auditor === 'string' ? opts.auditor : undefined
  if (!('loaded' in owner)) {
    return { result: 'denied', reason: 'no-owner', auditor, message: owner.problem }
  }
  const isDev = isDevTrail(owner)
  if (opts.auditor === false) {
    if (isDev) return { result: 'granted', devBypass: true }
    return {
      result: 'denied',
      reason: 'bypass-refused',
      message:
        '--no-auditor is allowed only for a trail whose broker has only run with environment: dev',
    }
  }
  if (auditor === undefined) {
    const dev = isDev ? ' (or --no-auditor in this dev environment)' : ''
    return {
      result: 'denied',
      reason: 'no-auditor',
      message: `reading the audit trail needs --auditor NAME, its password and a one-time code${dev}`,
    }
  }

  const env = io.env ?? process.env
  const password =
    opts.passwordFile !== undefined
      ? readSecretFile(opts.passwordFile)
      : (env[AUDITOR_PASSWORD_ENV] ?? (await io.prompt?.(`password for auditor ${auditor}: `)))
  const otp = opts.otp ?? env[AUDITOR_OTP_ENV] ?? (await io.prompt?.('one-time code: '))
  if (!password || !otp) {
    return {
      result: 'denied',
      reason: 'no-credentials',
      auditor,
      message: `auditor ${auditor} needs a password (${AUDITOR_PASSWORD_ENV} or --password-file) and a one-time code (--otp or ${AUDITOR_OTP_ENV})`,
    }
  }
  const check = await authenticateAuditor({
    dataDir: owner.loaded.dataDir,
    name: auditor,
    password,
    otp,
    now: io.now?.(),
  })
  if (check.ok) return { result: 'granted', auditor }
  const path = auditorRecordPath(owner.loaded.dataDir, auditor)
  return {
    result: 'denied',
    reason: check.reason,
    auditor,
    message: denialMessage(check.reason, path),
  }
}

/**
 * What a refused auditor is told. Wrong password, wrong code and unknown
 * name share one message: it must not say which factor was wrong. A
 * reused code (password and code were right) says to wait for the next;
 * an unsafe record file is the operator's to fix, and says how.
 */
function denialMessage(reason: AuditReadDenial, recordPath?: string): string {
  if (reason === 'otp-reused') {
    return 'auditor authentication failed (that one-time code was used already: wait for the next)'
  }
  if (reason === 'record-unsafe') {
    return `the auditor record's file mode is unsafe (readable or writable by group or others): chmod 600 ${recordPath ?? 'it'}`
  }
  return 'auditor authentication failed'
}

/** Step 5: record pending reads now, unless a running broker will. */
async function flushPendingReads(trailDir: string, owner: Owner, io: AccessIo): Promise<void> {
  if (!('loaded' in owner)) {
    io.err('note: no config owns this trail; the read is recorded when its broker next starts')
    return
  }
  const { config, dataDir } = owner.loaded
  let unlock: () => void
  try {
    unlock = lockDataDir(dataDir)
  } catch {
    // A running broker holds the trail: it records the pending read itself.
    return
  }
  if (trailLeftOpen(trailDir)) {
    // Opening the trail would seal the crashed segment: that is the broker's start, not ours.
    unlock()
    io.err(
      'note: the trail was left open by a crash; the read is recorded when its broker next starts',
    )
    return
  }
  try {
    // Opening the pipeline records every pending read; closing seals the segment.
    await createAuditPipeline({ config, dataDir, configSource: owner.loaded.source }).close()
  } catch (err) {
    const code = (err as { code?: unknown }).code ?? 'error'
    io.err(`note: cannot open the trail to record this read (${String(code)}); it stays pending`)
  } finally {
    unlock()
  }
}

function readSecretFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '')
  } catch {
    return undefined
  }
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b)
  } catch {
    return resolve(a) === resolve(b)
  }
}

function currentUser(): { user: string; uid?: number | undefined } {
  try {
    const info = userInfo()
    return { user: info.username, uid: info.uid >= 0 ? info.uid : undefined }
  } catch {
    return { user: process.env.USER ?? 'unknown' }
  }
}
