/**
 * The `Store` seam: what must outlive a connection or a restart. The core
 * keeps live state in memory and writes through to the store; at start it
 * reads back a snapshot. Writes are fire-and-forget and grouped by the
 * backend; `afterCommit` tells when every earlier write is durable, and an
 * acknowledgement of a QoS 1/2 message waits for it.
 *
 * Only sessions that outlive their connection (Session Expiry > 0, or Clean
 * Session 0 in 3.1.1) are written; clean sessions never touch the store.
 */
import type { Identity, Message, ProtocolVersion, Qos } from '../broker/types.js'

/** Subscription options as stored (MQTT 5 section 3.8.3.1). */
export interface SubscriptionRecord {
  /** The topic filter as sent, including any `$share/{group}/` prefix. */
  readonly filter: string
  readonly qos: Qos
  readonly noLocal: boolean
  readonly retainAsPublished: boolean
  readonly retainHandling: 0 | 1 | 2
  readonly subscriptionIdentifier?: number | undefined
}

export interface SessionRecord {
  readonly clientId: string
  readonly protocolVersion: ProtocolVersion
  readonly identity?: Identity | undefined
  readonly sessionExpirySeconds: number
  /** Epoch ms when the connection ended; absent while connected. */
  readonly disconnectedAt?: number | undefined
}

/** Where an outbound message stands in its QoS flow. */
export type OutboundState = 'queued' | 'sent' | 'released'

/** One outbound message of a session: queued, or inflight toward the client. */
export interface QueueEntry {
  /** Monotonic per session; orders the queue. */
  readonly seq: number
  readonly message: Message
  /** Present once a packet identifier is assigned. */
  readonly packetId?: number | undefined
  readonly state: OutboundState
  /** Subscription identifiers to send with it (MQTT 5). */
  readonly subscriptionIdentifiers?: readonly number[] | undefined
}

export interface WillRecord {
  readonly message: Message
  /** Epoch ms when it is due. */
  readonly dueAt: number
}

/** What a store holds when the broker starts. */
export interface StoreSnapshot {
  readonly sessions: ReadonlyArray<{
    readonly session: SessionRecord
    readonly subscriptions: readonly SubscriptionRecord[]
    /** Packet ids of inbound QoS 2 messages received but not yet released. */
    readonly inboundQos2: readonly number[]
  }>
  readonly retained: readonly Message[]
  readonly wills: ReadonlyArray<{ readonly clientId: string; readonly will: WillRecord }>
}

/** One group commit as a store reports it to an observer (metrics). */
export interface CommitObservation {
  /** Wall time of the commit (key wrapping and the transaction), in seconds. */
  readonly seconds: number
  /** Writes in the batch. */
  readonly writes: number
}

export interface Store {
  /** Backend name for logs: `memory`, `sqlite`, ... */
  readonly kind: string
  /** False for a store that keeps nothing past the process: no commit to wait for. */
  readonly durable: boolean
  open(): Promise<StoreSnapshot>
  close(): Promise<void>

  saveSession(session: SessionRecord): void
  /** Forget the session with its subscriptions, queue, inbound state and will. */
  deleteSession(clientId: string): void

  saveSubscription(clientId: string, subscription: SubscriptionRecord): void
  deleteSubscription(clientId: string, filter: string): void

  pushMessage(clientId: string, entry: QueueEntry): void
  updateMessage(clientId: string, seq: number, packetId: number, state: OutboundState): void
  deleteMessage(clientId: string, seq: number): void
  /**
   * Delete an entry and, once that is committed, hand its message to
   * `onDropped` (for the audit event of a drop); not called when the entry
   * was already gone.
   */
  dropMessage(clientId: string, seq: number, onDropped: (message: Message) => void): void
  /** Entries in `seq` order, after `afterSeq`, at most `limit`. */
  loadMessages(clientId: string, afterSeq: number, limit: number): Promise<QueueEntry[]>

  addInboundQos2(clientId: string, packetId: number): void
  deleteInboundQos2(clientId: string, packetId: number): void

  /** Set (or, with `undefined`, clear) the retained message of a topic. */
  setRetained(topic: string, message: Message | undefined): void
  setWill(clientId: string, will: WillRecord | undefined): void

  /** Call `fn` once every write issued before this call is durable. */
  afterCommit(fn: () => void): void

  /**
   * Optional: call `observer` after each committed batch (the store commit
   * latency metric). Stores without commits of their own leave it out.
   */
  observeCommits?(observer: (commit: CommitObservation) => void): void
}
