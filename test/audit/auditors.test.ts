import assert from 'node:assert/strict'
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { TOTP, URI } from 'otpauth'
import {
  AUDITORS_DIR,
  addAuditor,
  authenticateAuditor,
  listAuditors,
  removeAuditor,
} from '../../src/audit/auditors.js'
import { AuditorInvalidError } from '../../src/errors.js'
import { tempDir } from './helpers.js'

let dir: string
let cleanup: () => void
const PASSWORD = 'correct horse battery'
const T0 = Date.UTC(2026, 5, 1, 12, 0, 10)

/** The code an authenticator app loaded with `uri` shows at `time`. */
function codeAt(uri: string, time: number): string {
  const otp = URI.parse(uri)
  assert.ok(otp instanceof TOTP)
  return otp.generate({ timestamp: time })
}

describe('auditor role: Argon2id password and TOTP (C27)', () => {
  beforeEach(() => {
    ;({ dir, cleanup } = tempDir())
  })
  afterEach(() => cleanup())

  it('stores an Argon2id hash and a TOTP secret in a 0600 file in a 0700 folder, never the password', async () => {
    const e = await addAuditor({ dataDir: dir, name: 'alice', password: PASSWORD, now: T0 })
    assert.match(e.otpauthUri, /^otpauth:\/\/totp\/phimq:alice\?.*secret=[A-Z2-7]+/)
    const path = join(dir, AUDITORS_DIR, 'alice.json')
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.equal(statSync(join(dir, AUDITORS_DIR)).mode & 0o777, 0o700)
    const text = readFileSync(path, 'utf8')
    assert.match(text, /"passwordHash":"\$argon2id\$v=19\$/)
    assert.equal(text.includes(PASSWORD), false)
    assert.deepEqual(listAuditors(dir), [{ name: 'alice', createdAt: new Date(T0).toISOString() }])
  })

  it('accepts the right password with the current code, and the same code only once', async () => {
    const e = await addAuditor({ dataDir: dir, name: 'alice', password: PASSWORD })
    const otp = codeAt(e.otpauthUri, T0)
    const login = { dataDir: dir, name: 'alice', password: PASSWORD, otp, now: T0 }
    assert.deepEqual(await authenticateAuditor(login), { ok: true })
    assert.deepEqual(await authenticateAuditor(login), { ok: false, reason: 'otp-reused' })
    // The next step's code is fresh.
    const next = { ...login, otp: codeAt(e.otpauthUri, T0 + 30_000), now: T0 + 30_000 }
    assert.deepEqual(await authenticateAuditor(next), { ok: true })
  })

  it('refuses a wrong password, a wrong code, an expired code and an unknown auditor', async () => {
    const e = await addAuditor({ dataDir: dir, name: 'alice', password: PASSWORD })
    const otp = codeAt(e.otpauthUri, T0)
    const base = { dataDir: dir, name: 'alice', password: PASSWORD, otp, now: T0 }

    const wrongPassword = await authenticateAuditor({ ...base, password: 'not the password' })
    assert.deepEqual(wrongPassword, { ok: false, reason: 'bad-password' })
    const wrongCode = String((Number(otp) + 1) % 1_000_000).padStart(6, '0')
    assert.deepEqual(await authenticateAuditor({ ...base, otp: wrongCode }), {
      ok: false,
      reason: 'bad-otp',
    })
    // Two steps (60 s) late is past the one-step window.
    assert.deepEqual(await authenticateAuditor({ ...base, now: T0 + 61_000 }), {
      ok: false,
      reason: 'bad-otp',
    })
    assert.deepEqual(await authenticateAuditor({ ...base, otp: 'abcdef' }), {
      ok: false,
      reason: 'bad-otp',
    })
    assert.deepEqual(await authenticateAuditor({ ...base, name: 'mallory' }), {
      ok: false,
      reason: 'unknown-auditor',
    })
    assert.deepEqual(await authenticateAuditor({ ...base, name: '../alice' }), {
      ok: false,
      reason: 'unknown-auditor',
    })
    // None of the refusals used the code up.
    assert.deepEqual(await authenticateAuditor(base), { ok: true })
  })

  it('accepts a code from the step before (clock drift, typing time)', async () => {
    const e = await addAuditor({ dataDir: dir, name: 'alice', password: PASSWORD })
    const otp = codeAt(e.otpauthUri, T0 - 30_000)
    const r = await authenticateAuditor({
      dataDir: dir,
      name: 'alice',
      password: PASSWORD,
      otp,
      now: T0,
    })
    assert.deepEqual(r, { ok: true })
  })

  it('refuses a record readable by group or others (fail closed)', async () => {
    const e = await addAuditor({ dataDir: dir, name: 'alice', password: PASSWORD })
    chmodSync(join(dir, AUDITORS_DIR, 'alice.json'), 0o644)
    const otp = codeAt(e.otpauthUri, T0)
    const r = await authenticateAuditor({
      dataDir: dir,
      name: 'alice',
      password: PASSWORD,
      otp,
      now: T0,
    })
    assert.deepEqual(r, { ok: false, reason: 'record-unsafe' })
  })

  it('refuses a bad name, a short password and a taken name; remove deletes the record', async () => {
    await assert.rejects(
      addAuditor({ dataDir: dir, name: '../x', password: PASSWORD }),
      AuditorInvalidError,
    )
    await assert.rejects(
      addAuditor({ dataDir: dir, name: 'bob', password: 'short' }),
      (err: unknown) => err instanceof AuditorInvalidError && /12 characters/.test(err.message),
    )
    await addAuditor({ dataDir: dir, name: 'bob', password: PASSWORD })
    await assert.rejects(
      addAuditor({ dataDir: dir, name: 'bob', password: PASSWORD }),
      /exists already/,
    )
    assert.equal(removeAuditor(dir, 'bob'), true)
    assert.equal(removeAuditor(dir, 'bob'), false)
    assert.deepEqual(readdirSync(join(dir, AUDITORS_DIR)), [])
  })
})
