// The benchmark's arithmetic (issue #7): medians, the choice of runs and the
// ratio to Mosquitto. No speed is asserted here: a benchmark is not a test.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  median,
  pickRuns,
  type RunRecord,
  ratioTo,
  renderMarkdown,
  summarize,
} from '../../bench/report.js'

function fanin(broker: string, rep: number, perSec: number, extra: Partial<RunRecord> = {}) {
  const r: RunRecord = {
    id: 'fanin-q0',
    broker,
    rep,
    try: 1,
    contaminated: false,
    workload: 'fanin',
    deliveredPerSec: perSec,
    lostTotal: 0,
    seqGaps: 0,
    latencyMs: { p50: 1, p99: 2, p999: 3 },
    genCpuPct: 50,
    brokerCpuPct: 99,
    otherCpuPct: 1,
  }
  return { ...r, ...extra }
}

describe('bench report arithmetic', () => {
  it('takes the middle value of an odd count and the mean of the two middles of an even one', () => {
    assert.equal(median([3, 1, 2]), 2)
    assert.equal(median([4, 1, 3, 2]), 2.5)
    assert.equal(median([]), null)
    assert.equal(median([null, undefined, Number.NaN, 7]), 7)
  })

  it('gives no ratio without a reference figure or against zero', () => {
    assert.equal(ratioTo(50, 100), 0.5)
    assert.equal(ratioTo(50, null), null)
    assert.equal(ratioTo(50, 0), null)
  })

  it('prefers a clean repeat over a run disturbed by neighbours', () => {
    const disturbed = fanin('aedes', 1, 10, { contaminated: true })
    const repeat = fanin('aedes', 1, 20, { try: 2 })
    assert.deepEqual(pickRuns([disturbed, repeat]), [repeat])
    assert.deepEqual(pickRuns([repeat, disturbed]), [repeat])
  })

  it('reports the median of the repetitions and its ratio to mosquitto', () => {
    const runs = [
      fanin('mosquitto', 1, 100),
      fanin('phimq', 1, 150),
      fanin('mosquitto', 2, 80),
      fanin('phimq', 2, 50),
      fanin('mosquitto', 3, 90),
      fanin('phimq', 3, 180),
    ]
    const [mosq, phimq] = summarize(runs)
    assert.equal(mosq?.median, 90)
    assert.equal(mosq?.ratio, 1)
    assert.equal(phimq?.median, 150)
    assert.equal(phimq?.ratio, 150 / 90)
    assert.deepEqual(phimq?.all, [150, 50, 180])
  })

  it('gives a second ratio in the notes where a workload names another reference', () => {
    const durable = (broker: string, perSec: number): RunRecord => ({
      ...fanin(broker, 1, perSec),
      id: 'durable-q1',
    })
    const rows = summarize(
      [durable('phimq-bare', 1000), durable('phimq-sqlite', 800)],
      'mosquitto',
      new Map([['durable-q1', 'phimq-bare']]),
    )
    const sqlite = rows.find((r) => r.broker === 'phimq-sqlite')
    assert.equal(sqlite?.ratio, null)
    assert.equal(sqlite?.notes[0], '0.80 × phimq-bare')
    assert.equal(rows.find((r) => r.broker === 'phimq-bare')?.notes.length, 0)
  })

  it('reads latency by p99 where lower is better', () => {
    const lat = (broker: string, p99: number): RunRecord => ({
      ...fanin(broker, 1, 5000),
      id: 'latency-q1-5k',
      workload: 'latency',
      latencyMs: { p50: 1, p99, p999: p99 * 2 },
    })
    const [mosq, aedes] = summarize([lat('mosquitto', 4), lat('aedes', 6)])
    assert.equal(mosq?.better, 'lower')
    assert.equal(aedes?.median, 6)
    assert.equal(aedes?.ratio, 1.5)
  })

  it('says when the generator saturated its core and when messages were lost', () => {
    const [row] = summarize([fanin('mosquitto', 1, 100, { genCpuPct: 97, lostTotal: 12 })])
    assert.equal(row?.generatorBound, true)
    assert.match(row?.notes.join(' ') ?? '', /generator-bound/)
    assert.match(row?.notes.join(' ') ?? '', /LOST 12/)
  })

  it('shows a pair it could not run as a row with the reason, not a number', () => {
    const skip: RunRecord = {
      id: 'conn-mtls',
      broker: 'phimq',
      rep: 1,
      try: 1,
      contaminated: false,
      workload: 'conn',
      skipped: 'needs the mqtts listener',
    }
    const rows = summarize([skip])
    assert.equal(rows[0]?.median, null)
    const table = renderMarkdown(rows)
    assert.match(table, /\| conn-mtls \| phimq \| 0 \| — \|.*needs the mqtts listener/)
    const columns = (line: string) => line.split('|').length
    const [head, , body] = table.split('\n')
    assert.equal(columns(body ?? ''), columns(head ?? ''))
  })
})
