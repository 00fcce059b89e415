import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { Command } from 'commander'
import { PENDING_READS_DIR } from '../../src/audit/access.js'
import type { AuditEvent } from '../../src/audit/events.js'
import { createAuditPipeline } from '../../src/audit/pipeline.js'
import { searchTrail, topicFilterMatches } from '../../src/audit/search.js'
import { TrailAuditSink } from '../../src/audit/trail.js'
import { verifyTrail } from '../../src/audit/verify.js'
import { ManualClock } from '../../src/broker/clock.js'
import { registerAuditCommands } from '../../src/cli/audit.js'
import { loadConfigFile } from '../../src/config/load.js'
import { actor, denied, tempDir } from './helpers.js'

let dir: string
let cleanup: () => void

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

/** A data directory with a config that owns its trail, as `phimq init` lays it out. */
async function writeOwnedTrail(): Promise<string> {
  writeFileSync(
    join(dir, 'phimq.yaml'),
    'environment: dev\ndataDir: .\nlisteners:\n  - { name: dev, type: tcp, host: 127.0.0.1, port: 0 }\nmetrics: { enabled: false }\n',
  )
  const loaded = loadConfigFile(join(dir, 'phimq.yaml'))
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0))
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

async function writeTrail(): Promise<string> {
  // The config owning the trail: `dev`, so `--no-auditor` is allowed.
  writeFileSync(
    join(dir, 'phimq.yaml'),
    'environment: dev\ndataDir: .\nnodeId: n1\nlisteners:\n  - { name: dev, type: tcp, host: 127.0.0.1, port: 0 }\nmetrics: { enabled: false }\naudit: { trail: { keyFile: key.pem } }\n',
  )
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0))
  const trailDir = join(dir, 'audit')
  const sink = new TrailAuditSink({
    dir: trailDir,
    keyPath: join(dir, 'key.pem'),
    nodeId: 'n1',
    // What the broker records at start: `--no-auditor` trusts these, not the config given.
    environment: 'dev',
    configSource: join(dir, 'phimq.yaml'),
    clock,
  })
  const sub: AuditEvent = {
    type: 'subscribe.denied',
    actor: actor('monitor-9', 'clinic-b'),
    filter: '#',
    reasonCode: 0x87,
    rule: 'policy.wildcard',
  }
  sink.emit(denied(1, 'sensor-1'))
  clock.advance(60_000)
  sink.emit(denied(2, 'sensor-2'))
  clock.advance(60_000)
  sink.emit(sub)
  sink.emit({ type: 'retained.cleared', actor: actor(), topic: 'clinic-a/beds/4' })
  await sink.close()
  return trailDir
}

