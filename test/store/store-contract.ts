/**
 * The behaviour every `Store` backend must show, independent of how it
 * keeps its data. A backend's test file calls `runStoreContract` with a
 * factory; the memory and SQLite stores both run it (issue #5).
 *
 * Client ids such as `__proto__` and `constructor` are used on purpose: a
 * backend that keys client input by plain objects fails here.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Message } from '../../src/broker/types.js'
import type {
  QueueEntry,
  SessionRecord,
  Store,
  StoreSnapshot,
  SubscriptionRecord,
  WillRecord,
} from '../../src/store/store.js'

/** One backend instance under test, over data the harness owns. */
export interface StoreHarness {
  /** Not yet opened. */
  readonly store: Store
  /** A new, unopened store over the same data; called after the previous one closed. */
  reopen(): Promise<Store>
  /** Remove the data (files, temp dirs). Every store it made is closed by then. */
  cleanup(): Promise<void>
}

export type MakeStore = () => Promise<StoreHarness>

/** A fixed point in time well after the tests' clocks start, for dueAt/disconnectedAt. */
const T0 = Date.UTC(2026, 0, 1)
/** Far enough ahead that no clock reaches it while the suite runs. */
const FAR_FUTURE = Date.UTC(2099, 0, 1)

const ODD_IDS = ['__proto__', 'constructor', 'hasOwnProperty', 'toString']

function message(topic: string, text: string, extra: Partial<Message> = {}): Message {
  return { topic, payload: Buffer.from(text), qos: 1, retain: false, ...extra }
}

function entry(seq: number, text: string, extra: Partial<QueueEntry> = {}): QueueEntry {
  return { seq, message: message(`ward/7/bed/${seq}`, text), state: 'queued', ...extra }
}

function session(clientId: string, extra: Partial<SessionRecord> = {}): SessionRecord {
  return { clientId, protocolVersion: 5, sessionExpirySeconds: 3600, ...extra }
}

function sub(filter: string, extra: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return { filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, ...extra }
}

function committed(store: Store): Promise<void> {
  return new Promise((resolve) => store.afterCommit(resolve))
}

function sessionOf(snapshot: StoreSnapshot, clientId: string) {
  return snapshot.sessions.find((s) => s.session.clientId === clientId)
}

function byFilter(a: SubscriptionRecord, b: SubscriptionRecord): number {
  return a.filter < b.filter ? -1 : a.filter > b.filter ? 1 : 0
}

function byTopic(a: Message, b: Message): number {
  return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0
}

/**
 * Open a harness, run `body` with a `restart` helper that closes the
 * current store and opens a new one over the same data, then clean up.
 */
async function withHarness(
  make: MakeStore,
  body: (ctx: {
    store: Store
    snapshot: StoreSnapshot
    restart(current: Store): Promise<{ store: Store; snapshot: StoreSnapshot }>
  }) => Promise<Store | undefined>,
): Promise<void> {
  const harness = await make()
  let last: Store | undefined = harness.store
  try {
    const snapshot = await harness.store.open()
    last = await body({
      store: harness.store,
      snapshot,
      restart: async (current) => {
        await current.close()
        last = undefined
        const next = await harness.reopen()
        const nextSnapshot = await next.open()
        last = next
        return { store: next, snapshot: nextSnapshot }
      },
    })
  } finally {
    await last?.close()
    await harness.cleanup()
  }
}

