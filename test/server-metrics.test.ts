import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import mqtt from 'mqtt'
import { MemoryAuditSink } from '../src/audit/sink.js'
import { loadConfigFile } from '../src/config/load.js'
import { startServer } from '../src/server.js'
import { generateMasterKey } from '../src/store/crypto.js'
import { makePki } from './helpers/tls-fixture.js'

/** The value of one exposition line, e.g. `name{a="b"} 3`. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

const seconds = (pem: string): number =>
  Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000)

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
  it('feeds phimq_store_commit_seconds from the SQLite group commit and the certificate expiry gauge', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phimq-metrics-'))
    try {
      const pki = await makePki(join(dir, 'pki'))
      // Two CA certificates in the bundle: both are watched.
      writeFileSync(pki.paths.ca, `${pki.ca.rootPem}\n${pki.ca.intermediatePem}\n`)
      writeFileSync(join(dir, 'master.key'), generateMasterKey(), { mode: 0o600 })
      const file = join(dir, 'phimq.yaml')
      writeFileSync(
        file,
        `environment: dev
dataDir: data
listeners:
  - { name: dev-plain, type: tcp, host: 127.0.0.1, port: 0 }
  - name: devices
    type: mqtts
    port: 0
    tls: { cert: pki/server.crt, key: pki/server.key, ca: pki/ca.pem }
store: { type: sqlite, masterKeyFile: master.key }
metrics: { enabled: true, port: 0, processMetrics: false }
`,
      )
      const server = await startServer(loadConfigFile(file), { audit: new MemoryAuditSink() })
      try {
        const url = server.listeners[0]?.url ?? ''
        // A persistent session: its subscription and queued messages go through the store.
        const sub = await mqtt.connectAsync(url, {
          clientId: 'stored-1',
          clean: false,
          protocolVersion: 5,
          reconnectPeriod: 0,
          properties: { sessionExpiryInterval: 600 },
        })
        await sub.subscribeAsync('ward/+/hr', { qos: 1 })
        await sub.endAsync()
        const pub = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
        // QoS 1: each PUBACK waits for the commit, so the commits are done when it returns.
        await pub.publishAsync('ward/3/hr', '70', { qos: 1 })
        await pub.endAsync()

        const text = await (await fetch(server.metricsUrl ?? '')).text()
        const commits = value(text, 'phimq_store_commit_seconds_count') ?? 0
        assert.ok(commits >= 1, `commits observed: ${commits}`)
        assert.ok((value(text, 'phimq_store_commit_seconds_sum') ?? -1) >= 0)

        const gauge = 'phimq_certificate_expiry_timestamp_seconds'
        const serverPem = readFileSync(pki.paths.cert, 'utf8')
        assert.equal(value(text, `${gauge}{listener="devices",cert="server"}`), seconds(serverPem))
        assert.equal(
          value(text, `${gauge}{listener="devices",cert="ca.0"}`),
          seconds(pki.ca.rootPem),
        )
        assert.equal(
          value(text, `${gauge}{listener="devices",cert="ca.1"}`),
          seconds(pki.ca.intermediatePem),
        )
        // The plaintext dev listener has no certificate; no client id in any label (C26).
        assert.equal(text.includes('dev-plain",cert'), false)
        assert.equal(text.includes('stored-1'), false)
      } finally {
        await server.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
