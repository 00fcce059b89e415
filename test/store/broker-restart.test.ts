/**
 * Timers survive a restart of a broker on the SQLite store, with time
 * moved by the injected clock while the broker is down: message expiry,
 * session expiry and will delay (issue #5, C24; MQTT 5 sections 3.3.2.3.3,
 * 3.1.2.11.2 and 3.1.3.2.2).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt'
import { ManualClock } from '../../src/broker/clock.js'
import { collectFor, nextMessages, sleep, startBroker, type TestBroker } from '../helpers/broker.js'
import { committed, type SqliteFixture, sqliteFixture, withRawDb } from './helpers.js'

const persistent = (clientId: string, sessionExpiryInterval = 3600) => ({
  clientId,
  protocolVersion: 5 as const,
  clean: false,
  keepalive: 0,
  properties: { sessionExpiryInterval },
})

interface Resumed {
  client: MqttClient
  sessionPresent: boolean
  /** Payloads received so far, as text; filled from the first packet on. */
  payloads: string[]
}

/** Connect with a listener in place before CONNACK: queued messages follow it at once. */
async function resume(tb: TestBroker, options: IClientOptions): Promise<Resumed> {
  const client = mqtt.connect(tb.url, { reconnectPeriod: 0, ...options })
  const payloads: string[] = []
  client.on('message', (_topic, payload) => payloads.push(payload.toString()))
  const ack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
  })
  return { client, sessionPresent: ack.sessionPresent, payloads }
}

/** Run `body` with a function that (re)starts a broker on the fixture's store. */
async function withRestarts(
  body: (ctx: {
    start(): Promise<TestBroker>
    clock: ManualClock
    fx: SqliteFixture
  }) => Promise<void>,
): Promise<void> {
  const clock = new ManualClock()
  const fx = await sqliteFixture({ clock })
  let current: TestBroker | undefined
  try {
    await body({
      clock,
      fx,
      start: async () => {
        current = await startBroker({ store: fx.make(), clock })
        return current
      },
    })
  } finally {
    await current?.close().catch(() => {})
    await fx.cleanup()
  }
}

describe('broker restart on the SQLite store', () => {
  it('a queued message that expired while the broker was down is never delivered', async () => {
    await withRestarts(async ({ start, clock }) => {
      let tb = await start()
      const sub = await tb.connect(persistent('nurse-app'))
      await sub.subscribeAsync('ward/+/alert', { qos: 1 })
      await sub.endAsync()

      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      await pub.publishAsync('ward/1/alert', 'short', {
        qos: 1,
        properties: { messageExpiryInterval: 10 },
      })
      await pub.publishAsync('ward/2/alert', 'long', { qos: 1 })
      await tb.close()

      clock.advance(20_000)
      tb = await start()
      const back = await resume(tb, persistent('nurse-app'))
      await sleep(300)
      back.client.end(true)
      assert.equal(back.sessionPresent, true)
      assert.deepEqual(back.payloads, ['long'])
    })
  })

  it('a session that expired while the broker was down is gone, with its rows', async () => {
    await withRestarts(async ({ start, clock, fx }) => {
      let tb = await start()
      const tablet = await tb.connect(persistent('tablet-3', 30))
      await tablet.subscribeAsync('ward/3/#', { qos: 1 })
      await tablet.endAsync()
      await sleep(50)
      await tb.close()

      clock.advance(60_000)
      tb = await start()
      await tb.close()
      const rows = withRawDb(fx.path, (db) => ({
        sessions: (db.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n,
        subs: (db.prepare('SELECT count(*) AS n FROM subscriptions').get() as { n: number }).n,
      }))
      assert.deepEqual(rows, { sessions: 0, subs: 0 })

      tb = await start()
      const again = await resume(tb, persistent('tablet-3', 30))
      again.client.end(true)
      assert.equal(again.sessionPresent, false)
    })
  })

  it('a session still within its expiry resumes after a restart', async () => {
    await withRestarts(async ({ start, clock }) => {
      let tb = await start()
      const tablet = await tb.connect(persistent('tablet-4', 120))
      await tablet.subscribeAsync('ward/4/#', { qos: 1 })
      await tablet.endAsync()
      await tb.close()

      clock.advance(60_000)
      tb = await start()
      const pub = await tb.connect({ protocolVersion: 5, keepalive: 0 })
      await pub.publishAsync('ward/4/bed/1', 'resumed', { qos: 1 })
      const back = await resume(tb, persistent('tablet-4', 120))
      await sleep(300)
      back.client.end(true)
      assert.equal(back.sessionPresent, true)
      assert.deepEqual(back.payloads, ['resumed'])
    })
  })

  it('a delayed will keeps its due time across a restart (MQTT-3.1.3-9)', async () => {
    await withRestarts(async ({ start, clock, fx }) => {
      let tb = await start()
      const observer = await tb.connect(persistent('observer'))
      await observer.subscribeAsync('status/#', { qos: 1 })
      await observer.endAsync()

      const monitor = await tb.connect({
        ...persistent('monitor-7'),
        will: {
          topic: 'status/monitor-7',
          payload: Buffer.from('offline'),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 30 },
        },
      })
      // The connection drops without DISCONNECT: the will is scheduled.
      monitor.stream.destroy()
      await sleep(100)
      await tb.close()
      const wills = withRawDb(
        fx.path,
        (db) => (db.prepare('SELECT count(*) AS n FROM wills').get() as { n: number }).n,
      )
      assert.equal(wills, 1)

      clock.advance(10_000)
      tb = await start()
      const back = await tb.connect(persistent('observer'))
      assert.deepEqual(await collectFor(back, 200), [], 'not due yet: 20 s remain')

      const arriving = nextMessages(back, 1)
      clock.advance(25_000)
      const [will] = await arriving
      assert.equal(will?.topic, 'status/monitor-7')
      assert.equal(will?.payload.toString(), 'offline')
      await committed(tb.broker.store)
    })
  })
})
