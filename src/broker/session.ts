/**
 * A session: what the broker keeps for one Client Identifier, connected or
 * not. It owns the outbound flow toward the client: the queue, the inflight
 * window and packet identifiers (MQTT 5.0 section 4.3 and 4.9).
 *
 * With a durable store, the queue of a stored session that has no open
 * connection lives in the store only (issue #5): the session keeps each
 * entry's seq and size (`StoredQueue`), and reads entries back a page at a
 * time once the client is back. Inflight messages stay in memory (at most
 * the window). A memory store keeps the queue here, as it always did.
 */
import type { QueueEntry, SubscriptionRecord } from '../store/store.js'
import type { Broker } from './broker.js'
import type { TimerHandle } from './clock.js'
import type { Connection } from './connection.js'
import { QUEUE_PAGE_MESSAGES, StoredQueue } from './stored-queue.js'
import type { ClientInfo, Identity, Message, ProtocolVersion, Qos } from './types.js'

/** One message on its way to this session's client. */
export interface Outbound {
  readonly seq: number
  readonly message: Message
  readonly qos: Qos
  /** The RETAIN flag to send. */
  readonly retain: boolean
  readonly subscriptionIdentifiers?: readonly number[] | undefined
  packetId: number
  state: 'queued' | 'sent' | 'released'
}

/** A subscription held by the session, as the client made it. */
export interface SessionSubscription {
  readonly record: SubscriptionRecord
  /** Filter without the share prefix. */
  readonly filter: string
  readonly shareGroup?: string | undefined
  readonly grantedQos: Qos
}

/** PUBLISHes for one connection waiting behind a store commit. */
interface HeldSends {
  readonly conn: Connection
  readonly items: Outbound[]
}

/** Session Expiry Interval meaning "never expires" [MQTT-3.1.2-23 note]. */
export const SESSION_EXPIRY_NEVER_SECONDS = 0xffffffff

export class Session {
  readonly clientId: string
  protocolVersion: ProtocolVersion
  identity: Identity | undefined
  sessionExpirySeconds = 0
  connection: Connection | undefined
  /** Client info of the last connection, for gate checks while offline. */
  clientInfo: ClientInfo
  readonly subscriptions = new Map<string, SessionSubscription>()
  readonly inflight = new Map<number, Outbound>()
  /** Queued entries held in memory, oldest first; all older than `#stored`. */
  readonly queue: Outbound[] = []
  queuedBytes = 0
  /** Packet ids of inbound QoS 2 messages received and not yet released. */
  readonly inboundQos2 = new Set<number>()
  expiryTimer: TimerHandle | undefined
  /**
   * Unacknowledged messages still to resend on this connection: at resumption
   * only as many go out as the client's Receive Maximum allows [MQTT-3.3.4-9].
   */
  readonly #resend: Outbound[] = []
  /** Whether this session's rows are in the store. */
  stored = false
  /** Queued entries held in the durable store only, newer than `queue`. */
  readonly #stored = new StoredQueue()
  /** The running store reader (paging in, purging), if any. */
  #reader: object | undefined
  /** Bumped by `clear()`: a store read begun before it is stale. */
  #epoch = 0
  #purgeWanted = false
  /**
   * PUBLISHes waiting for the store to commit the state that lets a restart
   * resend them as duplicates (see `#transmit`), and anything sent after
   * them on the same connection, in order.
   */
  #held: HeldSends | undefined
  #nextPacketId = 1
  #nextSeq = 1
  readonly #engine: Broker

  constructor(engine: Broker, clientId: string, clientInfo: ClientInfo) {
    this.#engine = engine
    this.clientId = clientId
    this.clientInfo = clientInfo
    this.protocolVersion = clientInfo.protocolVersion
    this.identity = clientInfo.identity
  }

  /** Whether the session outlives its network connection. */
  get persistent(): boolean {
    return this.sessionExpirySeconds > 0
  }

  /** Continue the sequence after entries read back from the store. */
  set nextSeq(seq: number) {
    this.#nextSeq = Math.max(this.#nextSeq, seq)
  }

  /** Queued entries held in the store only (not in memory). */
  get storedQueueLength(): number {
    return this.#stored.length
  }

