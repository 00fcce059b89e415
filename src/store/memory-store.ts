/**
 * The memory backend: everything in `Map`s. State survives `close()` and a
 * later `open()` of the same instance, so tests can restart a broker in the
 * process; nothing survives the process.
 */
import type { Message } from '../broker/types.js'
import type {
  OutboundState,
  QueueEntry,
  SessionRecord,
  Store,
  StoreSnapshot,
  SubscriptionRecord,
  WillRecord,
} from './store.js'

interface SessionData {
  session: SessionRecord
  subscriptions: Map<string, SubscriptionRecord>
  queue: Map<number, QueueEntry>
  inboundQos2: Set<number>
}

export class MemoryStore implements Store {
  readonly kind = 'memory'
  readonly durable = false
  readonly #sessions = new Map<string, SessionData>()
  readonly #retained = new Map<string, Message>()
  readonly #wills = new Map<string, WillRecord>()

  async open(): Promise<StoreSnapshot> {
    return {
      sessions: [...this.#sessions.values()].map((d) => ({
        session: d.session,
        subscriptions: [...d.subscriptions.values()],
        inboundQos2: [...d.inboundQos2],
      })),
      retained: [...this.#retained.values()],
      wills: [...this.#wills].map(([clientId, will]) => ({ clientId, will })),
    }
  }

  async close(): Promise<void> {}

  saveSession(session: SessionRecord): void {
    const data = this.#sessions.get(session.clientId)
    if (data) {
      data.session = session
      return
    }
    this.#sessions.set(session.clientId, {
      session,
      subscriptions: new Map(),
      queue: new Map(),
      inboundQos2: new Set(),
    })
  }

  deleteSession(clientId: string): void {
    this.#sessions.delete(clientId)
    this.#wills.delete(clientId)
  }

  saveSubscription(clientId: string, subscription: SubscriptionRecord): void {
    this.#sessions.get(clientId)?.subscriptions.set(subscription.filter, subscription)
  }

  deleteSubscription(clientId: string, filter: string): void {
    this.#sessions.get(clientId)?.subscriptions.delete(filter)
  }

  pushMessage(clientId: string, entry: QueueEntry): void {
    this.#sessions.get(clientId)?.queue.set(entry.seq, entry)
  }

  updateMessage(clientId: string, seq: number, packetId: number, state: OutboundState): void {
    const queue = this.#sessions.get(clientId)?.queue
    const entry = queue?.get(seq)
    if (queue && entry) queue.set(seq, { ...entry, packetId, state })
  }

  deleteMessage(clientId: string, seq: number): void {
    this.#sessions.get(clientId)?.queue.delete(seq)
  }

  dropMessage(clientId: string, seq: number, onDropped: (message: Message) => void): void {
    const queue = this.#sessions.get(clientId)?.queue
    const entry = queue?.get(seq)
    if (!queue || !entry) return
    queue.delete(seq)
    queueMicrotask(() => onDropped(entry.message))
  }

  async loadMessages(clientId: string, afterSeq: number, limit: number): Promise<QueueEntry[]> {
    const queue = this.#sessions.get(clientId)?.queue
    if (!queue) return []
    // Map keeps insertion order, which is seq order: the core pushes in order.
    const out: QueueEntry[] = []
    for (const entry of queue.values()) {
      if (entry.seq <= afterSeq) continue
      out.push(entry)
      if (out.length >= limit) break
    }
    return out
  }

  addInboundQos2(clientId: string, packetId: number): void {
    this.#sessions.get(clientId)?.inboundQos2.add(packetId)
  }

  deleteInboundQos2(clientId: string, packetId: number): void {
    this.#sessions.get(clientId)?.inboundQos2.delete(packetId)
  }

  setRetained(topic: string, message: Message | undefined): void {
    if (message) this.#retained.set(topic, message)
    else this.#retained.delete(topic)
  }

  setWill(clientId: string, will: WillRecord | undefined): void {
    if (will) this.#wills.set(clientId, will)
    else this.#wills.delete(clientId)
  }

  afterCommit(fn: () => void): void {
    // Nothing to wait for; still asynchronous, like every other backend.
    queueMicrotask(fn)
  }
}