/** Register the contract suite for one backend. */
export function runStoreContract(name: string, makeStore: MakeStore): void {
  describe(`Store contract: ${name}`, () => {
    it('opens an empty store with an empty snapshot', async () => {
      await withHarness(makeStore, async ({ store, snapshot }) => {
        assert.deepEqual(snapshot.sessions, [])
        assert.deepEqual(snapshot.retained, [])
        assert.deepEqual(snapshot.wills, [])
        assert.equal(typeof store.kind, 'string')
        return store
      })
    })

    it('keeps sessions across a reopen, keyed safely by odd client ids', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        const records = ODD_IDS.map((id, i) =>
          session(id, {
            protocolVersion: i % 2 === 0 ? 5 : 4,
            sessionExpirySeconds: 600 + i,
            identity: { id: `device-${i}`, tenant: 'clinic-a', role: 'device' },
            disconnectedAt: FAR_FUTURE - 1000,
          }),
        )
        for (const r of records) store.saveSession(r)
        const after = await restart(store)
        assert.equal(after.snapshot.sessions.length, ODD_IDS.length)
        for (const r of records) assert.deepEqual(sessionOf(after.snapshot, r.clientId)?.session, r)
        return after.store
      })
    })

    it('replaces a saved session: the latest record wins, absent fields are cleared', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        store.saveSession(session('icu-monitor-1', { disconnectedAt: FAR_FUTURE - 5 }))
        const latest = session('icu-monitor-1', { sessionExpirySeconds: 7200, protocolVersion: 4 })
        store.saveSession(latest)
        const after = await restart(store)
        assert.equal(after.snapshot.sessions.length, 1)
        assert.deepEqual(after.snapshot.sessions[0]?.session, latest)
        return after.store
      })
    })

    it('keeps subscriptions with every option; saving a filter again replaces it', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        store.saveSession(session('constructor'))
        const subs = [
          sub('ward/+/vitals', { qos: 2, noLocal: true, subscriptionIdentifier: 7 }),
          sub('$share/nurses/ward/7/#', { retainAsPublished: true, retainHandling: 2 }),
          sub('alerts/#', { qos: 0, retainHandling: 1 }),
        ]
        for (const s of subs) store.saveSubscription('constructor', s)
        const replaced = sub('alerts/#', { qos: 2, subscriptionIdentifier: 9 })
        store.saveSubscription('constructor', replaced)
        store.deleteSubscription('constructor', 'ward/+/vitals')
        store.deleteSubscription('constructor', 'never/subscribed')

        const after = await restart(store)
        const got = [...(sessionOf(after.snapshot, 'constructor')?.subscriptions ?? [])]
        assert.deepEqual(got.sort(byFilter), [subs[1]!, replaced].sort(byFilter))
        return after.store
      })
    })

    it('returns queue entries in seq order with their packetId and state after a reopen', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        store.saveSession(session('__proto__'))
        for (const seq of [1, 2, 3, 4]) store.pushMessage('__proto__', entry(seq, `obs-${seq}`))
        store.updateMessage('__proto__', 1, 11, 'sent')
        store.updateMessage('__proto__', 2, 12, 'released')
        store.updateMessage('__proto__', 2, 12, 'released')
        store.deleteMessage('__proto__', 3)

        const after = await restart(store)
        const got = await after.store.loadMessages('__proto__', 0, 100)
        assert.deepEqual(got, [
          entry(1, 'obs-1', { packetId: 11, state: 'sent' }),
          entry(2, 'obs-2', { packetId: 12, state: 'released' }),
          entry(4, 'obs-4'),
        ])
        return after.store
      })
    })

    it('round-trips every message field: binary payload, properties, expiry, origin, ids', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        store.saveSession(session('hasOwnProperty'))
        const full: QueueEntry = {
          seq: 1,
          packetId: 65535,
          state: 'sent',
          subscriptionIdentifiers: [3, 268435455],
          message: {
            topic: 'lab/results/ünïcode',
            payload: Buffer.from([0, 1, 2, 255, 0, 254]),
            qos: 2,
            retain: true,
            expiresAt: FAR_FUTURE,
            origin: 'lab-gateway',
            properties: {
              payloadFormatIndicator: false,
              contentType: 'application/octet-stream',
              responseTopic: 'lab/replies/1',
              correlationData: Buffer.from([9, 8, 7]),
              userProperties: [
                ['k', 'v1'],
                ['k', 'v2'],
              ],
            },
          },
        }
        const empty: QueueEntry = {
          seq: 2,
          state: 'queued',
          message: { topic: 'a', payload: Buffer.alloc(0), qos: 0, retain: false },
        }
        store.pushMessage('hasOwnProperty', full)
        store.pushMessage('hasOwnProperty', empty)
        const after = await restart(store)
        assert.deepEqual(await after.store.loadMessages('hasOwnProperty', 0, 10), [full, empty])
        return after.store
      })
    })

    it('pages the queue with loadMessages(afterSeq, limit)', async () => {
      await withHarness(makeStore, async ({ store }) => {
        store.saveSession(session('pager'))
        const seqs = [1, 2, 3, 5, 8, 13, 21]
        for (const seq of seqs) store.pushMessage('pager', entry(seq, `p-${seq}`))
        const seqsOf = (list: QueueEntry[]) => list.map((e) => e.seq)

        assert.deepEqual(seqsOf(await store.loadMessages('pager', 0, 3)), [1, 2, 3])
        assert.deepEqual(seqsOf(await store.loadMessages('pager', 3, 3)), [5, 8, 13])
        assert.deepEqual(seqsOf(await store.loadMessages('pager', 4, 2)), [5, 8])
        assert.deepEqual(seqsOf(await store.loadMessages('pager', 13, 10)), [21])
        assert.deepEqual(await store.loadMessages('pager', 21, 10), [])
        assert.deepEqual(await store.loadMessages('nobody', 0, 10), [])
        return store
      })
    })

    it('loadMessages sees writes issued just before it, without waiting for a commit', async () => {
      await withHarness(makeStore, async ({ store }) => {
        store.saveSession(session('eager'))
        store.pushMessage('eager', entry(1, 'one'))
        store.pushMessage('eager', entry(2, 'two'))
        store.deleteMessage('eager', 1)
        const got = await store.loadMessages('eager', 0, 10)
        assert.deepEqual(
          got.map((e) => e.seq),
          [2],
        )
        return store
      })
    })

    it('keeps queues of different clients apart', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        for (const id of ['__proto__', 'constructor']) store.saveSession(session(id))
        store.pushMessage('__proto__', entry(1, 'for proto'))
        store.pushMessage('constructor', entry(1, 'for ctor'))
        store.deleteMessage('constructor', 1)
        const after = await restart(store)
        assert.deepEqual(await after.store.loadMessages('__proto__', 0, 10), [
          entry(1, 'for proto'),
        ])
        assert.deepEqual(await after.store.loadMessages('constructor', 0, 10), [])
        return after.store
      })
    })

    it('keeps inbound QoS 2 packet ids until deleted, one entry per id', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        store.saveSession(session('toString'))
        store.saveSession(session('constructor'))
        for (const id of [7, 1, 65535, 7]) store.addInboundQos2('toString', id)
        store.addInboundQos2('constructor', 7)
        store.deleteInboundQos2('toString', 1)
        store.deleteInboundQos2('toString', 999)

        const after = await restart(store)
        const ids = [...(sessionOf(after.snapshot, 'toString')?.inboundQos2 ?? [])]
        assert.deepEqual(
          ids.sort((a, b) => a - b),
          [7, 65535],
        )
        assert.deepEqual(sessionOf(after.snapshot, 'constructor')?.inboundQos2, [7])
        return after.store
      })
    })

    it('sets, replaces and clears retained messages, and keeps them across a reopen', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        const a1 = message('ward/7/status', 'first', { retain: true })
        const a2 = message('ward/7/status', 'second', {
          retain: true,
          qos: 2,
          expiresAt: FAR_FUTURE,
        })
        const b = message('ward/8/status', 'other', { retain: true, origin: 'constructor' })
        const c = message('__proto__', 'odd topic', { retain: true })
        store.setRetained(a1.topic, a1)
        store.setRetained(b.topic, b)
        store.setRetained(c.topic, c)
        store.setRetained(a2.topic, a2)
        store.setRetained(c.topic, undefined)
        store.setRetained('never/set', undefined)

        let after = await restart(store)
        assert.deepEqual([...after.snapshot.retained].sort(byTopic), [a2, b])

        after.store.setRetained(b.topic, undefined)
        after = await restart(after.store)
        assert.deepEqual(after.snapshot.retained, [a2])
        return after.store
      })
    })

    it('sets, replaces and clears wills with their due time and will expiry', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        for (const id of ODD_IDS) store.saveSession(session(id))
        const will = (text: string, dueAt: number): WillRecord => ({
          message: message('devices/offline', text, {
            qos: 1,
            origin: 'x',
            willExpirySeconds: 30,
            properties: { contentType: 'text/plain', correlationData: Buffer.from([1, 2]) },
          }),
          dueAt,
        })
        store.setWill('__proto__', will('first', T0 + 1))
        store.setWill('__proto__', will('replaced', T0 + 2))
        store.setWill('constructor', will('kept', T0 + 3))
        store.setWill('toString', will('cleared', T0 + 4))
        store.setWill('toString', undefined)

        const after = await restart(store)
        const wills = [...after.snapshot.wills].sort((x, y) => x.will.dueAt - y.will.dueAt)
        assert.deepEqual(wills, [
          { clientId: '__proto__', will: will('replaced', T0 + 2) },
          { clientId: 'constructor', will: will('kept', T0 + 3) },
        ])
        return after.store
      })
    })

    it('deleteSession removes everything of that client and nothing of others', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        for (const id of ['__proto__', 'constructor']) {
          store.saveSession(session(id))
          store.saveSubscription(id, sub('ward/#'))
          store.pushMessage(id, entry(1, `q-${id}`))
          store.addInboundQos2(id, 42)
          store.setWill(id, { message: message('w', `will-${id}`), dueAt: T0 })
        }
        const retained = message('ward/1', 'stays', { retain: true, origin: '__proto__' })
        store.setRetained(retained.topic, retained)
        store.deleteSession('__proto__')

        const after = await restart(store)
        assert.equal(sessionOf(after.snapshot, '__proto__'), undefined)
        assert.ok(sessionOf(after.snapshot, 'constructor'))
        assert.deepEqual(sessionOf(after.snapshot, 'constructor')?.subscriptions, [sub('ward/#')])
        assert.deepEqual(sessionOf(after.snapshot, 'constructor')?.inboundQos2, [42])
        assert.deepEqual(
          after.snapshot.wills.map((w) => w.clientId),
          ['constructor'],
        )
        assert.deepEqual(await after.store.loadMessages('__proto__', 0, 10), [])
        assert.equal((await after.store.loadMessages('constructor', 0, 10)).length, 1)
        assert.deepEqual(after.snapshot.retained, [retained])
        return after.store
      })
    })

    it('a session deleted and saved again starts empty', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        store.saveSession(session('reborn'))
        store.saveSubscription('reborn', sub('a/b'))
        store.pushMessage('reborn', entry(1, 'old'))
        store.deleteSession('reborn')
        store.saveSession(session('reborn'))
        const after = await restart(store)
        assert.deepEqual(sessionOf(after.snapshot, 'reborn')?.subscriptions, [])
        assert.deepEqual(await after.store.loadMessages('reborn', 0, 10), [])
        return after.store
      })
    })

    it('afterCommit calls each callback once, in call order, after earlier writes', async () => {
      await withHarness(makeStore, async ({ store }) => {
        const calls: string[] = []
        store.saveSession(session('acker'))
        store.afterCommit(() => calls.push('a'))
        store.pushMessage('acker', entry(1, 'm1'))
        store.afterCommit(() => calls.push('b'))
        store.afterCommit(() => calls.push('c'))
        store.pushMessage('acker', entry(2, 'm2'))
        let seen: number[] = []
        const last = new Promise<void>((resolve) => {
          store.afterCommit(() => {
            calls.push('d')
            // Everything issued before this callback is in.
            void store.loadMessages('acker', 0, 10).then((list) => {
              seen = list.map((e) => e.seq)
              resolve()
            })
          })
        })
        await last
        await committed(store)
        assert.deepEqual(calls, ['a', 'b', 'c', 'd'])
        assert.deepEqual(seen, [1, 2])
        return store
      })
    })

    it('afterCommit fires even with no write pending', async () => {
      await withHarness(makeStore, async ({ store }) => {
        let fired = 0
        await new Promise<void>((resolve) =>
          store.afterCommit(() => {
            fired++
            resolve()
          }),
        )
        await committed(store)
        assert.equal(fired, 1)
        return store
      })
    })

    it('close keeps every write issued before it', async () => {
      await withHarness(makeStore, async ({ store, restart }) => {
        store.saveSession(session('closer'))
        store.pushMessage('closer', entry(1, 'last words'))
        store.setRetained('closing/time', message('closing/time', 'r', { retain: true }))
        const after = await restart(store)
        assert.ok(sessionOf(after.snapshot, 'closer'))
        assert.equal(after.snapshot.retained.length, 1)
        assert.equal((await after.store.loadMessages('closer', 0, 10)).length, 1)
        return after.store
      })
    })
  })
}
