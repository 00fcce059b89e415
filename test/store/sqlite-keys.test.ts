/**
 * Data keys of the SQLite store: one per tenant, rotation with a
 * re-encrypt job, crypto-erase of a tenant, and what happens to records
 * whose key is gone (issue #5).
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import type { Message } from '../../src/broker/types.js'
import { LocalMasterKey } from '../../src/store/crypto.js'
import type { SqliteStore } from '../../src/store/sqlite-store.js'
import { committed, type SqliteFixture, sqliteFixture, withRawDb } from './helpers.js'

function msg(topic: string, text: string, extra: Partial<Message> = {}): Message {
  return { topic, payload: Buffer.from(text), qos: 1, retain: false, ...extra }
}

/** Three clients: tenants clinic-a and clinic-b, and one without a tenant. */
function seed(store: SqliteStore): void {
  const clients = [
    { clientId: 'a-1', tenant: 'clinic-a' },
    { clientId: 'b-1', tenant: 'clinic-b' },
    { clientId: 'plain', tenant: undefined },
  ]
  for (const { clientId, tenant } of clients) {
    const identity = tenant === undefined ? { id: clientId } : { id: clientId, tenant }
    store.saveSession({ clientId, protocolVersion: 5, sessionExpirySeconds: 3600, identity })
    for (let seq = 1; seq <= 3; seq++) {
      store.pushMessage(clientId, {
        seq,
        state: 'queued',
        message: msg(`t/${clientId}`, `m${seq}`),
      })
    }
    store.setWill(clientId, { message: msg('status', `will of ${clientId}`), dueAt: 1 })
    store.setRetained(`r/${clientId}`, msg(`r/${clientId}`, 'kept', { origin: clientId }))
  }
}

async function withStore(body: (store: SqliteStore, fx: SqliteFixture) => Promise<void>) {
  const fx = await sqliteFixture()
  const store = fx.make()
  try {
    await store.open()
    await body(store, fx)
  } finally {
    await store.close()
    await fx.cleanup()
  }
}

