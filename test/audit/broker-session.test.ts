/**
 * The audit pipeline behind the real broker core: a scripted MQTT session
 * over loopback TCP, then the trail is verified and read back (C25, C26,
 * C27, C29).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import mqtt from 'mqtt'
import { createAuditPipeline } from '../../src/audit/pipeline.js'
import { searchTrail } from '../../src/audit/search.js'
import { verifyTrail } from '../../src/audit/verify.js'
import { Broker } from '../../src/broker/broker.js'
import { parseConfig } from '../../src/config/load.js'
import { tempDir } from './helpers.js'

const yaml = `
environment: dev
listeners:
  - { name: dev-plain, type: tcp, host: 127.0.0.1, port: 0 }
`

describe('audit trail behind the broker core', () => {
  it('a scripted session leaves one event per action in a trail that verifies (C25, C27)', async () => {
    const { dir, cleanup } = tempDir()
    try {
      const loaded = parseConfig(yaml, '<inline>', dir)
      const pipeline = createAuditPipeline({ config: loaded.config, dataDir: loaded.dataDir })
      const broker = new Broker({ nodeId: 'n1', audit: pipeline.sink })
      await broker.start()
      const server: Server = createServer((socket) => {
        broker.handleConnection(socket, {
          listener: 'dev-plain',
          remoteAddress: socket.remoteAddress ?? '',
        })
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const address = server.address()
      const url = `mqtt://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`

      const open = async (clientId: string) => {
        const c = mqtt.connect(url, { clientId, protocolVersion: 5, reconnectPeriod: 0 })
        await new Promise<void>((resolve, reject) => {
          c.once('connect', () => resolve())
          c.once('error', reject)
        })
        return c
      }
      const sub = await open('monitor-1')
      const pub = await open('pump-1')
      await sub.subscribeAsync('#', { qos: 1 })
      const got = new Promise<void>((resolve) => sub.on('message', () => resolve()))
      await pub.publishAsync('clinic-a/pump/1', '{"ssn":"078-05-1120"}', { qos: 1 })
      await got
      await pub.endAsync()
      await sub.endAsync()

      server.close()
      await broker.close()
      await pipeline.close()

      const trailDir = join(loaded.dataDir, 'audit')
      const report = verifyTrail({ dir: trailDir })
      assert.deepEqual(report.problems, [])
      const types = [...searchTrail(trailDir, {})].map((h) => String(h.record.type))
      const count = (t: string) => types.filter((x) => x === t).length
      assert.equal(count('client.connected'), 2)
      assert.equal(count('subscribe.allowed'), 1)
      assert.equal(count('client.disconnected'), 2)
      // A '#' subscription raises an alert at once (C16, C29).
      const alerts = [...searchTrail(trailDir, { types: ['alert.raised'] })]
      assert.equal(alerts[0]?.record.rule, 'wildcard-subscribe')
      assert.equal(alerts[0]?.record.subject, 'monitor-1')
      // Payload bytes never reach the trail (C26).
      for (const name of readdirSync(trailDir)) {
        assert.equal(readFileSync(join(trailDir, name), 'utf8').includes('078-05-1120'), false)
      }
    } finally {
      cleanup()
    }
  })

  it('allowed publishes and deliveries appear as traffic summaries per client, topic and minute (C25)', async () => {
    const { dir, cleanup } = tempDir()
    try {
      const loaded = parseConfig(yaml, '<inline>', dir)
      const pipeline = createAuditPipeline({ config: loaded.config, dataDir: loaded.dataDir })
      const broker = new Broker({ nodeId: 'n1', audit: pipeline.sink, auditTraffic: true })
      await broker.start()
      const server: Server = createServer((socket) => {
        broker.handleConnection(socket, { listener: 'dev-plain', remoteAddress: '127.0.0.1' })
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const address = server.address()
      const url = `mqtt://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
      const sub = await mqtt.connectAsync(url, { clientId: 'app-1', reconnectPeriod: 0 })
      const pub = await mqtt.connectAsync(url, { clientId: 'dev-1', reconnectPeriod: 0 })
      await sub.subscribeAsync('ward/+/hr', { qos: 1 })
      let seen = 0
      const all = new Promise<void>((resolve) =>
        sub.on('message', () => {
          if (++seen === 3) resolve()
        }),
      )
      for (const hr of ['71', '72', '73']) await pub.publishAsync('ward/7/hr', hr, { qos: 1 })
      await all
      await pub.endAsync()
      await sub.endAsync()
      server.close()
      await broker.close()
      await pipeline.close()

      const trailDir = join(loaded.dataDir, 'audit')
      const summaries = [...searchTrail(trailDir, { types: ['traffic.summary'] })].map(
        (h) => h.record,
      )
      const inbound = summaries.find((r) => r.direction === 'in' && r.clientId === 'dev-1')
      const outbound = summaries.find((r) => r.direction === 'out' && r.clientId === 'app-1')
      assert.equal(inbound?.topic, 'ward/7/hr')
      assert.equal(inbound?.messages, 3)
      assert.equal(inbound?.bytes, 6)
      assert.equal(outbound?.messages, 3)
      // No per-message events: the summaries stand for them.
      const types = [...searchTrail(trailDir, {})].map((h) => String(h.record.type))
      assert.equal(types.includes('publish.allowed'), false)
      assert.equal(types.includes('message.delivered'), false)
    } finally {
      cleanup()
    }
  })
})
