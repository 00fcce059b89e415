import assert from 'node:assert/strict'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { createAuditPipeline } from '../../src/audit/pipeline.js'
import { searchTrail } from '../../src/audit/search.js'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { ManualClock } from '../../src/broker/clock.js'
import { parseConfig } from '../../src/config/load.js'
import { AlertingAuditSink } from '../../src/monitor/alerts.js'
import {
  type ClockProbeResult,
  ClockSyncMonitor,
  judgeClockSync,
  parseChronyTracking,
  probeHostClock,
} from '../../src/monitor/clock-sync.js'
import { tempDir } from '../audit/helpers.js'

/** A probe that answers from a script, one result per call (the last one repeats). */
function scripted(results: ClockProbeResult[]): () => Promise<ClockProbeResult> {
  let i = 0
  return async () => results[Math.min(i++, results.length - 1)] as ClockProbeResult
}

describe('host clock sync status (C25)', () => {
  it('the rule: not synchronised, or an offset above the limit either way, is unsynchronised', () => {
    const judge = (p: ClockProbeResult) => judgeClockSync(p, 1000).status
    assert.equal(judge({ source: 'chronyc', synchronised: true, offsetMs: 12.5 }), 'synchronised')
    assert.equal(judge({ source: 'chronyc', synchronised: true, offsetMs: 1000 }), 'synchronised')
    assert.equal(judge({ source: 'chronyc', synchronised: true, offsetMs: 1500 }), 'unsynchronised')
    assert.equal(
      judge({ source: 'chronyc', synchronised: true, offsetMs: -1001 }),
      'unsynchronised',
    )
    assert.equal(judge({ source: 'timedatectl', synchronised: false }), 'unsynchronised')
    assert.equal(judge({ source: 'timedatectl', synchronised: true }), 'synchronised')
    assert.equal(judge({ source: 'none' }), 'unknown')
  })

  it('reads offset and leap status from chronyc -c tracking', () => {
    const line =
      'C0A80001,ntp.example,3,1780315200.123456789,-0.001234567,-0.000001,0.000050,-12.3,0.001,0.02,0.01,0.002,64.5,Normal\n'
    assert.deepEqual(parseChronyTracking(line), {
      source: 'chronyc',
      synchronised: true,
      offsetMs: -1.235,
    })
    const lost = line.replace('Normal', 'Not synchronised').replace('-0.001234567', '2.5')
    assert.deepEqual(parseChronyTracking(lost), {
      source: 'chronyc',
      synchronised: false,
      offsetMs: 2500,
    })
    assert.equal(parseChronyTracking('506 Cannot talk to daemon'), undefined)
  })

  it('records the status at start, then only changes; an unsynchronised clock raises clock-unsynchronised', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0))
    const memory = new MemoryAuditSink('n1', clock)
    const sink = new AlertingAuditSink(memory, { clock })
    const monitor = new ClockSyncMonitor({
      sink,
      clock,
      limitMs: 1000,
      probe: scripted([
        { source: 'chronyc', synchronised: true, offsetMs: 3 },
        { source: 'chronyc', synchronised: true, offsetMs: 40 },
        { source: 'chronyc', synchronised: true, offsetMs: 1800 },
        { source: 'chronyc', synchronised: true, offsetMs: 1900 },
        { source: 'chronyc', synchronised: true, offsetMs: 5 },
      ]),
    })
    for (let i = 0; i < 5; i++) await monitor.check()
    monitor.stop()

    const clockEvents = memory.events
      .filter((e) => e.type.startsWith('clock.'))
      .map((e) => [e.type, (e as { offsetMs?: number }).offsetMs])
    assert.deepEqual(clockEvents, [
      ['clock.sync-status', 3],
      ['clock.unsynchronised', 1800],
      ['clock.sync-status', 5],
    ])
    const alerts = memory.ofType('alert.raised')
    assert.deepEqual(
      alerts.map((a) => [a.rule, a.observed, a.threshold]),
      [['clock-unsynchronised', 1800, 1000]],
    )
  })

  it('with no tool to ask, records "unknown" once, however often it probes', async () => {
    const clock = new ManualClock(0)
    const memory = new MemoryAuditSink('n1', clock)
    const monitor = new ClockSyncMonitor({
      sink: memory,
      clock,
      probe: scripted([{ source: 'none' }]),
    })
    for (let i = 0; i < 4; i++) await monitor.check()
    assert.deepEqual(
      memory.events.map((e) => [e.type, (e as { status?: string }).status]),
      [['clock.sync-status', 'unknown']],
    )
  })

  it('a probe that throws counts as no tool; a result after stop() is not recorded', async () => {
    const memory = new MemoryAuditSink('n1', new ManualClock(0))
    const failing = new ClockSyncMonitor({
      sink: memory,
      probe: () => Promise.reject(new Error('boom')),
    })
    assert.equal((await failing.check()).status, 'unknown')
    const late = new ClockSyncMonitor({ sink: memory, probe: scripted([{ source: 'none' }]) })
    late.stop()
    await late.check()
    assert.equal(memory.events.length, 1)
  })

  it('the host probe answers without throwing, whatever tools this machine has', async () => {
    const r = await probeHostClock()
    assert.ok(['chronyc', 'timedatectl', 'none'].includes(r.source))
  })
})

describe('clock sync in the audit pipeline (C25)', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => {
    ;({ dir, cleanup } = tempDir())
  })
  afterEach(() => cleanup())

  const yaml = (extra = '') =>
    `environment: dev\nlisteners:\n  - { name: dev, type: tcp, host: 127.0.0.1, port: 1883 }\n${extra}`

  it('a pipeline given a probe records the status in the trail; without one (CLI, tests) it does not', async () => {
    const loaded = parseConfig(yaml(), '<inline>', dir)
    const clock = new ManualClock(Date.UTC(2026, 5, 1))
    let resolveProbe: (r: ClockProbeResult) => void = () => {}
    const probed = new Promise<ClockProbeResult>((r) => {
      resolveProbe = r
    })
    const pipeline = createAuditPipeline({
      config: loaded.config,
      dataDir: loaded.dataDir,
      clock,
      clockSyncProbe: () => probed,
    })
    resolveProbe({ source: 'timedatectl', synchronised: false })
    await probed
    await new Promise((r) => setImmediate(r))
    await pipeline.close()
    const trailDir = join(loaded.dataDir, 'audit')
    const recorded = [...searchTrail(trailDir, { types: ['clock.*', 'alert.raised'] })].map((h) => [
      h.record.type,
      h.record.source ?? h.record.rule,
    ])
    assert.deepEqual(recorded, [
      ['clock.unsynchronised', 'timedatectl'],
      ['alert.raised', 'clock-unsynchronised'],
    ])

    const quiet = createAuditPipeline({ config: loaded.config, dataDir: loaded.dataDir, clock })
    await quiet.close()
    assert.equal([...searchTrail(trailDir, { types: ['clock.*'] })].length, 1)
  })

  it('audit.clockSync.enabled: false turns it off', async () => {
    const loaded = parseConfig(yaml('audit: { clockSync: { enabled: false } }\n'), '<inline>', dir)
    let asked = 0
    const pipeline = createAuditPipeline({
      config: loaded.config,
      dataDir: loaded.dataDir,
      clockSyncProbe: async () => {
        asked++
        return { source: 'none' }
      },
    })
    await pipeline.close()
    assert.equal(asked, 0)
  })
})
