/**
 * Test harness for packet-level broker tests: one broker per test on a
 * loopback port, raw MQTT clients connected to it, and both torn down after
 * each test by an `afterEach` hook that `useRawHarness` registers itself.
 */
import { afterEach } from 'node:test'
import type { IConnackPacket } from 'mqtt-packet'
import { startBroker, type TestBroker, type TestBrokerOptions } from './broker.js'
import { RawClient } from './raw-client.js'

/** CONNECT fields a raw client may set (the rest are defaults). */
export type RawConnectFields = Parameters<RawClient['connect']>[0]

/** A raw client after its CONNACK arrived. */
export interface RawConnection {
  client: RawClient
  connack: IConnackPacket
}

/** Options for {@link useRawHarness}. */
export interface RawHarnessOptions {
  /**
   * When true, `raw()` and `open()` start a broker with default options if
   * the test has not started one. When false (the default) they throw, so a
   * test must call `broker()` first.
   */
  startOnDemand?: boolean
}

/** The broker and raw clients of the running test. */
export interface RawHarness {
  /** Start the test's broker with `options`. */
  broker(options?: TestBrokerOptions): Promise<TestBroker>
  /** Connect a raw client, wait for its CONNACK and track it for cleanup. */
  raw(version: 4 | 5, fields?: RawConnectFields): Promise<RawConnection>
  /** Open a raw socket without sending CONNECT, tracked for cleanup. */
  open(version: 4 | 5): Promise<RawClient>
  /** The broker of the running test; throws when none was started. */
  current(): TestBroker
  /** The raw clients of the running test, oldest first. */
  readonly clients: readonly RawClient[]
}

/**
 * Register a per-test broker and raw-client harness. Call it once at the
 * top level of a test file; it adds an `afterEach` that destroys every
 * tracked client and closes the broker.
 */
export function useRawHarness(options: RawHarnessOptions = {}): RawHarness {
  let tb: TestBroker | undefined
  const clients: RawClient[] = []

  async function broker(brokerOptions: TestBrokerOptions = {}): Promise<TestBroker> {
    tb = await startBroker(brokerOptions)
    return tb
  }

  function current(): TestBroker {
    if (tb === undefined) throw new Error('no broker started: call broker() first')
    return tb
  }

  async function port(): Promise<number> {
    if (options.startOnDemand === true) tb ??= await startBroker()
    return current().port
  }

  async function raw(version: 4 | 5, fields: RawConnectFields = {}): Promise<RawConnection> {
    const result = await RawClient.connected(await port(), version, fields)
    clients.push(result.client)
    return result
  }

  async function open(version: 4 | 5): Promise<RawClient> {
    const client = await RawClient.open(await port(), version)
    clients.push(client)
    return client
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy()
    await tb?.close()
    tb = undefined
  })

  return { broker, raw, open, current, clients }
}
