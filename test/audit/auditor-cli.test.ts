import assert from 'node:assert/strict'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { Command } from 'commander'
import { TOTP, URI } from 'otpauth'
import { createAuditPipeline } from '../../src/audit/pipeline.js'
import { searchTrail } from '../../src/audit/search.js'
import { verifyTrail } from '../../src/audit/verify.js'
import { ManualClock } from '../../src/broker/clock.js'
import { registerAuditCommands } from '../../src/cli/audit.js'
import { registerAuditorCommands } from '../../src/cli/auditor.js'
import { loadConfigFile } from '../../src/config/load.js'
import { denied, tempDir } from './helpers.js'

let dir: string
let cleanup: () => void
const PASSWORD = 'synthetic auditor pass'
const T0 = Date.UTC(2026, 5, 1, 12, 0, 10)

interface Run {
  out: string[]
  err: string[]
  code: number
}

/** Run `phimq ...` in this process, with `env` and the time the CLI sees. */
async function run(
  args: string[],
  env: Record<string, string> = {},
  now: number = T0,
): Promise<Run> {
  const r: Run = { out: [], err: [], code: 0 }
  const program = new Command('phimq').exitOverride()
  registerAuditCommands(program, {
    env,
    now: () => now,
    out: (l) => r.out.push(l),
    err: (l) => r.err.push(l),
    exit: (c) => {
      r.code = c
    },
  })
  registerAuditorCommands(program, { env, out: (l) => r.out.push(l) })
  await program.parseAsync(['node', 'phimq', ...args])
  return r
}

/** A `test` (not `dev`) data directory whose config owns its trail, with one record in it. */
async function writeOwnedTrail(): Promise<string> {
  writeFileSync(
    join(dir, 'phimq.yaml'),
    [
      'environment: test',
      'dataDir: .',
      'listeners:',
      '  - { name: m, type: mqtts, host: 127.0.0.1, port: 0, tls: { cert: c.pem, key: k.pem, ca: ca.pem } }',
      'metrics: { enabled: false }',
      '',
    ].join('\n'),
  )
  const loaded = loadConfigFile(join(dir, 'phimq.yaml'))
  const clock = new ManualClock(T0 - 60_000)
  const pipeline = createAuditPipeline({
    config: loaded.config,
    dataDir: loaded.dataDir,
    configSource: loaded.source,
    clock,
  })
  pipeline.sink.emit(denied(1, 'sensor-1'))
  await pipeline.close()
  return join(dir, 'audit')
}

/** `phimq auditor add alice`, returning the enrolment URI it printed. */
async function enrol(name = 'alice'): Promise<string> {
  const file = join(dir, `${name}.pass`)
  writeFileSync(file, `${PASSWORD}\n`, { mode: 0o600 })
  const r = await run(['auditor', 'add', name, '--dir', dir, '--password-file', file])
  const uri = r.out.find((l) => l.trim().startsWith('otpauth://'))?.trim()
  assert.ok(uri, 'the enrolment URI is printed')
  return uri
}

function codeAt(uri: string, time: number): string {
  const otp = URI.parse(uri)
  assert.ok(otp instanceof TOTP)
  return otp.generate({ timestamp: time })
}

function reads(trailDir: string): Record<string, unknown>[] {
  return [...searchTrail(trailDir, { types: ['audit.read'] })].map((h) => h.record)
}

