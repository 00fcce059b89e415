import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import mqtt from 'mqtt'
import { MemoryAuditSink } from '../src/audit/sink.js'
import { loadConfigFile } from '../src/config/load.js'
import { startServer } from '../src/server.js'

describe('metrics endpoint of a running server', () => {
  it('counts queued messages of an offline session in phimq_queued_messages', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phimq-metrics-'))
    const file = join(dir, 'phimq.yaml')
    writeFileSync(
      file,
      `environment: dev
dataDir: data
listeners:
  - { name: dev-plain, type: tcp, host: 127.0.0.1, port: 0 }
metrics: { enabled: true, port: 0, processMetrics: false }
`,
    )
    const server = await startServer(loadConfigFile(file), { audit: new MemoryAuditSink() })
    try {
      const url = server.listeners[0]?.url ?? ''
      const keep = {
        clientId: 'offline-1',
        clean: false,
        protocolVersion: 5 as const,
        reconnectPeriod: 0,
      }
      const sub = await mqtt.connectAsync(url, {
        ...keep,
        properties: { sessionExpiryInterval: 600 },
      })
      await sub.subscribeAsync('ward/+/hr', { qos: 1 })
      await sub.endAsync()
      const pub = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
      for (const hr of ['70', '71']) await pub.publishAsync('ward/3/hr', hr, { qos: 1 })
      await pub.endAsync()
      const text = await (await fetch(server.metricsUrl ?? '')).text()
      assert.match(text, /^phimq_queued_messages 2$/m)
      assert.match(text, /^phimq_inflight_messages 0$/m)
      // No client ids in labels (C26).
      assert.equal(text.includes('offline-1'), false)
    } finally {
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
