/**
 * Offline queues live in the durable store, not in memory (issue #5): the
 * core keeps no queued message of an offline session on the SQLite store,
 * reads the queue back a page at a time when the client returns, in order
 * and complete, and still applies the queue caps, message expiry and the
 * policy's say at delivery (C15, C24).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { ManualClock } from '../../src/broker/clock.js'
import { allowAllGate, type Gate } from '../../src/broker/gate.js'
import { QUEUE_PAGE_MESSAGES } from '../../src/broker/stored-queue.js'
import { startBroker, type TestBroker, type TestBrokerOptions } from '../helpers/broker.js'
import { committed, type SqliteFixture, sqliteFixture, withRawDb } from './helpers.js'

const persistent = (clientId: string): IClientOptions => ({
  clientId,
  protocolVersion: 5,
  clean: false,
  keepalive: 0,
  properties: { sessionExpiryInterval: 3600 },
})

interface Fixture {
  fx: SqliteFixture
  clock: ManualClock
  start(options?: TestBrokerOptions): Promise<TestBroker>
}

async function withStore(body: (f: Fixture) => Promise<void>): Promise<void> {
  const clock = new ManualClock()
  const fx = await sqliteFixture({ clock })
  let current: TestBroker | undefined
  try {
    await body({
      fx,
      clock,
      start: async (options = {}) => {
        current = await startBroker({ store: fx.make(), clock, ...options })
        return current
      },
    })
  } finally {
    await current?.close().catch(() => {})
    await fx.cleanup()
  }
}

/** Subscribe persistent sessions to `filter`, then leave them offline. */
async function offlineSubscribers(tb: TestBroker, ids: string[], filter: string): Promise<void> {
  for (const id of ids) {
    const c = await tb.connect(persistent(id))
    await c.subscribeAsync(filter, { qos: 1 })
    await c.endAsync()
  }
}

/** Unacknowledged PUBLISHes at a time: below the broker's Receive Maximum (MQTT.js does not count). */
const WINDOW = 16

/** Publish payloads `first`..`last` (as text) in order, all acknowledged. */
async function publishRange(
  pub: MqttClient,
  topic: string,
  first: number,
  last: number,
  options: mqtt.IClientPublishOptions = { qos: 1 },
): Promise<void> {
  const sent: Array<Promise<unknown>> = []
  for (let i = first; i <= last; i++) {
    sent.push(pub.publishAsync(topic, String(i), options))
    if (sent.length === WINDOW) await Promise.all(sent.splice(0))
  }
  await Promise.all(sent)
}

/** Reconnect with a listener in place before CONNACK; resolves after `n` messages. */
function drain(
  tb: TestBroker,
  id: string,
  n: number,
  onEach: () => void = () => {},
): Promise<{ client: MqttClient; payloads: string[] }> {
  const client = mqtt.connect(tb.url, { reconnectPeriod: 0, ...persistent(id) })
  const payloads: string[] = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`got ${payloads.length} of ${n}`)), 20_000)
    client.on('message', (_topic, payload) => {
      payloads.push(payload.toString())
      onEach()
      if (payloads.length === n) {
        clearTimeout(timer)
        resolve({ client, payloads })
      }
    })
    client.once('error', reject)
  })
}

function range(first: number, last: number): string[] {
  return Array.from({ length: last - first + 1 }, (_, i) => String(first + i))
}

function queueRows(path: string): number {
  return withRawDb(
    path,
    (db) => (db.prepare('SELECT count(*) AS n FROM queue').get() as { n: number }).n,
  )
}

