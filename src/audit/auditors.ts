/**
 * The `auditor` role (control C27): who may read the audit trail through
 * `phimq audit`. Each auditor is one file in `<dataDir>/auditors/`
 * (directory 0700, file 0600) holding an Argon2id hash of the password
 * and a TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s) for the second
 * factor. A code is accepted once: the step it belongs to is remembered,
 * and an equal or older step is refused (RFC 6238 §5.2).
 *
 * The gate applies to `phimq audit`; an OS user who can read the data
 * directory can still read the files themselves (docs/audit.md).
 */
import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { argon2id, hash, verify } from 'argon2'
import { Secret, TOTP } from 'otpauth'
import { AuditorInvalidError } from '../errors.js'

/** Folder inside the data directory holding one file per auditor. */
export const AUDITORS_DIR = 'auditors'
/** Lower-case letters, digits, `.`, `_`, `-`; starts with a letter; at most 64. */
export const AUDITOR_NAME_PATTERN = /^[a-z][a-z0-9._-]{0,63}$/
export const AUDITOR_PASSWORD_MIN_CHARS = 12
export const TOTP_PERIOD_SECONDS = 30
export const TOTP_DIGITS = 6
/** Codes of the step before and after are accepted too (clock drift, typing time). */
export const TOTP_WINDOW_STEPS = 1
const TOTP_ISSUER = 'phimq'

/** Why an auditor was refused; recorded in the `audit.read` event. */
export type AuditorDenial =
  | 'unknown-auditor'
  | 'bad-password'
  | 'bad-otp'
  | 'otp-reused'
  | 'record-unsafe'

export type AuditorCheck = { ok: true } | { ok: false; reason: AuditorDenial }

/** What is stored per auditor. */
interface AuditorRecord {
  version: 1
  name: string
  createdAt: string
  /** Argon2id, PHC string format. */
  passwordHash: string
  /** Base32. */
  totpSecret: string
  /** TOTP step of the last code accepted; older or equal steps are refused. */
  lastOtpStep: number
}

/** One line of `phimq auditor list`. */
export interface AuditorSummary {
  readonly name: string
  readonly createdAt: string
}

export interface AddAuditorOptions {
  readonly dataDir: string
  readonly name: string
  readonly password: string
  /** Epoch ms; defaults to now. */
  readonly now?: number | undefined
}

/** Shown once at enrolment: load it into an authenticator app. */
export interface AuditorEnrolment {
  readonly name: string
  /** `otpauth://totp/...`: as a QR code or pasted into the app. */
  readonly otpauthUri: string
  /** Base32, for apps that take the secret typed in. */
  readonly secret: string
}

