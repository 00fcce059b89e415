/**
 * A will checked at CONNECT and sent much later: its Message Expiry must
 * count from when it is sent (MQTT 5 section 3.1.3.2.4), not from CONNECT.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { describe, it } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { Broker } from '../../src/broker/broker.js'
import { ManualClock } from '../../src/broker/clock.js'
import type { Identity } from '../../src/broker/types.js'
import { PolicyGate } from '../../src/policy/policy-gate.js'
import { nextMessages } from '../helpers/broker.js'
import { rpmPolicy, TEST_ENV } from './helpers.js'

const LATER_MS = 25 * 3_600_000

describe('will expiry across a long session (C24)', () => {
  it('delivers a will sent 25 hours after CONNECT (default expiry counts from sending)', async () => {
    const clock = new ManualClock(Date.now())
    const audit = new MemoryAuditSink('test', clock)
    const gate = new PolicyGate({
      policy: rpmPolicy(),
      environment: 'prod',
      clock,
      audit,
      env: TEST_ENV,
    })
    const broker = new Broker({ gate, audit, clock })
    await broker.start()
    let identity: Identity = { tenant: 'acme', role: 'device', id: 'dev-1' }
    const server = createServer((socket) => {
      broker.handleConnection(socket, { listener: 'test', remoteAddress: '127.0.0.1', identity })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    const port = typeof address === 'object' && address ? address.port : 0
    // 3.1.1 with Keep Alive 0: no keep-alive timers to fire when the clock moves.
    const connect = async (options: IClientOptions): Promise<MqttClient> => {
      const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
        protocolVersion: 4,
        keepalive: 0,
        reconnectPeriod: 0,
        ...options,
      })
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve())
        c.once('error', reject)
      })
      return c
    }
    try {
      identity = { tenant: 'acme', role: 'clinical-app', id: 'app-1' }
      const app = await connect({ clientId: 'app-1' })
      await app.subscribeAsync('acme/rpm/+/status', { qos: 1 })
      identity = { tenant: 'acme', role: 'device', id: 'dev-1' }
      const will = { topic: 'acme/rpm/dev-1/status', payload: Buffer.from('{}'), qos: 1 as const }
      const dev = await connect({ clientId: 'dev-1', will })

      clock.advance(LATER_MS)
      const arriving = nextMessages(app, 1)
      dev.stream.destroy()
      const [got] = await arriving
      assert.equal(got?.topic, 'acme/rpm/dev-1/status')
      await app.endAsync(true)
    } finally {
      // The broker ends its connections; only then can the server close.
      await broker.close()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})