describe('phimq audit: read access only for an auditor with MFA (C27)', () => {
  beforeEach(() => {
    ;({ dir, cleanup } = tempDir())
  })
  afterEach(() => cleanup())

  it('an auditor with password and current one-time code reads; the read names the auditor', async () => {
    const trailDir = await writeOwnedTrail()
    const uri = await enrol()
    const pass = join(dir, 'alice.pass')
    const search = await run([
      'audit',
      'search',
      '--dir',
      trailDir,
      '--type',
      'publish.denied',
      '--auditor',
      'alice',
      '--password-file',
      pass,
      '--otp',
      codeAt(uri, T0),
    ])
    assert.equal(search.code, 0, search.err.join('\n'))
    assert.equal(search.out.at(-1), '1 record(s)')

    // Password and code from the environment; the next step's code.
    const verify = await run(
      ['audit', 'verify', '--dir', trailDir, '--auditor', 'alice'],
      {
        PHIMQ_AUDITOR_PASSWORD: PASSWORD,
        PHIMQ_AUDITOR_OTP: codeAt(uri, T0 + 30_000),
      },
      T0 + 30_000,
    )
    assert.equal(verify.code, 0, verify.err.join('\n'))
    assert.match(verify.out[0] ?? '', /^audit trail ok/)

    const recorded = reads(trailDir).map((r) => [r.command, r.result, r.auditor, r.reason])
    assert.deepEqual(recorded, [
      ['search', 'granted', 'alice', undefined],
      ['verify', 'granted', 'alice', undefined],
    ])
    assert.equal(JSON.stringify(reads(trailDir)).includes(PASSWORD), false, 'no password recorded')
    assert.equal(verifyTrail({ dir: trailDir }).ok, true)
  })

  it('every refusal reads nothing, exits 2 with PHIMQ_AUDITOR_DENIED and is recorded with its reason', async () => {
    const trailDir = await writeOwnedTrail()
    const uri = await enrol()
    const code = codeAt(uri, T0)
    const wrongCode = String((Number(code) + 1) % 1_000_000).padStart(6, '0')
    const good = { PHIMQ_AUDITOR_PASSWORD: PASSWORD }
    const search = ['audit', 'search', '--dir', trailDir]
    const tries: [string, string[], Record<string, string>][] = [
      ['no-auditor', search, good],
      ['bypass-refused', [...search, '--no-auditor'], good],
      ['unknown-auditor', [...search, '--auditor', 'mallory', '--otp', code], good],
      [
        'bad-password',
        [...search, '--auditor', 'alice', '--otp', code],
        { PHIMQ_AUDITOR_PASSWORD: 'a wrong password' },
      ],
      ['bad-otp', [...search, '--auditor', 'alice', '--otp', wrongCode], good],
      // A code from five minutes ago.
      ['bad-otp', [...search, '--auditor', 'alice', '--otp', codeAt(uri, T0 - 300_000)], good],
      ['no-credentials', [...search, '--auditor', 'alice'], good],
    ]
    for (const [reason, args, env] of tries) {
      const r = await run(args, env)
      assert.equal(r.code, 2, reason)
      assert.deepEqual(r.out, [], `${reason}: nothing read`)
      assert.match(r.err.join('\n'), /\[PHIMQ_AUDITOR_DENIED\]/, reason)
    }
    // The right code works once; the second use is refused.
    assert.equal((await run([...search, '--auditor', 'alice', '--otp', code], good)).code, 0)
    const replay = await run([...search, '--auditor', 'alice', '--otp', code], good)
    assert.equal(replay.code, 2)

    const recorded = reads(trailDir).map((r) => [r.result, r.reason])
    assert.deepEqual(recorded, [
      ...tries.map(([reason]) => ['denied', reason]),
      ['granted', undefined],
      ['denied', 'otp-reused'],
    ])
    // The wrong auditor name is recorded as given.
    assert.equal(reads(trailDir)[2]?.auditor, 'mallory')
  })

  it('the refusal says which factor failed only when that is no secret: a reused code, an unsafe record mode', async () => {
    const trailDir = await writeOwnedTrail()
    const uri = await enrol()
    const search = ['audit', 'search', '--dir', trailDir, '--auditor', 'alice']
    const code = codeAt(uri, T0)

    const wrongPassword = await run([...search, '--otp', code], {
      PHIMQ_AUDITOR_PASSWORD: 'a wrong password',
    })
    const unknown = await run(
      ['audit', 'search', '--dir', trailDir, '--auditor', 'bob', '--otp', code],
      {
        PHIMQ_AUDITOR_PASSWORD: PASSWORD,
      },
    )
    // Wrong password and unknown name: the same line, and no word about one-time codes.
    assert.equal(wrongPassword.err.join('\n'), unknown.err.join('\n'))
    assert.match(
      wrongPassword.err.join('\n'),
      /^phimq: auditor authentication failed \[PHIMQ_AUDITOR_DENIED\]$/,
    )

    const good = { PHIMQ_AUDITOR_PASSWORD: PASSWORD }
    assert.equal((await run([...search, '--otp', code], good)).code, 0)
    const reused = await run([...search, '--otp', code], good)
    assert.match(reused.err.join('\n'), /one-time code was used already: wait for the next/)

    chmodSync(join(dir, 'auditors', 'alice.json'), 0o644)
    const unsafe = await run([...search, '--otp', codeAt(uri, T0 + 30_000)], good, T0 + 30_000)
    assert.equal(unsafe.code, 2)
    const text = unsafe.err.join('\n')
    assert.match(text, /file mode is unsafe.*chmod 600 .*alice\.json/)
    assert.doesNotMatch(text, /one-time/)
  })

  it('a trail no config owns is not read: no auditor can be checked (fail closed)', async () => {
    const trailDir = await writeOwnedTrail()
    const elsewhere = join(dir, 'other.yaml')
    writeFileSync(elsewhere, 'environment: dev\ndataDir: ./elsewhere\nlisteners: []\n')
    const r = await run([
      'audit',
      'search',
      '--dir',
      trailDir,
      '--config',
      elsewhere,
      '--no-auditor',
    ])
    assert.equal(r.code, 2)
    assert.deepEqual(r.out, [])
    assert.match(r.err.join('\n'), /does not own this trail|cannot be loaded/)
  })

  it('auditor list and remove; a removed auditor is refused', async () => {
    const trailDir = await writeOwnedTrail()
    const uri = await enrol()
    const list = await run(['auditor', 'list', '--dir', dir])
    assert.match(list.out[0] ?? '', /^alice added 20\d\d-/)
    assert.equal(list.out.at(-1), '1 auditor(s)')
    await run(['auditor', 'remove', 'alice', '--dir', dir])
    const r = await run(
      ['audit', 'verify', '--dir', trailDir, '--auditor', 'alice', '--otp', codeAt(uri, T0)],
      { PHIMQ_AUDITOR_PASSWORD: PASSWORD },
    )
    assert.equal(r.code, 2)
    assert.equal(reads(trailDir).at(-1)?.reason, 'unknown-auditor')
  })
})