  /** Our inflight window toward the client. */
  get window(): number {
    const client = this.connection?.clientReceiveMaximum ?? 65_535
    return Math.min(client, this.#engine.limits.maxInflightMessages)
  }

  /**
   * Offer a message to this session. QoS 0 goes out at once or not at all;
   * QoS 1/2 go out if the window allows, else wait in the queue.
   */
  offer(
    message: Message,
    qos: Qos,
    retain: boolean,
    subIds?: readonly number[],
    now?: number,
  ): void {
    const engine = this.#engine
    // Strictly past: a Message Expiry Interval of 0 still reaches clients
    // connected at the moment it is published, and is never queued.
    if (message.expiresAt !== undefined && message.expiresAt < (now ?? engine.clock.now())) {
      engine.dropped(this.clientId, message, 'expired')
      return
    }
    const conn = this.connection
    if (qos === 0) {
      // QoS 0 is not queued for an offline session.
      if (conn?.isOpen) {
        if (!engine.gate.authorizeDelivery(this.clientInfo, message, now)) return
        if (this.#held) this.#hold(conn, zeroOutbound(message, retain, subIds))
        else conn.sendPublish(message, 0, retain, subIds, 0, false)
      }
      return
    }
    const out: Outbound = {
      seq: this.#nextSeq++,
      message,
      qos,
      retain,
      subscriptionIdentifiers: subIds,
      packetId: 0,
      state: 'queued',
    }
    const idle = this.queue.length === 0 && this.#resend.length === 0 && this.#stored.length === 0
    if (conn?.isOpen && idle && this.inflight.size < this.window) {
      if (!engine.gate.authorizeDelivery(this.clientInfo, message, now)) return
      this.#transmit(out, conn, true)
      return
    }
    this.#enqueue(out)
  }

  /** Whether a new queued entry goes to the store only. */
  #spills(): boolean {
    if (this.#stored.length > 0) return true
    return this.stored && this.#engine.store.durable && !this.connection?.isOpen
  }

  #enqueue(out: Outbound): void {
    const engine = this.#engine
    const limits = engine.limits
    const size = sizeOf(out)
    // A connected client drains its queue: a larger cap absorbs bursts (#7).
    const cap = this.connection?.isOpen
      ? Math.max(limits.maxQueuedMessagesOnline, limits.maxQueuedMessages)
      : limits.maxQueuedMessages
    // Cap the queue, memory and store together: drop the oldest, and say so (C24).
    while (
      this.queue.length + this.#stored.length > 0 &&
      (this.queue.length + this.#stored.length >= cap ||
        this.queuedBytes + this.#stored.bytes + size > limits.maxQueuedBytes)
    ) {
      this.#dropOldest()
    }
    if (size > limits.maxQueuedBytes) {
      engine.dropped(this.clientId, out.message, 'queue-full')
      return
    }
    if (this.#spills()) {
      // The store takes its copy now (SQLite seals it at once): the core keeps none.
      engine.store.pushMessage(this.clientId, toEntry(out))
      this.#stored.push(out.seq, size)
      this.#readStore()
      return
    }
    // Object.assign, not a spread with more fields: see `copyMessage` in types.ts.
    const compact = engine.compact(out.message)
    const kept = compact === out.message ? out : Object.assign({}, out, { message: compact })
    this.queue.push(kept)
    this.queuedBytes += size
    if (this.stored) engine.store.pushMessage(this.clientId, toEntry(kept))
  }

  #dropOldest(): void {
    const engine = this.#engine
    const oldest = this.queue.shift()
    if (oldest) {
      this.queuedBytes -= sizeOf(oldest)
      if (this.stored) engine.store.deleteMessage(this.clientId, oldest.seq)
      engine.dropped(this.clientId, oldest.message, 'queue-full')
      return
    }
    const seq = this.#stored.shift()
    if (seq === undefined) return
    // The topic for the audit event is in the sealed row: the store hands
    // the message back once the delete is committed.
    engine.store.dropMessage(this.clientId, seq, (message) => {
      engine.dropped(this.clientId, message, 'queue-full')
    })
  }

  /**
   * The client went away: what it queued beyond the offline cap goes now,
   * oldest first, each audited (C24), not at the next message.
   */
  trimToOfflineCap(): void {
    const cap = this.#engine.limits.maxQueuedMessages
    while (this.queue.length + this.#stored.length > cap) this.#dropOldest()
  }

  /** Send what the window allows from the queue. */
  pump(): void {
    const conn = this.connection
    if (!conn?.isOpen) return
    const engine = this.#engine
    const now = engine.clock.now()
    // Resends first, in order, within the window; the queue waits behind them.
    while (
      this.#resend.length > 0 &&
      this.inflight.size - this.#resend.length < this.window &&
      conn.isOpen
    ) {
      const out = this.#resend.shift() as Outbound
      if (this.inflight.get(out.packetId) === out) this.#resendOne(out, conn)
    }
    while (this.queue.length > 0 && this.inflight.size < this.window && conn.isOpen) {
      const out = this.queue.shift() as Outbound
      this.queuedBytes -= sizeOf(out)
      const expired = out.message.expiresAt !== undefined && out.message.expiresAt <= now
      // Checked again at delivery: a policy change reaches queued messages.
      if (expired || !engine.gate.authorizeDelivery(this.clientInfo, out.message)) {
        if (this.stored) engine.store.deleteMessage(this.clientId, out.seq)
        engine.dropped(this.clientId, out.message, expired ? 'expired' : 'denied')
        continue
      }
      this.#transmit(out, conn, false)
    }
    this.#readStore()
  }

  /**
   * Send a QoS 1/2 message under a new packet id. For a stored QoS 2
   * message on a durable store the PUBLISH waits until the `sent` state with
   * its packet id is committed: a crash before that would make the restarted
   * broker send it again as a new message, under a new packet id, which a
   * receiver that delivers on PUBLISH would see twice [MQTT-4.3.3-3]. After
   * the commit a restart resends it with DUP and the same packet id
   * [MQTT-4.4.0-1]. Whatever follows on the connection waits behind it, so
   * order is kept [MQTT-4.6.0-6].
   */
  #transmit(out: Outbound, conn: Connection, isNew: boolean): void {
    const store = this.#engine.store
    out.packetId = this.#allocatePacketId()
    out.state = 'sent'
    this.inflight.set(out.packetId, out)
    if (this.stored) {
      if (isNew) store.pushMessage(this.clientId, toEntry(out))
      else store.updateMessage(this.clientId, out.seq, out.packetId, 'sent')
    }
    if (this.#held || (out.qos === 2 && this.stored && store.durable)) {
      this.#hold(conn, out)
      return
    }
    this.#send(out, conn)
  }

  #send(out: Outbound, conn: Connection): void {
    const sent = conn.sendPublish(
      out.message,
      out.qos,
      out.retain,
      out.subscriptionIdentifiers,
      out.packetId,
      false,
    )
    // Too large for the client [MQTT-3.1.2-25]: discarded as if delivered.
    if (!sent && out.qos > 0) this.#finish(out)
  }

