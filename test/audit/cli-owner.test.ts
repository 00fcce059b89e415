/**
 * `phimq audit` trusts the trail, not the config it is handed (C27): the
 * config must be the one the trail's broker last started with, and the dev
 * bypass needs every start recorded in the trail to say `dev`.
 */
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { Command } from 'commander'
import { PENDING_READS_DIR } from '../../src/audit/access.js'
import { createAuditPipeline } from '../../src/audit/pipeline.js'
import { searchTrail } from '../../src/audit/search.js'
import { ManualClock } from '../../src/broker/clock.js'
import { registerAuditCommands } from '../../src/cli/audit.js'
import { loadConfigFile } from '../../src/config/load.js'
import { denied, tempDir } from './helpers.js'

let dir: string
let cleanup: () => void
const T0 = Date.UTC(2026, 5, 1, 12, 0, 0)

async function run(...args: string[]): Promise<{ out: string[]; err: string[]; code: number }> {
  const out: string[] = []
  const err: string[] = []
  let code = 0
  const program = new Command('phimq').exitOverride()
  registerAuditCommands(program, {
    env: {},
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    exit: (c) => {
      code = c
    },
  })
  await program.parseAsync(['node', 'phimq', ...args])
  return { out, err, code }
}

const TLS_LISTENER =
  '  - { name: m, type: mqtts, host: 127.0.0.1, port: 0, tls: { cert: c.pem, key: k.pem, ca: ca.pem } }'
const DEV_LISTENER = '  - { name: dev, type: tcp, host: 127.0.0.1, port: 0 }'

function config(environment: string, dataDir: string): string {
  const listener = environment === 'dev' ? DEV_LISTENER : TLS_LISTENER
  return `environment: ${environment}\ndataDir: ${dataDir}\nlisteners:\n${listener}\nmetrics: { enabled: false }\n`
}

/** Run the pipeline once with `file`, as the broker does at start, leaving one record. */
async function startOnce(file: string, at: number): Promise<void> {
  const loaded = loadConfigFile(file)
  const pipeline = createAuditPipeline({
    config: loaded.config,
    dataDir: loaded.dataDir,
    configSource: loaded.source,
    clock: new ManualClock(at),
  })
  pipeline.sink.emit(denied(1, 'sensor-1'))
  await pipeline.close()
}

function pendingReads(trailDir: string): Record<string, unknown>[] {
  const folder = join(trailDir, PENDING_READS_DIR)
  return readdirSync(folder)
    .filter((n) => n.endsWith('.json'))
    .map((n) => JSON.parse(readFileSync(join(folder, n), 'utf8')) as Record<string, unknown>)
}

describe('phimq audit trusts the trail, not the config it is given (C27)', () => {
  beforeEach(() => {
    ;({ dir, cleanup } = tempDir())
  })
  afterEach(() => cleanup())

  it('a copied dev config pointed at a test trail gets no --no-auditor bypass and reads nothing', async () => {
    const data = join(dir, 'prod2')
    mkdirSync(data)
    writeFileSync(join(data, 'phimq.yaml'), config('test', '.'))
    await startOnce(join(data, 'phimq.yaml'), T0)
    const trailDir = join(data, 'audit')
    const before = readdirSync(trailDir).filter((n) => n.startsWith('audit-'))

    // The attack: a config the reader wrote, saying dev, naming that data directory.
    const fake = join(dir, 'fake.yaml')
    writeFileSync(fake, config('dev', './prod2'))
    const r = await run('audit', 'search', '--no-auditor', '--dir', trailDir, '--config', fake)

    assert.equal(r.code, 2)
    assert.deepEqual(r.out, [], 'nothing of the trail printed')
    assert.match(r.err.join('\n'), /not the config this trail's broker last started with/)
    assert.match(r.err.join('\n'), /\[PHIMQ_AUDITOR_DENIED\]/)
    // The refusal waits for the broker's next start; the fake config opened no trail.
    const [read] = pendingReads(trailDir)
    assert.equal(read?.result, 'denied')
    assert.equal(read?.reason, 'no-owner')
    assert.equal(read?.devBypass, undefined)
    const after = readdirSync(trailDir).filter((n) => n.startsWith('audit-'))
    assert.deepEqual(after, before, 'the fake config wrote no segment')
  })

  it('a config switched to dev after a non-dev start gets no bypass: every recorded start must say dev', async () => {
    const file = join(dir, 'phimq.yaml')
    writeFileSync(file, config('test', '.'))
    await startOnce(file, T0)
    // The owner edits its own config to dev (and starts once with it).
    writeFileSync(file, config('dev', '.'))
    await startOnce(file, T0 + 60_000)

    const trailDir = join(dir, 'audit')
    const r = await run('audit', 'verify', '--no-auditor', '--dir', trailDir)
    assert.equal(r.code, 2)
    assert.deepEqual(r.out, [])
    assert.match(r.err.join('\n'), /only run with environment: dev/)
    const reads = [...searchTrail(trailDir, { types: ['audit.read'] })].map((h) => h.record)
    assert.deepEqual(
      reads.map((x) => [x.result, x.reason]),
      [['denied', 'bypass-refused']],
    )
  })

  it('a trail whose starts name no environment (an older trail) refuses the bypass (fail closed)', async () => {
    const file = join(dir, 'phimq.yaml')
    writeFileSync(file, config('dev', '.'))
    await startOnce(file, T0)
    // Strip the environment from the start record, re-sealing it as an older version wrote it.
    const trailDir = join(dir, 'audit')
    const path = join(trailDir, 'audit-00000001.jsonl')
    const lines = readFileSync(path, 'utf8').split('\n')
    const { createHash } = await import('node:crypto')
    const first = (lines[0] as string).replace(/,"hash":"[0-9a-f]{64}"\}$/, '}')
    const body = first.replace(/"environment":"dev",/, '')
    const hash = createHash('sha256').update(body).digest('hex')
    lines[0] = `${body.slice(0, -1)},"hash":"${hash}"}`
    writeFileSync(path, lines.join('\n'))
    // A later start with the environment does not make the older one dev.
    await startOnce(file, T0 + 60_000)

    const r = await run('audit', 'search', '--no-auditor', '--dir', trailDir)
    assert.equal(r.code, 2)
    assert.deepEqual(r.out, [])
  })

  it('a config with an absolute trail.dir and its own auditors does not own the trail', async () => {
    const file = join(dir, 'phimq.yaml')
    writeFileSync(file, config('test', '.'))
    await startOnce(file, T0)
    const trailDir = join(dir, 'audit')
    // Elsewhere: a data directory the reader controls, with the real trail named absolutely.
    const mine = join(dir, 'mine')
    mkdirSync(mine)
    const fake = join(mine, 'phimq.yaml')
    writeFileSync(fake, `${config('test', '.')}audit: { trail: { dir: ${trailDir} } }\n`)
    const r = await run(
      'audit',
      'search',
      '--dir',
      trailDir,
      '--config',
      fake,
      '--auditor',
      'mallory',
      '--otp',
      '123456',
      '--password-file',
      fake,
    )
    assert.equal(r.code, 2)
    assert.deepEqual(r.out, [])
    assert.match(r.err.join('\n'), /not the config this trail's broker last started with/)
  })
})
