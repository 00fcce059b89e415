// The configs the benchmark gives phimq (issue #7) must pass the real config
// loader: a bench that quietly fails to start phimq would report nothing.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { stringify } from 'yaml'
import { benchConfig, type PhimqBenchOptions } from '../../bench/phimq-config.js'
import { parseConfig } from '../../src/config/load.js'

const base: PhimqBenchOptions = {
  variant: 'bare',
  listener: 'plain',
  port: 21883,
  pki: '/tmp/bench-pki',
  dir: '/tmp/bench-run',
}

describe('bench phimq config', () => {
  it('bare phimq listens with plaintext only in dev and only on loopback (C05)', () => {
    const { config } = parseConfig(stringify(benchConfig(base)))
    assert.equal(config.environment, 'dev')
    assert.deepEqual(
      config.listeners.map((l) => [l.type, l.host, l.port]),
      [['tcp', '127.0.0.1', 21883]],
    )
  })

  it('bare phimq writes plain audit lines in the run folder, without alerts or metrics', () => {
    const { config } = parseConfig(stringify(benchConfig(base)))
    assert.equal(config.audit.sink, 'jsonl')
    assert.equal(config.audit.path, '/tmp/bench-run/audit.jsonl')
    assert.equal(config.alerts.enabled, false)
    assert.equal(config.metrics.enabled, false)
  })

  it('phimq as shipped runs in prod with one mutual-TLS listener (C05, C09)', (t) => {
    const shipped = benchConfig({ ...base, variant: 'shipped', listener: 'mtls', port: 28883 })
    let loaded: ReturnType<typeof parseConfig>
    try {
      loaded = parseConfig(stringify(shipped))
    } catch (err) {
      // Today the schema knows only `tcp`: the bench shows the row as skipped.
      if (/listeners\.0\.type/.test(String(err))) {
        t.skip('no mqtts listener in the config schema yet (issue #3)')
        return
      }
      throw err
    }
    assert.equal(loaded.config.environment, 'prod')
    assert.equal(loaded.config.audit.sink, 'trail')
    assert.equal(loaded.config.alerts.enabled, true)
    assert.equal(loaded.config.metrics.enabled, true)
    assert.deepEqual(
      loaded.config.listeners.map((l) => l.type),
      ['mqtts'],
    )
  })
})