  /** Queue a PUBLISH behind the next store commit (see `#transmit`). */
  #hold(conn: Connection, out: Outbound): void {
    const held = this.#held
    if (held) {
      held.items.push(out)
      return
    }
    const next = { conn, items: [out] }
    this.#held = next
    this.#engine.store.afterCommit(() => this.#release(next))
  }

  #release(held: HeldSends): void {
    // A new connection (or a clean start) replaced it: resumption resends
    // what is inflight, with DUP.
    if (this.#held !== held) return
    this.#held = undefined
    const conn = held.conn
    if (this.connection !== conn || !conn.isOpen) return
    for (const out of held.items) {
      if (out.qos === 0 || this.inflight.get(out.packetId) === out) this.#send(out, conn)
    }
  }

  #allocatePacketId(): number {
    // [MQTT-2.2.1-3] a packet id is not reused while its flow is open
    for (let i = 0; i < 65_535; i++) {
      const id = this.#nextPacketId
      this.#nextPacketId = id === 65_535 ? 1 : id + 1
      if (!this.inflight.has(id)) return id
    }
    throw new RangeError('no free packet identifier')
  }

  #finish(out: Outbound): void {
    this.inflight.delete(out.packetId)
    if (this.stored) this.#engine.store.deleteMessage(this.clientId, out.seq)
  }

  /** PUBACK, or PUBREC with a failure code, or PUBCOMP: the flow is over. */
  acknowledge(packetId: number, expect: 1 | 2): boolean {
    const out = this.inflight.get(packetId)
    if (!out || out.qos !== expect) return false
    this.#finish(out)
    this.pump()
    return true
  }

  /** PUBREC with success: move to released; returns false if unknown. */
  received(packetId: number): boolean {
    const out = this.inflight.get(packetId)
    if (out?.qos !== 2) return false
    out.state = 'released'
    if (this.stored) this.#engine.store.updateMessage(this.clientId, out.seq, packetId, 'released')
    return true
  }

  /** PUBCOMP: the QoS 2 flow ends. */
  completed(packetId: number): boolean {
    const out = this.inflight.get(packetId)
    if (out?.state !== 'released') return false
    this.#finish(out)
    this.pump()
    return true
  }

  /**
   * On resumption: resend unacknowledged PUBLISH with DUP and PUBREL, in
   * order [MQTT-4.4.0-1], then what the queue holds.
   */
  resume(_conn: Connection): void {
    // All wait in order; pump() sends what the new Receive Maximum allows.
    this.#held = undefined
    this.#resend.length = 0
    for (const out of this.inflight.values()) this.#resend.push(out)
    this.pump()
  }

  #resendOne(out: Outbound, conn: Connection): void {
    if (out.state === 'released') {
      conn.sendPubrel(out.packetId)
      return
    }
    const sent = conn.sendPublish(
      out.message,
      out.qos,
      out.retain,
      out.subscriptionIdentifiers,
      out.packetId,
      true,
    )
    // Too large for this connection's Maximum Packet Size: discarded as if
    // delivered [MQTT-3.1.2-25], so it does not hold a window slot forever.
    if (!sent && conn.isOpen) this.#finish(out)
  }

  /**
   * After a restart: read the stored entries back a page at a time.
   * Inflight ones are kept in memory; queued ones stay in a durable store
   * (only their seq and size are kept) or come into memory from a memory one.
   */
  async restore(): Promise<void> {
    const store = this.#engine.store
    let after = 0
    for (;;) {
      const page = await store.loadMessages(this.clientId, after, QUEUE_PAGE_MESSAGES)
      for (const entry of page) this.#restoreEntry(entry, store.durable)
      const last = page.at(-1)
      if (!last || page.length < QUEUE_PAGE_MESSAGES) return
      after = last.seq
    }
  }

  #restoreEntry(entry: QueueEntry, durable: boolean): void {
    const out = outboundOf(entry)
    this.nextSeq = entry.seq + 1
    if (out.state !== 'queued' && out.packetId !== 0) {
      this.inflight.set(out.packetId, out)
      return
    }
    out.state = 'queued'
    out.packetId = 0
    if (durable) {
      this.#stored.push(out.seq, sizeOf(out))
      return
    }
    this.queue.push(out)
    this.queuedBytes += sizeOf(out)
  }

  /**
   * The client left a stored session: a durable store takes over the
   * queue, and memory keeps only the inflight window (issue #5).
   */
  releaseQueue(): void {
    if (!this.stored || !this.#engine.store.durable || this.queue.length === 0) return
    // Every entry is in the store already: written when it was queued.
    this.#stored.unshift(this.queue.map((out) => ({ seq: out.seq, bytes: sizeOf(out) })))
    this.queue.length = 0
    this.queuedBytes = 0
  }

  // --- reading the store back -----------------------------------------

  /** Start the store reader if there is work for it; one runs at a time. */
  #readStore(): void {
    if (this.#reader || !(this.#purgeWanted || this.#wantsPage())) return
    const reader = {}
    this.#reader = reader
    const done = (): void => {
      if (this.#reader === reader) this.#reader = undefined
    }
    this.#runReader(this.#epoch).then(done, (err: unknown) => {
      done()
      const name = err instanceof Error ? err.name : 'unknown'
      this.#engine.log.error({ event: 'session.store-read-failed', err: name }, 'store read failed')
    })
  }

  /** Connected, entries in the store, and room for a page in memory. */
  #wantsPage(): boolean {
    if (this.#stored.length === 0 || !this.connection?.isOpen) return false
    return this.queue.length <= QUEUE_PAGE_MESSAGES / 2
  }

  async #runReader(epoch: number): Promise<void> {
    while (this.#epoch === epoch) {
      if (this.#purgeWanted) {
        this.#purgeWanted = false
        await this.#purgeStored(epoch)
        continue
      }
      if (!this.#wantsPage()) return
      await this.#readPage(epoch)
      if (this.#epoch === epoch) this.pump()
    }
  }

  /** Move the next page of stored entries into the memory queue, in order. */
  async #readPage(epoch: number): Promise<void> {
    const first = this.#stored.firstSeq
    if (first === undefined) return
    // Every entry up to here was written before the read: a short page
    // means those not returned are gone (expired, erased).
    const written = this.#nextSeq - 1
    const page = await this.#engine.store.loadMessages(
      this.clientId,
      first - 1,
      QUEUE_PAGE_MESSAGES,
    )
    // Left again while reading: the entries stay in the store.
    if (this.#epoch !== epoch || !this.connection?.isOpen) return
    let last = first - 1
    for (const entry of page) {
      last = entry.seq
      // Not ours to take: inflight (held in memory) or dropped meanwhile.
      if (!this.#stored.delete(entry.seq)) continue
      const out = outboundOf(entry)
      out.state = 'queued'
      out.packetId = 0
      this.queue.push(out)
      this.queuedBytes += sizeOf(out)
    }
    this.#stored.dropThrough(page.length < QUEUE_PAGE_MESSAGES ? Math.max(last, written) : last)
  }

  /** Ask the gate again about each stored entry; refused ones go, audited. */
  async #purgeStored(epoch: number): Promise<void> {
    const engine = this.#engine
    let after = (this.#stored.firstSeq ?? 1) - 1
    while (this.#stored.length > 0) {
      const page = await engine.store.loadMessages(this.clientId, after, QUEUE_PAGE_MESSAGES)
      if (this.#epoch !== epoch) return
      for (const entry of page) {
        after = entry.seq
        if (!this.#stored.has(entry.seq)) continue
        if (engine.gate.authorizeDelivery(this.clientInfo, entry.message)) continue
        this.#stored.delete(entry.seq)
        engine.store.deleteMessage(this.clientId, entry.seq)
        engine.dropped(this.clientId, entry.message, 'denied')
      }
      if (page.length < QUEUE_PAGE_MESSAGES) return
    }
  }

  /**
   * Drop queued messages, and inflight ones not yet released, that
   * `allowed` now refuses; an inflight one is then not sent again on
   * resumption. Returns how many went from memory. Entries held in the
   * store only are checked by a background read while the client is away
   * (each refused one audited as it goes), else at delivery in `pump`.
   */
  dropDenied(allowed: (message: Message) => boolean): number {
    let dropped = 0
    const keep: Outbound[] = []
    for (const out of this.queue) {
      if (allowed(out.message)) {
        keep.push(out)
        continue
      }
      this.queuedBytes -= sizeOf(out)
      this.#forget(out, 'denied')
      dropped++
    }
    this.queue.length = 0
    this.queue.push(...keep)
    for (const out of [...this.inflight.values()]) {
      if (out.state !== 'sent' || allowed(out.message)) continue
      this.inflight.delete(out.packetId)
      this.#forget(out, 'denied')
      dropped++
    }
    if (this.#stored.length > 0 && !this.connection?.isOpen) {
      this.#purgeWanted = true
      this.#readStore()
    }
    return dropped
  }

  #forget(out: Outbound, reason: string): void {
    if (this.stored) this.#engine.store.deleteMessage(this.clientId, out.seq)
    this.#engine.dropped(this.clientId, out.message, reason)
  }

  /** Forget outbound state (Clean Start, or the session ended). */
  clear(): void {
    this.inflight.clear()
    this.#resend.length = 0
    this.queue.length = 0
    this.queuedBytes = 0
    this.#stored.clear()
    this.#epoch++
    this.#reader = undefined
    this.#purgeWanted = false
    this.#held = undefined
    this.inboundQos2.clear()
  }
}

/** Bytes of a queued entry as the queue caps count them. */
function sizeOf(out: Outbound): number {
  return out.message.payload.length + out.message.topic.length
}

function outboundOf(entry: QueueEntry): Outbound {
  return {
    seq: entry.seq,
    message: entry.message,
    qos: entry.message.qos,
    retain: entry.message.retain,
    subscriptionIdentifiers: entry.subscriptionIdentifiers,
    packetId: entry.packetId ?? 0,
    state: entry.state,
  }
}

/** A QoS 0 PUBLISH waiting behind a held one. */
function zeroOutbound(
  message: Message,
  retain: boolean,
  subIds: readonly number[] | undefined,
): Outbound {
  return {
    seq: 0,
    message,
    qos: 0,
    retain,
    subscriptionIdentifiers: subIds,
    packetId: 0,
    state: 'sent',
  }
}

function toEntry(out: Outbound): QueueEntry {
  // The stored message carries the QoS and RETAIN flag of this delivery.
  return {
    seq: out.seq,
    message: { ...out.message, qos: out.qos, retain: out.retain },
    packetId: out.packetId === 0 ? undefined : out.packetId,
    state: out.state,
    subscriptionIdentifiers: out.subscriptionIdentifiers,
  }
}
