/**
 * A session: what the broker keeps for one Client Identifier, connected or
 * not. It owns the outbound flow toward the client: the queue, the inflight
 * window and packet identifiers (MQTT 5.0 section 4.3 and 4.9).
 */
import type { QueueEntry, SubscriptionRecord } from '../store/store.js'
import type { Broker } from './broker.js'
import type { TimerHandle } from './clock.js'
import type { Connection } from './connection.js'
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
  /** False after a restart until the store's queue is read back. */
  queueLoaded = true
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

  /** Our inflight window toward the client. */
  get window(): number {
    const client = this.connection?.clientReceiveMaximum ?? 65_535
    return Math.min(client, this.#engine.limits.maxInflightMessages)
  }

  /**
   * Offer a message to this session. QoS 0 goes out at once or not at all;
   * QoS 1/2 go out if the window allows, else wait in the queue.
   */
  offer(message: Message, qos: Qos, retain: boolean, subIds?: readonly number[]): void {
    const engine = this.#engine
    // Strictly past: a Message Expiry Interval of 0 still reaches clients
    // connected at the moment it is published, and is never queued.
    if (message.expiresAt !== undefined && message.expiresAt < engine.clock.now()) {
      engine.dropped(this.clientId, message, 'expired')
      return
    }
    const conn = this.connection
    if (qos === 0) {
      // QoS 0 is not queued for an offline session.
      if (conn?.isOpen) {
        if (!engine.gate.authorizeDelivery(this.clientInfo, message)) return
        conn.sendPublish(message, 0, retain, subIds, 0, false)
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
    const idle = this.queue.length === 0 && this.#resend.length === 0
    if (conn?.isOpen && idle && this.inflight.size < this.window) {
      if (!engine.gate.authorizeDelivery(this.clientInfo, message)) return
      this.#transmit(out, conn, true)
      return
    }
    // Object.assign, not a spread with more fields: see `copyMessage` in types.ts.
    const kept = engine.compact(message)
    this.#enqueue(kept === message ? out : Object.assign({}, out, { message: kept }))
  }

  #enqueue(out: Outbound): void {
    const engine = this.#engine
    const limits = engine.limits
    const size = out.message.payload.length + out.message.topic.length
    // A connected client drains its queue: a larger cap absorbs bursts (#7).
    const cap = this.connection?.isOpen
      ? Math.max(limits.maxQueuedMessagesOnline, limits.maxQueuedMessages)
      : limits.maxQueuedMessages
    // Cap the queue: drop the oldest, and say so (C24).
    while (
      this.queue.length > 0 &&
      (this.queue.length >= cap || this.queuedBytes + size > limits.maxQueuedBytes)
    ) {
      const oldest = this.queue.shift() as Outbound
      this.queuedBytes -= oldest.message.payload.length + oldest.message.topic.length
      if (this.stored) engine.store.deleteMessage(this.clientId, oldest.seq)
      engine.dropped(this.clientId, oldest.message, 'queue-full')
    }
    if (size > limits.maxQueuedBytes) {
      engine.dropped(this.clientId, out.message, 'queue-full')
      return
    }
    this.queue.push(out)
    this.queuedBytes += size
    if (this.stored) engine.store.pushMessage(this.clientId, toEntry(out))
  }

  /**
   * The client went away: what it queued beyond the offline cap goes now,
   * oldest first, each audited (C24), not at the next message.
   */
  trimToOfflineCap(): void {
    const engine = this.#engine
    while (this.queue.length > engine.limits.maxQueuedMessages) {
      const oldest = this.queue.shift() as Outbound
      this.queuedBytes -= oldest.message.payload.length + oldest.message.topic.length
      if (this.stored) engine.store.deleteMessage(this.clientId, oldest.seq)
      engine.dropped(this.clientId, oldest.message, 'queue-full')
    }
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
      this.queuedBytes -= out.message.payload.length + out.message.topic.length
      const expired = out.message.expiresAt !== undefined && out.message.expiresAt <= now
      // Checked again at delivery: a policy change reaches queued messages.
      if (expired || !engine.gate.authorizeDelivery(this.clientInfo, out.message)) {
        if (this.stored) engine.store.deleteMessage(this.clientId, out.seq)
        engine.dropped(this.clientId, out.message, expired ? 'expired' : 'denied')
        continue
      }
      this.#transmit(out, conn, false)
    }
  }

  // TODO(#5): a stored QoS 2 message is sent in the same turn its 'sent'
  // state is written; a crash before that commit resends it under a new
  // packet id, which a receiver that delivers on PUBLISH sees twice.
  #transmit(out: Outbound, conn: Connection, isNew: boolean): void {
    out.packetId = this.#allocatePacketId()
    out.state = 'sent'
    this.inflight.set(out.packetId, out)
    if (this.stored) {
      if (isNew) this.#engine.store.pushMessage(this.clientId, toEntry(out))
      else this.#engine.store.updateMessage(this.clientId, out.seq, out.packetId, 'sent')
    }
    const sent = conn.sendPublish(
      out.message,
      out.qos,
      out.retain,
      out.subscriptionIdentifiers,
      out.packetId,
      false,
    )
    // Too large for the client [MQTT-3.1.2-25]: discarded as if delivered.
    if (!sent) this.#finish(out)
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

  /** Put entries read back from the store in place (after a restart). */
  restore(entries: readonly QueueEntry[]): void {
    for (const entry of entries) {
      const out: Outbound = {
        seq: entry.seq,
        message: entry.message,
        qos: entry.message.qos,
        retain: entry.message.retain,
        subscriptionIdentifiers: entry.subscriptionIdentifiers,
        packetId: entry.packetId ?? 0,
        state: entry.state,
      }
      if (out.state === 'queued' || out.packetId === 0) {
        out.state = 'queued'
        this.queue.push(out)
        this.queuedBytes += out.message.payload.length + out.message.topic.length
      } else {
        this.inflight.set(out.packetId, out)
      }
      this.nextSeq = entry.seq + 1
    }
  }

  /**
   * Drop queued messages, and inflight ones not yet released, that
   * `allowed` now refuses; an inflight one is then not sent again on
   * resumption. Returns how many went.
   */
  dropDenied(allowed: (message: Message) => boolean): number {
    let dropped = 0
    const keep: Outbound[] = []
    for (const out of this.queue) {
      if (allowed(out.message)) {
        keep.push(out)
        continue
      }
      this.queuedBytes -= out.message.payload.length + out.message.topic.length
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
    this.inboundQos2.clear()
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