/** Make a new auditor. Refuses a bad name, a short password or an existing name. */
export async function addAuditor(options: AddAuditorOptions): Promise<AuditorEnrolment> {
  const { dataDir, name, password } = options
  checkName(name)
  if (password.length < AUDITOR_PASSWORD_MIN_CHARS) {
    throw new AuditorInvalidError(
      `auditor password must have at least ${AUDITOR_PASSWORD_MIN_CHARS} characters`,
    )
  }
  const secret = new Secret({ size: 20 })
  const record: AuditorRecord = {
    version: 1,
    name,
    createdAt: new Date(options.now ?? Date.now()).toISOString(),
    passwordHash: await hash(password, { type: argon2id }),
    totpSecret: secret.base32,
    lastOtpStep: 0,
  }
  const dir = auditorsDir(dataDir)
  try {
    writeFileSync(recordPath(dataDir, name), JSON.stringify(record), { flag: 'wx', mode: 0o600 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AuditorInvalidError(`auditor ${name} exists already; remove it first`)
    }
    throw new AuditorInvalidError(`cannot write the auditor record in ${dir}`, { cause: err })
  }
  return { name, otpauthUri: totpFor(record).toString(), secret: secret.base32 }
}

/** Every auditor of the data directory, by name. */
export function listAuditors(dataDir: string): AuditorSummary[] {
  let names: string[]
  try {
    names = readdirSync(join(dataDir, AUDITORS_DIR)).filter((n) => n.endsWith('.json'))
  } catch {
    return []
  }
  const out: AuditorSummary[] = []
  for (const file of names.sort()) {
    const record = readRecord(join(dataDir, AUDITORS_DIR, file))
    if (record) out.push({ name: record.name, createdAt: record.createdAt })
  }
  return out
}

/** Delete an auditor; false when there was none of that name. */
export function removeAuditor(dataDir: string, name: string): boolean {
  checkName(name)
  try {
    unlinkSync(recordPath(dataDir, name))
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new AuditorInvalidError(`cannot remove auditor ${name}`, { cause: err })
  }
}

export interface AuthenticateAuditorOptions {
  readonly dataDir: string
  readonly name: string
  readonly password: string
  /** The code the authenticator app shows now. */
  readonly otp: string
  /** Epoch ms; defaults to now (tests pass their own). */
  readonly now?: number | undefined
}

/**
 * Check an auditor's password and one-time code, in that order. On
 * success the code's step is stored so the same code cannot be used again.
 */
export async function authenticateAuditor(
  options: AuthenticateAuditorOptions,
): Promise<AuditorCheck> {
  const { dataDir, name, password, otp } = options
  const path = AUDITOR_NAME_PATTERN.test(name) ? recordPath(dataDir, name) : undefined
  const record = path === undefined ? undefined : readRecord(path)
  if (record === undefined || path === undefined) {
    // Spend the same time as a real check: the answer must not say which names exist.
    await verify(await dummyHash(), password).catch(() => false)
    return { ok: false, reason: 'unknown-auditor' }
  }
  if (isUnsafe(path)) return { ok: false, reason: 'record-unsafe' }
  if (!(await verify(record.passwordHash, password).catch(() => false))) {
    return { ok: false, reason: 'bad-password' }
  }

  const now = options.now ?? Date.now()
  const totp = totpFor(record)
  const token = otp.replace(/\s/g, '')
  const delta = /^\d+$/.test(token)
    ? totp.validate({ token, timestamp: now, window: TOTP_WINDOW_STEPS })
    : null
  if (delta === null) return { ok: false, reason: 'bad-otp' }
  const step = totp.counter({ timestamp: now }) + delta
  if (step <= record.lastOtpStep) return { ok: false, reason: 'otp-reused' }

  writeRecord(path, { ...record, lastOtpStep: step })
  return { ok: true }
}

let dummy: Promise<string> | undefined

/** The hash checked for unknown names, made once per process, when first needed. */
function dummyHash(): Promise<string> {
  dummy ??= hash(randomBytes(16), { type: argon2id })
  return dummy
}

function totpFor(record: AuditorRecord): TOTP {
  return new TOTP({
    issuer: TOTP_ISSUER,
    label: record.name,
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    secret: Secret.fromBase32(record.totpSecret),
  })
}

function checkName(name: string): void {
  if (!AUDITOR_NAME_PATTERN.test(name)) {
    throw new AuditorInvalidError(
      'auditor name: lower-case letters, digits, ".", "_" or "-", starting with a letter, at most 64',
    )
  }
}

/** The auditors folder, made 0700 (and tightened if it was wider). */
function auditorsDir(dataDir: string): string {
  const dir = join(dataDir, AUDITORS_DIR)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  if (process.platform !== 'win32' && (statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700)
  return dir
}

/** Where auditor `name`'s record lives in `dataDir`. */
export function auditorRecordPath(dataDir: string, name: string): string {
  return recordPath(dataDir, name)
}

function recordPath(dataDir: string, name: string): string {
  return join(auditorsDir(dataDir), `${name}.json`)
}

/** A record readable or writable by group or others is not trusted (C27). */
function isUnsafe(path: string): boolean {
  return process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0
}

function readRecord(path: string): AuditorRecord | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return undefined
  }
  const r = raw as Partial<AuditorRecord> | null
  if (
    r?.version !== 1 ||
    typeof r.name !== 'string' ||
    typeof r.createdAt !== 'string' ||
    typeof r.passwordHash !== 'string' ||
    typeof r.totpSecret !== 'string' ||
    typeof r.lastOtpStep !== 'number'
  ) {
    return undefined
  }
  return r as AuditorRecord
}

/** Whole file, then rename: a crash never leaves half a record. */
function writeRecord(path: string, record: AuditorRecord): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
  writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 })
  renameSync(tmp, path)
}