describe('SQLite store data keys', () => {
  it('seals each tenant with its own data key, and no-tenant clients with a default key', async () => {
    await withStore(async (store) => {
      seed(store)
      await committed(store)
      const data = (await store.listKeys()).filter((k) => k.purpose === 'data')
      const byTenant = new Map(data.map((k) => [k.tenant, k]))
      assert.deepEqual([...byTenant.keys()].sort(), ['clinic-a', 'clinic-b', undefined].sort())
      // Three queued, one will and one retained message per tenant.
      for (const key of data) assert.equal(key.records, 5)
    })
  })

  it('indexes retained messages by a keyed hash, never the topic or its plain hash', async () => {
    const fx = await sqliteFixture()
    try {
      const store = fx.make()
      await store.open()
      store.setRetained('ward/9/status', msg('ward/9/status', 'x', { retain: true }))
      await store.close()
      const hashes = withRawDb(fx.path, (db) =>
        (db.prepare('SELECT topic_hash FROM retained').all() as Array<{ topic_hash: Buffer }>).map(
          (r) => r.topic_hash,
        ),
      )
      assert.equal(hashes.length, 1)
      const plain = createHash('sha256').update('ward/9/status').digest()
      assert.equal(hashes[0]?.length, 32)
      assert.notDeepEqual(hashes[0], plain)
    } finally {
      await fx.cleanup()
    }
  })

  it('after rotation new writes use the new key; re-encrypt moves the rest and deletes the old key', async () => {
    const fx = await sqliteFixture()
    try {
      const store = fx.make()
      await store.open()
      seed(store)
      await committed(store)
      const before = (await store.listKeys()).find((k) => k.tenant === 'clinic-a')
      assert.ok(before)

      const freshId = await store.rotateKey('clinic-a')
      store.pushMessage('a-1', { seq: 4, state: 'queued', message: msg('t/a-1', 'm4') })
      await committed(store)
      let keys = await store.listKeys()
      assert.equal(keys.find((k) => k.id === freshId)?.records, 1)
      assert.equal(keys.find((k) => k.id === before.id)?.state, 'retired')
      assert.equal(keys.find((k) => k.id === before.id)?.records, 5)

      const progress: Array<{ done: number; total: number }> = []
      const result = await store.reencrypt({ batchSize: 2, onProgress: (p) => progress.push(p) })
      assert.equal(result.reencrypted, 5)
      assert.deepEqual(result.deletedKeys, [before.id])
      assert.deepEqual(progress[0], { done: 0, total: 5 })
      assert.deepEqual(progress.at(-1), { done: 5, total: 5 })
      assert.ok(progress.length >= 3, 'progress is reported per batch')

      keys = await store.listKeys()
      assert.equal(
        keys.some((k) => k.id === before.id),
        false,
      )
      assert.equal(keys.find((k) => k.id === freshId)?.records, 6)
      await store.close()

      // Everything still reads back after a restart, under the new key only.
      const reopened = fx.make()
      const snapshot = await reopened.open()
      assert.equal(snapshot.retained.length, 3)
      assert.equal(snapshot.wills.length, 3)
      assert.deepEqual(
        (await reopened.loadMessages('a-1', 0, 10)).map((e) => e.message.payload.toString()),
        ['m1', 'm2', 'm3', 'm4'],
      )
      await reopened.close()
    } finally {
      await fx.cleanup()
    }
  })

  it('erasing a tenant destroys its key and data and leaves no wrapped copy in the files', async () => {
    const fx = await sqliteFixture()
    try {
      let store = fx.make()
      await store.open()
      seed(store)
      await store.close()
      const wrapped = withRawDb(
        fx.path,
        (db) =>
          (
            db.prepare("SELECT wrapped FROM data_keys WHERE tenant = 'clinic-a'").get() as {
              wrapped: Buffer
            }
          ).wrapped,
      )

      store = fx.make()
      await store.open()
      const result = await store.eraseTenant('clinic-a')
      assert.deepEqual(result, { keys: 1, records: 5, sessions: 1 })
      await store.close()

      for (const suffix of ['', '-wal', '-shm']) {
        const bytes = await readFile(`${fx.path}${suffix}`).catch(() => Buffer.alloc(0))
        assert.equal(bytes.includes(wrapped), false, `wrapped key found in store.db${suffix}`)
      }
      store = fx.make()
      const snapshot = await store.open()
      assert.deepEqual(snapshot.sessions.map((s) => s.session.clientId).sort(), ['b-1', 'plain'])
      assert.deepEqual(snapshot.retained.map((m) => m.topic).sort(), ['r/b-1', 'r/plain'])
      assert.deepEqual(snapshot.wills.map((w) => w.clientId).sort(), ['b-1', 'plain'])
      assert.deepEqual(await store.loadMessages('a-1', 0, 10), [])
      assert.equal((await store.loadMessages('b-1', 0, 10)).length, 3)
      await store.close()
    } finally {
      await fx.cleanup()
    }
  })

  it('master key rotation re-wraps every data key: the new key opens the store, the old one not', async () => {
    const fx = await sqliteFixture()
    try {
      let store = fx.make()
      await store.open()
      seed(store)
      await committed(store)
      const next = new LocalMasterKey(randomBytes(32))
      const keyCount = (await store.listKeys()).length
      assert.equal(await store.rewrapKeys(next), keyCount)
      // A tenant first seen after the rotation gets a key wrapped by the new master key.
      store.saveSession({
        clientId: 'c-1',
        protocolVersion: 5,
        sessionExpirySeconds: 60,
        identity: { id: 'c-1', tenant: 'clinic-c' },
      })
      store.pushMessage('c-1', { seq: 1, state: 'queued', message: msg('t', 'after') })
      await store.close()

      await assert.rejects(fx.make().open(), { code: 'PHIMQ_MASTER_KEY_INVALID' })
      store = fx.make({ masterKey: next })
      const snapshot = await store.open()
      assert.equal(snapshot.retained.length, 3)
      assert.equal((await store.loadMessages('a-1', 0, 10)).length, 3)
      assert.equal((await store.loadMessages('c-1', 0, 10))[0]?.message.payload.toString(), 'after')
      await store.close()
    } finally {
      await fx.cleanup()
    }
  })

  it('records whose data key is gone are dropped at open and on load, never crash', async () => {
    const fx = await sqliteFixture()
    try {
      let store = fx.make()
      await store.open()
      seed(store)
      await store.close()
      // As if the key were destroyed behind the store's back.
      withRawDb(fx.path, (db) =>
        db.prepare("DELETE FROM data_keys WHERE tenant = 'clinic-b'").run(),
      )

      store = fx.make()
      const snapshot = await store.open()
      assert.deepEqual(snapshot.retained.map((m) => m.topic).sort(), ['r/a-1', 'r/plain'])
      assert.deepEqual(snapshot.wills.map((w) => w.clientId).sort(), ['a-1', 'plain'])
      assert.deepEqual(await store.loadMessages('b-1', 0, 10), [])
      assert.equal((await store.loadMessages('a-1', 0, 10)).length, 3)
      await store.close()
      const left = withRawDb(
        fx.path,
        (db) =>
          (
            db.prepare("SELECT count(*) AS n FROM queue WHERE client_id = 'b-1'").get() as {
              n: number
            }
          ).n,
      )
      assert.equal(left, 0)
    } finally {
      await fx.cleanup()
    }
  })
})
