/**
 * A stored QoS 2 message leaves for the subscriber only once the store has
 * committed its `sent` state with the packet id: a crash before that
 * commit would otherwise make the restarted broker send it again under a
 * new packet id, a second delivery for a receiver that delivers on PUBLISH
 * [MQTT-4.3.3-3] (issue #5). The store here commits only when the test says.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type { IPublishPacket } from 'mqtt-packet'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Store } from '../../src/store/store.js'
import { sleep, startBroker, type TestBroker } from '../helpers/broker.js'
import { RawClient } from '../helpers/raw-client.js'

interface HeldCommits {
  readonly store: Store
  readonly inner: MemoryStore
  /** Commit everything, including what the callbacks write. */
  commit(): Promise<void>
  /** From now on commit at once (for shutdown). */
  release(): void
}

/** A memory store that claims durability and commits on `commit()` only. */
function heldCommits(): HeldCommits {
  const inner = new MemoryStore()
  let held: Array<() => void> = []
  let released = false
  const afterCommit = (fn: () => void): void => {
    if (released) queueMicrotask(fn)
    else held.push(fn)
  }
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'durable') return true
      if (prop === 'afterCommit') return afterCommit
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  }) as Store
  return {
    store,
    inner,
    async commit() {
      while (held.length > 0) {
        const now = held
        held = []
        for (const fn of now) fn()
        await sleep(20)
      }
    },
    release() {
      released = true
      for (const fn of held.splice(0)) fn()
    },
  }
}

let tb: TestBroker | undefined
let h: HeldCommits | undefined
const raws: RawClient[] = []

afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy()
  h?.release()
  await tb?.close()
  tb = undefined
})

async function raw(fields: Parameters<RawClient['connect']>[0]): Promise<RawClient> {
  const { client } = await RawClient.connected((tb as TestBroker).port, 5, fields)
  raws.push(client)
  return client
}

describe('outbound QoS 2 on a durable store', () => {
  it('sends the PUBLISH of a stored QoS 2 message only after its packet id is committed, and keeps order behind it', async () => {
    h = heldCommits()
    tb = await startBroker({ store: h.store })
    const sub = await raw({
      clientId: 'ward-display',
      clean: false,
      properties: { sessionExpiryInterval: 600 },
    })
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ward/8/#', qos: 2 }] })
    await sub.next('suback')
    await h.commit()

    const pub = await raw({ clientId: 'bedside-8' })
    const publish = { cmd: 'publish', retain: false, dup: false } as const
    pub.send({
      ...publish,
      topic: 'ward/8/alarm',
      payload: Buffer.from('q2'),
      qos: 2,
      messageId: 7,
    })
    pub.send({ ...publish, topic: 'ward/8/alarm', payload: Buffer.from('q0'), qos: 0 })
    await sleep(150)

    // Written, not committed: nothing has left for the subscriber yet.
    assert.deepEqual(sub.inbox, [])
    const [entry] = await h.inner.loadMessages('ward-display', 0, 10)
    assert.equal(entry?.state, 'sent')
    assert.ok(entry?.packetId)

    await h.commit()
    const first = (await sub.next('publish')) as IPublishPacket
    const second = (await sub.next('publish')) as IPublishPacket
    assert.equal(first.payload.toString(), 'q2')
    assert.equal(first.messageId, entry.packetId)
    assert.equal(first.dup, false)
    assert.equal(second.payload.toString(), 'q0')
  })

  it('a QoS 2 PUBLISH held when the client leaves goes out with DUP and the same packet id on resumption [MQTT-4.4.0-1]', async () => {
    h = heldCommits()
    tb = await startBroker({ store: h.store })
    const fields = {
      clientId: 'ward-tablet',
      clean: false,
      properties: { sessionExpiryInterval: 600 },
    }
    const sub = await raw(fields)
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ward/9/#', qos: 2 }] })
    await sub.next('suback')
    await h.commit()

    const pub = await raw({ clientId: 'bedside-9' })
    pub.send({
      cmd: 'publish',
      topic: 'ward/9/alarm',
      payload: Buffer.from('held'),
      qos: 2,
      messageId: 3,
      retain: false,
      dup: false,
    })
    await sleep(100)
    const [entry] = await h.inner.loadMessages('ward-tablet', 0, 10)
    sub.destroy()
    await sleep(50)
    await h.commit()

    const back = await raw(fields)
    const resent = (await back.next('publish')) as IPublishPacket
    assert.equal(resent.payload.toString(), 'held')
    assert.equal(resent.messageId, entry?.packetId)
    assert.equal(resent.dup, true)
    await h.commit()
    // Once only.
    await sleep(100)
    assert.equal(back.inbox.filter((p) => p.cmd === 'publish').length, 0)
  })
})
