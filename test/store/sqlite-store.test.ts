/**
 * What the SQLite store adds to the contract: group commit, durability of
 * an `afterCommit` under SIGKILL, expiry across restarts (rows deleted, not
 * skipped), the exclusive lock and the durability setting (issue #5, C24).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ManualClock } from '../../src/broker/clock.js'
import type { Message } from '../../src/broker/types.js'
import { LocalMasterKey } from '../../src/store/crypto.js'
import { SESSION_EXPIRY_NEVER_SECONDS } from '../../src/store/sqlite-store.js'
import type { QueueEntry } from '../../src/store/store.js'
import { committed, sqliteFixture, withRawDb } from './helpers.js'

const HOUR_MS = 3_600_000

function entry(seq: number, extra: Partial<Message> = {}): QueueEntry {
  const message: Message = {
    topic: `ward/3/spo2/${seq}`,
    payload: Buffer.from(`reading ${seq}`),
    qos: 1,
    retain: false,
    ...extra,
  }
  return { seq, state: 'queued', message }
}

function countRows(path: string, table: string): number {
  return withRawDb(path, (db) => {
    const row = db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }
    return row.n
  })
}

describe('SQLite store', () => {
  it('commits the writes of one event-loop turn as one transaction (group commit)', async () => {
    const fx = await sqliteFixture()
    const store = fx.make()
    try {
      await store.open()
      store.saveSession({ clientId: 'pump-1', protocolVersion: 5, sessionExpirySeconds: 60 })
      for (let seq = 1; seq <= 200; seq++) store.pushMessage('pump-1', entry(seq))
      await committed(store)
      assert.deepEqual(store.stats(), { batches: 1, writes: 201 })

      // A later turn is a new transaction.
      store.deleteMessage('pump-1', 1)
      await committed(store)
      assert.deepEqual(store.stats(), { batches: 2, writes: 202 })
    } finally {
      await store.close()
      await fx.cleanup()
    }
  })

  it('what afterCommit confirmed survives SIGKILL of the process right after it', async () => {
    const fx = await sqliteFixture()
    try {
      const out = await runChild(fx.path, fx.masterKeyHex, 'wait', 50)
      assert.equal(out.signal, 'SIGKILL')
      assert.match(out.stdout, /committed/)

      const store = fx.make()
      const snapshot = await store.open()
      assert.equal(snapshot.sessions.length, 1)
      const queue = await store.loadMessages('bedside-1', 0, 1000)
      assert.deepEqual(
        queue.map((e) => e.seq),
        Array.from({ length: 50 }, (_, i) => i + 1),
      )
      await store.close()
    } finally {
      await fx.cleanup()
    }
  })

  it('writes are not durable before their commit: SIGKILL at once loses them', async () => {
    // The reason acknowledgements wait for afterCommit.
    const fx = await sqliteFixture()
    try {
      const out = await runChild(fx.path, fx.masterKeyHex, 'nowait', 50)
      assert.equal(out.signal, 'SIGKILL')
      const store = fx.make()
      const snapshot = await store.open()
      assert.equal(snapshot.sessions.length, 0)
      assert.deepEqual(await store.loadMessages('bedside-1', 0, 1000), [])
      await store.close()
    } finally {
      await fx.cleanup()
    }
  })

  it('deletes at open what expired while the broker was down (C24)', async () => {
    const clock = new ManualClock()
    const fx = await sqliteFixture({ clock })
    const now = clock.now()
    try {
      const store = fx.make()
      await store.open()
      store.saveSession({
        clientId: 'gone',
        protocolVersion: 5,
        sessionExpirySeconds: 60,
        disconnectedAt: now,
      })
      store.saveSubscription('gone', {
        filter: 'a/#',
        qos: 1,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      })
      store.pushMessage('gone', entry(1))
      store.setWill('gone', {
        message: { topic: 'status/gone', payload: Buffer.from('bye'), qos: 1, retain: false },
        dueAt: now + 30_000,
      })
      store.saveSession({ clientId: 'stays', protocolVersion: 5, sessionExpirySeconds: 7200 })
      store.pushMessage('stays', entry(1, { expiresAt: now + 10_000 }))
      store.pushMessage('stays', entry(2, { expiresAt: now + 2 * HOUR_MS }))
      store.pushMessage('stays', entry(3))
      const shortLived = { expiresAt: now + 10_000, retain: true }
      store.setRetained('r/short', { ...entry(0, shortLived).message, topic: 'r/short' })
      store.setRetained('r/long', { ...entry(0, { retain: true }).message, topic: 'r/long' })
      await store.close()

      clock.advance(HOUR_MS)
      const reopened = fx.make()
      const snapshot = await reopened.open()
      assert.deepEqual(
        snapshot.sessions.map((s) => s.session.clientId),
        ['stays'],
      )
      assert.deepEqual(
        snapshot.retained.map((m) => m.topic),
        ['r/long'],
      )
      // The will of the expired session is due: it stays for the core to publish.
      assert.deepEqual(
        snapshot.wills.map((w) => w.clientId),
        ['gone'],
      )
      assert.deepEqual(
        (await reopened.loadMessages('stays', 0, 10)).map((e) => e.seq),
        [2, 3],
      )
      await reopened.close()

      // Deleted, not skipped: the rows are gone from the file.
      assert.equal(countRows(fx.path, 'queue'), 2)
      assert.equal(countRows(fx.path, 'subscriptions'), 0)
      assert.equal(countRows(fx.path, 'retained'), 1)
      assert.equal(countRows(fx.path, 'sessions'), 1)
    } finally {
      await fx.cleanup()
    }
  })

  it('a periodic sweep on the injected clock deletes expired rows while running', async () => {
    const clock = new ManualClock()
    const fx = await sqliteFixture({ clock })
    const store = fx.make({ sweepIntervalMs: 1000 })
    try {
      await store.open()
      const now = clock.now()
      store.saveSession({ clientId: 'tab-9', protocolVersion: 4, sessionExpirySeconds: 600 })
      store.pushMessage('tab-9', entry(1, { expiresAt: now + 1500 }))
      store.pushMessage('tab-9', entry(2))
      await committed(store)
      const records = async () => (await store.listKeys()).reduce((n, k) => n + k.records, 0)
      assert.equal(await records(), 2)

      clock.advance(1000)
      await committed(store)
      assert.equal(await records(), 2, 'not expired yet at the first sweep')

      clock.advance(1000)
      await committed(store)
      assert.equal(await records(), 1)
    } finally {
      await store.close()
      await fx.cleanup()
    }
  })

  it('loadMessages never returns an entry that has expired, and deletes it', async () => {
    const clock = new ManualClock()
    const fx = await sqliteFixture({ clock })
    const store = fx.make()
    try {
      await store.open()
      store.saveSession({ clientId: 'c', protocolVersion: 5, sessionExpirySeconds: 600 })
      store.pushMessage('c', entry(1, { expiresAt: clock.now() + 100 }))
      store.pushMessage('c', entry(2, { expiresAt: clock.now() + 100 }))
      store.pushMessage('c', entry(3))
      await committed(store)
      clock.advance(200)
      assert.deepEqual(
        (await store.loadMessages('c', 0, 1)).map((e) => e.seq),
        [3],
      )
      await committed(store)
      assert.equal(
        (await store.listKeys()).reduce((n, k) => n + k.records, 0),
        1,
      )
    } finally {
      await store.close()
      await fx.cleanup()
    }
  })

  it('a session with Session Expiry 0xFFFFFFFF never expires (MQTT-3.1.2.11.2)', async () => {
    const clock = new ManualClock()
    const fx = await sqliteFixture({ clock })
    try {
      const store = fx.make()
      await store.open()
      store.saveSession({
        clientId: 'forever',
        protocolVersion: 5,
        sessionExpirySeconds: SESSION_EXPIRY_NEVER_SECONDS,
        disconnectedAt: clock.now(),
      })
      await store.close()
      clock.advance(200 * 365 * 24 * HOUR_MS)
      const reopened = fx.make()
      const snapshot = await reopened.open()
      assert.equal(snapshot.sessions.length, 1)
      await reopened.close()
    } finally {
      await fx.cleanup()
    }
  })

  it('refuses to open with another master key, naming no key material', async () => {
    const fx = await sqliteFixture()
    try {
      const store = fx.make()
      await store.open()
      store.saveSession({ clientId: 'x', protocolVersion: 5, sessionExpirySeconds: 1 })
      store.setRetained('t', { topic: 't', payload: Buffer.from('p'), qos: 0, retain: true })
      await store.close()

      const wrong = fx.make({ masterKey: new LocalMasterKey(randomBytes(32)) })
      await assert.rejects(wrong.open(), { code: 'PHIMQ_MASTER_KEY_INVALID' })
    } finally {
      await fx.cleanup()
    }
  })

  it('holds an exclusive lock: a second store on the same file is refused', async () => {
    const fx = await sqliteFixture()
    const first = fx.make()
    try {
      await first.open()
      await assert.rejects(fx.make().open(), { code: 'PHIMQ_STORE_BUSY' })
    } finally {
      await first.close()
      await fx.cleanup()
    }
  })

  it('uses synchronous NORMAL by default and FULL when configured', async () => {
    const fx = await sqliteFixture()
    try {
      const normal = fx.make()
      await normal.open()
      assert.equal(normal.synchronousMode(), 'normal')
      await normal.close()
      const full = fx.make({ synchronous: 'full' })
      await full.open()
      assert.equal(full.synchronousMode(), 'full')
      await full.close()
    } finally {
      await fx.cleanup()
    }
  })

  it('refuses writes, and a second open, after close with a named error', async () => {
    const fx = await sqliteFixture()
    const store = fx.make()
    await store.open()
    await store.close()
    assert.throws(() => store.deleteSession('x'), { code: 'PHIMQ_STORE_FAILED' })
    await assert.rejects(store.open(), { code: 'PHIMQ_STORE_FAILED' })
    await fx.cleanup()
  })
})

const CHILD = fileURLToPath(new URL('./fixtures/commit-then-kill.ts', import.meta.url))

function runChild(
  path: string,
  masterKeyHex: string,
  mode: 'wait' | 'nowait',
  count: number,
): Promise<{ stdout: string; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CHILD, path, masterKeyHex, mode, String(count)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.on('error', reject)
    child.on('exit', (_code, signal) => resolve({ stdout, signal }))
  })
}
