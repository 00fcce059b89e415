/**
 * The policy gate in a real broker over loopback TCP, for MQTT.js clients.
 * Identities are set per connection, as the TLS listener sets them.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { Broker } from '../../src/broker/broker.js'
import type { ConnectionContext } from '../../src/broker/broker-api.js'
import type { Identity } from '../../src/broker/types.js'
import { PolicyGate } from '../../src/policy/policy-gate.js'
import { rpmPolicy, TEST_ENV } from './helpers.js'

export interface PolicyHarness {
  broker: Broker
  gate: PolicyGate
  audit: MemoryAuditSink
  /** Connect with an identity; resolves on CONNACK, rejects with its reason code. */
  connect(identity: Identity, options?: IClientOptions, binding?: 'free'): Promise<MqttClient>
  close(): Promise<void>
}

export async function startPolicyBroker(): Promise<PolicyHarness> {
  const audit = new MemoryAuditSink('test')
  const gate = new PolicyGate({ policy: rpmPolicy(), environment: 'prod', audit, env: TEST_ENV })
  const broker = new Broker({ gate, audit })
  await broker.start()

  // The next accepted socket gets this context (connections are made one at a time).
  let next: Partial<ConnectionContext> = {}
  const server: Server = createServer((socket) => {
    broker.handleConnection(socket, { listener: 'test', remoteAddress: '127.0.0.1', ...next })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const clients: MqttClient[] = []

  return {
    broker,
    gate,
    audit,
    async connect(identity, options = {}, binding) {
      next = { identity, clientIdBinding: binding }
      const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
        clientId: identity.id,
        protocolVersion: 5,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        ...options,
      })
      clients.push(client)
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve())
        client.once('error', reject)
        client.once('close', () => reject(new Error('closed before connack')))
      })
      return client
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await broker.close()
    },
  }
}
