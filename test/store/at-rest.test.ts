/**
 * Encryption at rest, checked on the bytes: a marker payload and a marker
 * topic written to queues, retained messages and wills never appear in the
 * database file, its WAL or its shared-memory file, neither while the store
 * runs nor after it closed (issue #5).
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Message } from '../../src/broker/types.js'
import { committed, sqliteFixture } from './helpers.js'

const PAYLOAD_MARKER = 'PAYLOAD-MARKER-7f3c9a'
const TOPIC_MARKER = 'TOPIC-MARKER-41d2e8'
/** Client ids are stored in clear: finding this one proves the scan reads the data. */
const CLEAR_MARKER = 'CLIENT-MARKER-0b6a55'

/** The store's files, with their contents; -wal and -shm only when present. */
async function storeFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  for (const name of await readdir(dir)) out.set(name, await readFile(join(dir, name)))
  return out
}

function assertNoMarkers(files: Map<string, Buffer>, when: string): void {
  for (const [name, bytes] of files) {
    for (const marker of [PAYLOAD_MARKER, TOPIC_MARKER]) {
      assert.equal(bytes.includes(marker), false, `${marker} found in ${name} ${when}`)
      // UTF-16 or base64 copies would hide from a plain scan.
      assert.equal(bytes.includes(Buffer.from(marker, 'utf16le')), false)
      assert.equal(bytes.includes(Buffer.from(marker).toString('base64').slice(0, 16)), false)
    }
  }
}

describe('SQLite store encryption at rest', () => {
  it('never writes a payload or topic marker in clear to the db, -wal or -shm file', async () => {
    const fx = await sqliteFixture()
    try {
      const store = fx.make()
      await store.open()
      const topic = `ward/${TOPIC_MARKER}/vitals`
      const message: Message = {
        topic,
        payload: Buffer.from(`{"obs":"${PAYLOAD_MARKER}"}`),
        qos: 1,
        retain: true,
        properties: {
          responseTopic: `reply/${TOPIC_MARKER}`,
          correlationData: Buffer.from(PAYLOAD_MARKER),
          userProperties: [['note', PAYLOAD_MARKER]],
        },
      }
      store.saveSession({
        clientId: CLEAR_MARKER,
        protocolVersion: 5,
        sessionExpirySeconds: 3600,
        identity: { id: 'dev-1', tenant: 'clinic-a' },
      })
      for (let seq = 1; seq <= 50; seq++)
        store.pushMessage(CLEAR_MARKER, { seq, state: 'queued', message })
      store.setRetained(topic, message)
      store.setWill(CLEAR_MARKER, { message, dueAt: 1 })
      await committed(store)

      const running = await storeFiles(fx.dir)
      assert.ok(running.has('store.db-wal'), 'the WAL holds the commits while running')
      const all = Buffer.concat([...running.values()])
      assert.ok(all.includes(CLEAR_MARKER), 'the scan sees data written in clear')
      assertNoMarkers(running, 'while running')

      await store.close()
      const closed = await storeFiles(fx.dir)
      assert.ok(Buffer.concat([...closed.values()]).includes(CLEAR_MARKER))
      assertNoMarkers(closed, 'after close')

      // And the data is all there for the key holder.
      const reopened = fx.make()
      const snapshot = await reopened.open()
      assert.equal(snapshot.retained[0]?.topic, topic)
      assert.equal(snapshot.wills[0]?.will.message.payload.toString(), message.payload.toString())
      assert.equal((await reopened.loadMessages(CLEAR_MARKER, 0, 100)).length, 50)
      await reopened.close()
    } finally {
      await fx.cleanup()
    }
  })
})
