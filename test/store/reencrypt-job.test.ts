/**
 * Key rotation on a running broker (issue #5): after `rotate-key`, the
 * background job re-seals queued records under the new key beside live
 * traffic, reports progress, deletes the retired key once nothing uses it,
 * and the queue still drains whole and in order.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import mqtt from 'mqtt'
import type { Logger } from '../../src/broker/logger.js'
import { reencryptRetiredKeys } from '../../src/store/reencrypt-job.js'
import type { SqliteStore } from '../../src/store/sqlite-store.js'
import { startBroker } from '../helpers/broker.js'
import { sqliteFixture } from './helpers.js'

function recordingLogger(lines: Array<{ event?: string }>): Logger {
  const log: Logger = {
    debug: (f) => lines.push(f),
    info: (f) => lines.push(f),
    warn: (f) => lines.push(f),
    error: (f) => lines.push(f),
    child: () => log,
  }
  return log
}

const session = {
  clientId: 'rotating-tablet',
  protocolVersion: 5 as const,
  clean: false,
  keepalive: 0,
  properties: { sessionExpiryInterval: 600 },
}

describe('background re-encryption after a key rotation', () => {
  it('re-seals queued records with progress, deletes the retired key, and the queue still drains', async () => {
    const fx = await sqliteFixture()
    const store = fx.make()
    const tb = await startBroker({ store })
    try {
      const sub = await tb.connect(session)
      await sub.subscribeAsync('ward/11/#', { qos: 1 })
      await sub.endAsync()
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      for (let i = 1; i <= 50; i++) await pub.publishAsync('ward/11/vitals', String(i), { qos: 1 })

      const sqlite = store as SqliteStore
      const [old] = (await sqlite.listKeys()).filter((k) => k.purpose === 'data')
      await sqlite.rotateKey(undefined)
      // Live traffic beside the job: written under the new key.
      const late = pub.publishAsync('ward/11/vitals', '51', { qos: 1 })
      const lines: Array<{ event?: string; done?: number; total?: number }> = []
      const result = await reencryptRetiredKeys(sqlite, {
        log: recordingLogger(lines),
        audit: tb.audit,
        batchSize: 20,
      })
      await late

      assert.equal(result?.reencrypted, 50)
      assert.deepEqual(result?.deletedKeys, [old?.id])
      const progress = lines.filter((l) => l.event === 'store.reencrypt-progress')
      assert.deepEqual(
        progress.map((p) => p.done),
        [0, 20, 40, 50],
      )
      const keys = await sqlite.listKeys()
      assert.equal(keys.filter((k) => k.state === 'retired').length, 0)
      assert.equal(tb.audit.ofType('store.reencrypted').length, 1)
      assert.equal(
        await reencryptRetiredKeys(sqlite, { log: recordingLogger([]), audit: tb.audit }),
        undefined,
      )

      const back = mqtt.connect(tb.url, { reconnectPeriod: 0, ...session })
      const payloads: string[] = []
      await new Promise<void>((resolve) => {
        back.on('message', (_t, p) => {
          payloads.push(p.toString())
          if (payloads.length === 51) resolve()
        })
      })
      back.end(true)
      assert.deepEqual(
        payloads,
        Array.from({ length: 51 }, (_, i) => String(i + 1)),
      )
    } finally {
      await tb.close()
      await fx.cleanup()
    }
  })
})