describe('offline queues on the SQLite store', () => {
  it('holds no queued message of an offline session in memory, for many sessions', async () => {
    await withStore(async ({ start }) => {
      const tb = await start()
      const ids = Array.from({ length: 12 }, (_, i) => `monitor-${i}`)
      await offlineSubscribers(tb, ids, 'ward/+/vitals')
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      await publishRange(pub, 'ward/1/vitals', 1, 300)

      const stats = tb.broker.stats()
      assert.equal(stats.queuedMessages, ids.length * 300)
      assert.equal(stats.queuedInMemory, 0)
      for (const id of ids) {
        const session = tb.broker.sessions.get(id)
        assert.equal(session?.queue.length, 0, id)
        assert.equal(session?.storedQueueLength, 300, id)
        assert.equal(session?.inflight.size, 0, id)
      }
    })
  })

  it('delivers the whole queue in order after a reconnect, memory bounded by a page', async () => {
    await withStore(async ({ start }) => {
      const tb = await start()
      await offlineSubscribers(tb, ['nurse-station'], 'ward/2/#')
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      await publishRange(pub, 'ward/2/vitals', 1, 500)
      await publishRange(pub, 'ward/2/alerts', 501, 600, { qos: 2 })

      let peak = 0
      const session = () => tb.broker.sessions.get('nurse-station')
      const back = drain(tb, 'nurse-station', 700, () => {
        peak = Math.max(peak, session()?.queue.length ?? 0)
      })
      // Published while the queue drains: they come after it.
      const late = publishRange(pub, 'ward/2/vitals', 601, 700)
      const { client, payloads } = await back
      await late
      client.end(true)
      assert.deepEqual(payloads, range(1, 700))
      assert.ok(peak <= QUEUE_PAGE_MESSAGES * 1.5, `memory queue peaked at ${peak}`)
      assert.equal(session()?.storedQueueLength, 0)
    })
  })

  it('keeps the queue in the store across a restart and drains it in order', async () => {
    await withStore(async ({ start, fx }) => {
      let tb = await start()
      await offlineSubscribers(tb, ['tablet-9'], 'ward/9/#')
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      await publishRange(pub, 'ward/9/vitals', 1, 250)
      await tb.close()
      assert.equal(queueRows(fx.path), 250)

      tb = await start()
      assert.equal(tb.broker.stats().queuedInMemory, 0)
      assert.equal(tb.broker.sessions.get('tablet-9')?.storedQueueLength, 250)
      const { client, payloads } = await drain(tb, 'tablet-9', 250)
      client.end(true)
      assert.deepEqual(payloads, range(1, 250))
    })
  })

  it('caps a stored queue by count: the oldest go, each with an audit event (C24)', async () => {
    await withStore(async ({ start, fx }) => {
      const tb = await start({ limits: { maxQueuedMessages: 10 } })
      await offlineSubscribers(tb, ['pager-1'], 'ward/3/#')
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      await publishRange(pub, 'ward/3/vitals', 1, 25)
      await committed(tb.broker.store)

      const drops = tb.audit.ofType('message.dropped').filter((e) => e.clientId === 'pager-1')
      assert.equal(drops.length, 15)
      assert.ok(drops.every((e) => e.reason === 'queue-full' && e.topic === 'ward/3/vitals'))
      assert.equal(tb.broker.sessions.get('pager-1')?.storedQueueLength, 10)
      const { client, payloads } = await drain(tb, 'pager-1', 10)
      client.end(true)
      assert.deepEqual(payloads, range(16, 25))
      await tb.close()
      assert.equal(queueRows(fx.path), 0)
    })
  })

  it('caps a stored queue by bytes (C24)', async () => {
    await withStore(async ({ start }) => {
      // Each entry counts topic (13 bytes) + payload (87 bytes) = 100 bytes.
      const tb = await start({ limits: { maxQueuedBytes: 450 } })
      await offlineSubscribers(tb, ['pager-2'], 'ward/4/#')
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      for (let i = 1; i <= 6; i++) {
        await pub.publishAsync('ward/4/vitals', `${i}`.padEnd(87, '.'), { qos: 1 })
      }
      await committed(tb.broker.store)
      assert.equal(tb.broker.sessions.get('pager-2')?.storedQueueLength, 4)
      const { client, payloads } = await drain(tb, 'pager-2', 4)
      client.end(true)
      assert.deepEqual(
        payloads.map((p) => p[0]),
        ['3', '4', '5', '6'],
      )
    })
  })

  it('deletes expired rows while the broker was down, and delivers the rest', async () => {
    await withStore(async ({ start, clock, fx }) => {
      let tb = await start()
      await offlineSubscribers(tb, ['tablet-5'], 'ward/5/#')
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      await publishRange(pub, 'ward/5/vitals', 1, 100, {
        qos: 1,
        properties: { messageExpiryInterval: 10 },
      })
      await publishRange(pub, 'ward/5/vitals', 101, 120)
      await tb.close()
      assert.equal(queueRows(fx.path), 120)

      clock.advance(20_000)
      tb = await start()
      await tb.close()
      assert.equal(queueRows(fx.path), 20, 'expired rows deleted at open')

      tb = await start()
      const { client, payloads } = await drain(tb, 'tablet-5', 20)
      client.end(true)
      assert.deepEqual(payloads, range(101, 120))
    })
  })

  it('deletes rows that expired while the broker ran, when the queue is read back', async () => {
    await withStore(async ({ start, clock, fx }) => {
      const tb = await start()
      await offlineSubscribers(tb, ['tablet-6'], 'ward/6/#')
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      await publishRange(pub, 'ward/6/vitals', 1, 5, {
        qos: 1,
        properties: { messageExpiryInterval: 10 },
      })
      await publishRange(pub, 'ward/6/vitals', 6, 7)
      clock.advance(15_000)
      const { client, payloads } = await drain(tb, 'tablet-6', 2)
      client.end(true)
      assert.deepEqual(payloads, ['6', '7'])
      await tb.close()
      assert.equal(queueRows(fx.path), 0)
    })
  })

  it('drops stored messages a policy change refuses while the client is away, one audit event each (C15)', async () => {
    await withStore(async ({ start, fx }) => {
      let refuse = false
      const gate: Gate = {
        ...allowAllGate,
        authorizeDelivery: (_client, message) => !(refuse && message.topic.startsWith('ward/7/x')),
      }
      const tb = await start({ gate })
      await offlineSubscribers(tb, ['desk-7'], 'ward/7/#')
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      for (let i = 1; i <= 150; i++) {
        await pub.publishAsync(i % 3 === 0 ? 'ward/7/x' : 'ward/7/ok', String(i), { qos: 1 })
      }
      refuse = true
      tb.broker.reevaluateSessions('policy.reloaded')
      const session = tb.broker.sessions.get('desk-7')
      while ((session?.storedQueueLength ?? 0) > 100) await new Promise((r) => setTimeout(r, 10))
      await committed(tb.broker.store)

      const denied = tb.audit
        .ofType('message.dropped')
        .filter((e) => e.clientId === 'desk-7' && e.reason === 'denied')
      assert.equal(denied.length, 50)
      assert.equal(session?.storedQueueLength, 100)
      const { client, payloads } = await drain(tb, 'desk-7', 100)
      client.end(true)
      assert.deepEqual(
        payloads,
        range(1, 150).filter((p) => Number(p) % 3 !== 0),
      )
      await tb.close()
      assert.equal(queueRows(fx.path), 0)
    })
  })
})
