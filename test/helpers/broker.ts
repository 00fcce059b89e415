/**
 * Test harness: a real broker on a real loopback TCP port, and MQTT.js
 * clients connected to it.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { Broker } from '../../src/broker/broker.js'
import type { BrokerOptions, ConnectionContext } from '../../src/broker/broker-api.js'

export interface TestBroker {
  readonly broker: Broker
  readonly audit: MemoryAuditSink
  readonly port: number
  readonly url: string
  /** Connect an MQTT.js client and wait for CONNACK; `context` for this connection only. */
  connect(options?: IClientOptions, context?: Partial<ConnectionContext>): Promise<MqttClient>
  close(): Promise<void>
}

export interface TestBrokerOptions extends BrokerOptions {
  /** Context given to every connection (identity, binding ...). */
  context?: Partial<ConnectionContext>
}

export async function startBroker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  const audit =
    options.audit instanceof MemoryAuditSink
      ? options.audit
      : new MemoryAuditSink('test', options.clock)
  const broker = new Broker({ ...options, audit })
  await broker.start()
  const clients: MqttClient[] = []
  // The next accepted socket gets this context on top of `options.context`
  // (set by `connect`; connections are made one at a time).
  let next: Partial<ConnectionContext> | undefined
  const server: Server = createServer((socket) => {
    broker.handleConnection(socket, {
      listener: 'test',
      remoteAddress: socket.remoteAddress ?? '',
      ...options.context,
      ...next,
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const url = `mqtt://127.0.0.1:${port}`
  return {
    broker,
    audit,
    port,
    url,
    async connect(clientOptions: IClientOptions = {}, context?: Partial<ConnectionContext>) {
      next = context
      const client = mqtt.connect(url, {
        reconnectPeriod: 0,
        connectTimeout: 5000,
        ...clientOptions,
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

/** Collect the next `n` messages a client receives. */
export function nextMessages(
  client: MqttClient,
  n: number,
  timeoutMs = 3000,
): Promise<Array<{ topic: string; payload: Buffer; packet: mqtt.IPublishPacket }>> {
  return new Promise((resolve, reject) => {
    const got: Array<{ topic: string; payload: Buffer; packet: mqtt.IPublishPacket }> = []
    const timer = setTimeout(() => {
      client.off('message', onMessage)
      reject(new Error(`got ${got.length} of ${n} messages`))
    }, timeoutMs)
    function onMessage(topic: string, payload: Buffer, packet: mqtt.IPublishPacket): void {
      got.push({ topic, payload, packet })
      if (got.length >= n) {
        clearTimeout(timer)
        client.off('message', onMessage)
        resolve(got)
      }
    }
    client.on('message', onMessage)
  })
}

/** Resolve after `ms`; for asserting that nothing arrives. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Messages that arrive within `ms`. */
export async function collectFor(
  client: MqttClient,
  ms: number,
): Promise<Array<{ topic: string; payload: Buffer; packet: mqtt.IPublishPacket }>> {
  const got: Array<{ topic: string; payload: Buffer; packet: mqtt.IPublishPacket }> = []
  const onMessage = (topic: string, payload: Buffer, packet: mqtt.IPublishPacket): void => {
    got.push({ topic, payload, packet })
  }
  client.on('message', onMessage)
  await sleep(ms)
  client.off('message', onMessage)
  return got
}