describe('phimq audit CLI (C27)', () => {
  beforeEach(() => {
    ;({ dir, cleanup } = tempDir())
  })
  afterEach(() => cleanup())

  it('verify reports ok and exits 0 on an intact trail', async () => {
    const trailDir = await writeTrail()
    const r = await run('audit', 'verify', '--no-auditor', '--dir', trailDir)
    assert.equal(r.code, 0)
    // One: verify read the files as they were; the segment recording this read came after.
    assert.match(r.out[0] ?? '', /^audit trail ok: 1 segments/)
    assert.equal(verifyTrail({ dir: trailDir }).segments, 2, 'the read was recorded afterwards')
  })

  it('verify names the record whose byte was edited and exits non-zero', async () => {
    const trailDir = await writeTrail()
    const path = join(trailDir, 'audit-00000001.jsonl')
    const bytes = readFileSync(path)
    const lines = bytes.toString('utf8').split('\n')
    // Flip one byte inside record 2 (the second denial).
    const offset = lines.slice(0, 2).reduce((n, l) => n + l.length + 1, 0) + 40
    bytes[offset] = (bytes[offset] as number) ^ 0x01
    writeFileSync(path, bytes)

    const r = await run('audit', 'verify', '--no-auditor', '--dir', trailDir)
    assert.equal(r.code, 1)
    assert.match(r.err.join('\n'), /broken at audit-00000001\.jsonl record 2\b/)
  })

  it('verify with a stranger trusted key rejects the checkpoints', async () => {
    const trailDir = await writeTrail()
    const { generateKeyPairSync } = await import('node:crypto')
    const { publicKey } = generateKeyPairSync('ed25519')
    const keyPath = join(dir, 'other.pub.pem')
    writeFileSync(keyPath, publicKey.export({ type: 'spki', format: 'pem' }))
    const r = await run('audit', 'verify', '--no-auditor', '--dir', trailDir, '--key', keyPath)
    assert.equal(r.code, 1)
    assert.match(r.err.join('\n'), /unknown key/)
  })

  it('search filters by time, type, client and topic filter, with --json', async () => {
    const trailDir = await writeTrail()
    const byTopic = await run(
      'audit',
      'search',
      '--no-auditor',
      '--dir',
      trailDir,
      '--topic',
      'clinic-a/ward/+',
    )
    assert.equal(byTopic.out.at(-1), '2 record(s)')

    const byClient = await run(
      'audit',
      'search',
      '--no-auditor',
      '--dir',
      trailDir,
      '--client',
      'sensor-2',
      '--json',
    )
    assert.equal(byClient.out.length, 1)
    const rec = JSON.parse(byClient.out[0] as string) as { topic: string }
    assert.equal(rec.topic, 'clinic-a/ward/2')

    const byTime = await run(
      'audit',
      'search',
      '--no-auditor',
      '--dir',
      trailDir,
      '--from',
      '2026-06-01T12:01:00Z',
      '--to',
      '2026-06-01T12:02:00Z',
      '--type',
      'publish.denied',
    )
    assert.equal(byTime.out.at(-1), '1 record(s)')
    assert.match(byTime.out[0] ?? '', /12:01:00.000Z publish.denied sensor-2 clinic-a\/ward\/2/)

    const byPrefix = await run(
      'audit',
      'search',
      '--no-auditor',
      '--dir',
      trailDir,
      '--type',
      'retained.*,subscribe.denied',
    )
    assert.equal(byPrefix.out.at(-1), '2 record(s)')
  })

  it('search refuses a malformed time with exit code 2', async () => {
    const trailDir = await writeTrail()
    const r = await run('audit', 'search', '--no-auditor', '--dir', trailDir, '--from', 'yesterday')
    assert.equal(r.code, 2)
  })

  it('every read of the trail is itself recorded: who, which command, filters with topics masked (C27)', async () => {
    const trailDir = await writeOwnedTrail()
    const search = await run(
      'audit',
      'search',
      '--no-auditor',
      '--dir',
      trailDir,
      '--client',
      'sensor-1',
      '--topic',
      'clinic-a/078-05-1120/#',
    )
    assert.equal(search.code, 0)
    assert.deepEqual(search.err, [])
    const verify = await run('audit', 'verify', '--no-auditor', '--dir', trailDir)
    assert.equal(verify.code, 0, verify.err.join('\n'))

    const reads = [...searchTrail(trailDir, { types: ['audit.read'] })].map((h) => h.record)
    assert.deepEqual(
      reads.map((r) => r.command),
      ['search', 'verify'],
    )
    const first = reads[0] as {
      user: string
      pid: number
      filters: { client?: string; topic?: string }
    }
    assert.equal(first.user, userInfo().username)
    assert.equal(first.pid, process.pid)
    assert.equal(first.filters.client, 'sensor-1')
    assert.match(first.filters.topic ?? '', /^clinic-a\/.+\/#$/)
    assert.equal(JSON.stringify(reads).includes('078-05-1120'), false, 'topic masked')
    assert.deepEqual(readdirSync(join(trailDir, PENDING_READS_DIR)), [], 'nothing left pending')
    // The trail with its read records still verifies.
    assert.equal(verifyTrail({ dir: trailDir }).ok, true)
  })

  it('the auditor name and the --client filter are recorded with PHI masked (synthetic e-mail)', async () => {
    const trailDir = await writeOwnedTrail()
    const email = 'pat.synthetic@example.org'
    const search = await run(
      'audit',
      'search',
      '--no-auditor',
      '--dir',
      trailDir,
      '--client',
      email,
    )
    assert.equal(search.code, 0, search.err.join('\n'))
    // An auditor name that is an e-mail address: refused (no credentials), still recorded.
    const named = await run('audit', 'verify', '--dir', trailDir, '--auditor', email)
    assert.equal(named.code, 2)

    const reads = [...searchTrail(trailDir, { types: ['audit.read'] })].map((h) => h.record)
    assert.equal(reads.length, 2)
    const text = JSON.stringify(reads)
    assert.equal(text.includes('pat.synthetic'), false, text)
    assert.equal(text.includes('example.org'), false, text)
    const [first, second] = reads as Array<{ filters?: { client?: string }; auditor?: string }>
    assert.match(first?.filters?.client ?? '', /\*\*\*/)
    assert.match(second?.auditor ?? '', /\*\*\*/)
  })

  it('while a broker holds phimq.pid the CLI leaves the read to it and never writes the trail (C27)', async () => {
    const trailDir = await writeOwnedTrail()
    const before = readdirSync(trailDir)
      .filter((n) => n.startsWith('audit-'))
      .map((n) => [n, statSync(join(trailDir, n)).size])
    // This test process plays the running broker: a live pid in the lock.
    writeFileSync(join(dir, 'phimq.pid'), `${process.pid}\n`)
    const r = await run(
      'audit',
      'search',
      '--no-auditor',
      '--dir',
      trailDir,
      '--type',
      'publish.denied',
    )
    assert.equal(r.code, 0)
    const after = readdirSync(trailDir)
      .filter((n) => n.startsWith('audit-'))
      .map((n) => [n, statSync(join(trailDir, n)).size])
    assert.deepEqual(after, before, 'the CLI appended nothing to the trail')
    assert.equal(readdirSync(join(trailDir, PENDING_READS_DIR)).length, 1)

    // The broker's pipeline records the pending read (at start, then every second).
    const loaded = loadConfigFile(join(dir, 'phimq.yaml'))
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 13, 0, 0))
    const pipeline = createAuditPipeline({
      config: loaded.config,
      dataDir: loaded.dataDir,
      configSource: loaded.source,
      clock,
    })
    await pipeline.close()
    const reads = [...searchTrail(trailDir, { types: ['audit.read'] })].map((h) => h.record)
    assert.equal(reads.length, 1)
    assert.deepEqual((reads[0] as { filters: unknown }).filters, { types: ['publish.denied'] })
    assert.deepEqual(readdirSync(join(trailDir, PENDING_READS_DIR)), [])
  })

  it('a read that cannot be recorded is refused: nothing is read (C27, fail closed)', async () => {
    const trailDir = await writeTrail()
    // A file where the pending-reads folder should be: the read cannot be queued.
    writeFileSync(join(trailDir, PENDING_READS_DIR), '')
    const r = await run('audit', 'search', '--no-auditor', '--dir', trailDir)
    assert.equal(r.code, 2)
    assert.deepEqual(r.out, [])
    assert.match(r.err.join('\n'), /cannot record this read/)
  })

  it('topic filters follow MQTT matching rules [MQTT-4.7.1-2] [MQTT-4.7.2-1]', () => {
    assert.equal(topicFilterMatches('a/#', 'a'), true)
    assert.equal(topicFilterMatches('a/+/c', 'a/b/c'), true)
    assert.equal(topicFilterMatches('a/+', 'a/b/c'), false)
    assert.equal(topicFilterMatches('#', '$SYS/x'), false)
    assert.equal(topicFilterMatches('+/x', '$SYS/x'), false)
    assert.equal(topicFilterMatches('a/b', 'a/b/c'), false)
  })
})
