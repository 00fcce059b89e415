/**
 * Issue #6 Proof, end to end: a real server (startServer) with the signed
 * trail and file exporters, a scripted MQTT session over loopback whose
 * client ids, topics and payloads carry synthetic identifiers; then every
 * file the broker wrote under its data directory and every log line is
 * scanned. Logs: zero hits. Trail and exports: hits only in identity
 * fields (client id, identity id), never from a topic or a payload.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import mqtt from 'mqtt'
import { verifyTrail } from '../../src/audit/verify.js'
import { loadConfigFile } from '../../src/config/load.js'
import { createLogger } from '../../src/monitor/logger.js'
import { startServer } from '../../src/server.js'
import { collector } from '../monitor/helpers.js'
import { filesUnder, PHI_SAMPLES, phiHits } from './helpers.js'

/** Remove the fields that may name the client (the accountability record keeps who). */
function stripIdentity(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripIdentity)
  if (typeof value !== 'object' || value === null) return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    if (['clientId', 'clientIds', 'identityId', 'subject', 'id', 'uid', 'name'].includes(k)) {
      continue
    }
    out[k] = stripIdentity(v)
  }
  return out
}

describe('no PHI in anything a running broker writes (#6 Proof, C26)', () => {
  it('identifiers in client ids, topics and payloads reach no log line, and the trail and exports only as identity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phimq-phi-server-'))
    try {
      const file = join(dir, 'phimq.yaml')
      writeFileSync(
        file,
        `environment: dev
dataDir: data
listeners:
  - { name: dev-plain, type: tcp, host: 127.0.0.1, port: 0 }
audit:
  traffic: per-message
  exporters:
    - { type: file, path: export.jsonl }
    - { type: file, path: export.cef, format: cef }
    - { type: file, path: export.ocsf.jsonl, format: ocsf }
metrics: { enabled: false }
`,
      )
      const logs = collector()
      const logger = createLogger({ destination: logs, level: 'debug' })
      const server = await startServer(loadConfigFile(file), { logger })
      const url = server.listeners[0]?.url ?? ''
      const topic = `clinic-a/patients/${PHI_SAMPLES.ssn}/hr`
      const payload = JSON.stringify({
        phone: PHI_SAMPLES.phone,
        dob: PHI_SAMPLES.dob,
        ssn: PHI_SAMPLES.ssn,
      })
      try {
        const sub = await mqtt.connectAsync(url, {
          clientId: `app-${PHI_SAMPLES.email}`,
          protocolVersion: 5,
          reconnectPeriod: 0,
        })
        await sub.subscribeAsync(`clinic-a/patients/${PHI_SAMPLES.ssn}/#`, { qos: 1 })
        const got = new Promise<void>((resolve) => sub.once('message', () => resolve()))
        const pub = await mqtt.connectAsync(url, {
          clientId: `dev-${PHI_SAMPLES.email}`,
          protocolVersion: 5,
          reconnectPeriod: 0,
        })
        await pub.publishAsync(topic, payload, { qos: 1, retain: true })
        await got
        await pub.publishAsync(topic, '', { qos: 1, retain: true })
        await pub.endAsync()
        await sub.endAsync()
      } finally {
        await server.close()
      }

      // Logs: nothing at all.
      assert.ok(logs.lines.length > 0)
      for (const line of logs.lines) assert.deepEqual(phiHits(line), [], line)

      const dataDir = join(dir, 'data')
      const written = filesUnder(dataDir).filter((p) => /\.(jsonl|cef)$/.test(p))
      assert.ok(written.some((p) => /audit-\d+\.jsonl$/.test(p)))
      assert.equal(written.filter((p) => /export\./.test(p)).length, 3)
      let identityHits = 0
      for (const path of written) {
        const text = readFileSync(path, 'utf8')
        // Payload-only and topic-only identifiers appear nowhere at all.
        for (const s of [PHI_SAMPLES.ssn, PHI_SAMPLES.phone, PHI_SAMPLES.dob]) {
          assert.equal(text.includes(s), false, `${s} in ${path}`)
        }
        for (const line of text.split('\n').filter(Boolean)) {
          if (phiHits(line).length > 0) identityHits++
          if (path.endsWith('.cef')) {
            const cs6 = line.slice(line.indexOf(' cs6=') + 5).replace(/\\([=\\])/g, '$1')
            const head = line.slice(0, line.indexOf(' cs6=')).replace(/ (suser|duser)=\S+/g, '')
            assert.deepEqual(phiHits(head), [], head)
            assert.deepEqual(phiHits(JSON.stringify(stripIdentity(JSON.parse(cs6)))), [], cs6)
          } else {
            const record = JSON.parse(line) as unknown
            assert.deepEqual(phiHits(JSON.stringify(stripIdentity(record))), [], line)
          }
        }
      }
      assert.ok(identityHits > 0, 'the client ids belong in the accountability record')
      assert.equal(verifyTrail({ dir: join(dataDir, 'audit') }).ok, true)
    } finally {
      if (process.env.KEEP_PHI_DIR) console.log(dir)
      else rmSync(dir, { recursive: true, force: true })
    }
  })
})
