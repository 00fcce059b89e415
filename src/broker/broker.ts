/**
 * The broker core: sessions, the subscription tree, retained messages, wills
 * and routing. It is handed its seams (gate, store, audit sink, clock,
 * logger) and never imports TLS, YAML, HTTP or a concrete store.
 */
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { Actor, AuditEvent } from '../audit/events.js'
import type { AuditSink } from '../audit/sink.js'
import {
  type EncodedPublish,
  encodeBarePublish,
  encodePublishV5,
  withPacketId,
} from '../protocol/codec.js'
import { ReasonCode } from '../protocol/reason-codes.js'
import { MemoryStore } from '../store/memory-store.js'
import type { Store, SubscriptionRecord } from '../store/store.js'
import type { BrokerHandle, BrokerLimits, BrokerOptions, ConnectionContext } from './broker-api.js'
import { type Clock, systemClock, type TimerHandle } from './clock.js'
import { type CloseCause, Connection } from './connection.js'
import { allowAllGate, type Gate } from './gate.js'
import { DEFAULT_LIMITS } from './limits.js'
import { type Logger, silentLogger } from './logger.js'
import { RetainedMessages } from './retained.js'
import { SESSION_EXPIRY_NEVER_SECONDS, Session } from './session.js'
import { type RouteEntry, type ShareGroup, SubscriptionTree } from './subscription-tree.js'
import {
  type ClientInfo,
  copyMessage,
  type Identity,
  type Message,
  type ProtocolVersion,
  type Qos,
} from './types.js'

/** An audit sink that drops everything, for a broker built without one. */
const nullAudit: AuditSink = { emit: () => {}, close: async () => {} }

interface PendingWill {
  readonly message: Message
  readonly client: ClientInfo
  readonly timer: TimerHandle
}

export class Broker implements BrokerHandle {
  readonly nodeId: string
  readonly limits: Readonly<BrokerLimits>
  readonly gate: Gate
  readonly store: Store
  readonly audit: AuditSink
  readonly clock: Clock
  readonly log: Logger
  /** False while the audit trail cannot record: refuse new work. */
  readonly acceptingWork: () => boolean
  readonly auditTraffic: boolean
  readonly sessions = new Map<string, Session>()
  readonly tree = new SubscriptionTree()
  readonly retained = new RetainedMessages()
  readonly connections = new Set<Connection>()
  readonly #pendingWills = new Map<string, PendingWill>()
  readonly #connectQueues = new Map<string, Promise<void>>()
  #closing = false
  // One-entry encode cache: a fan-out encodes each message once per shape.
  #encodedFor: Message | undefined
  readonly #encoded: Array<EncodedPublish | undefined> = new Array(16)
  // One-entry cache for `compact`: a fan-out to offline sessions copies once.
  #compactedFrom: Message | undefined
  #compacted: Message | undefined

  constructor(options: BrokerOptions = {}) {
    this.nodeId = options.nodeId ?? 'phimq-1'
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...options.limits })
    this.gate = options.gate ?? allowAllGate
    this.store = options.store ?? new MemoryStore()
    this.audit = options.audit ?? nullAudit
    this.clock = options.clock ?? systemClock
    this.log = options.logger ?? silentLogger
    this.acceptingWork = options.acceptingWork ?? (() => true)
    this.auditTraffic = options.auditTraffic ?? false
  }

  /** Open the store and restore sessions, retained messages and wills. */
  async start(): Promise<void> {
    const snapshot = await this.store.open()
    const now = this.clock.now()
    for (const message of snapshot.retained) {
      if (message.expiresAt !== undefined && message.expiresAt <= now) {
        this.store.setRetained(message.topic, undefined)
        continue
      }
      this.retained.set(message.topic, message)
    }
    for (const { session: record, subscriptions, inboundQos2 } of snapshot.sessions) {
      const info: ClientInfo = {
        clientId: record.clientId,
        identity: record.identity,
        listener: 'restored',
        remoteAddress: '',
        protocolVersion: record.protocolVersion,
      }
      const session = new Session(this, record.clientId, info)
      session.sessionExpirySeconds = record.sessionExpirySeconds
      session.stored = true
      for (const id of inboundQos2) session.inboundQos2.add(id)
      for (const sub of subscriptions) this.#restoreSubscription(session, sub)
      // Paged: a durable store keeps the queue; memory gets inflight state.
      await session.restore()
      this.sessions.set(record.clientId, session)
      // A session connected at the crash counts as disconnected now.
      this.#scheduleExpiry(session, record.disconnectedAt ?? now)
    }
    for (const { clientId, will } of snapshot.wills) {
      const client = this.sessions.get(clientId)?.clientInfo ?? {
        clientId,
        listener: 'restored',
        remoteAddress: '',
        protocolVersion: 5 as const,
      }
      this.#scheduleWill(clientId, will.message, client, Math.max(0, will.dueAt - now))
    }
    this.log.info(
      { event: 'broker.started', store: this.store.kind, sessions: this.sessions.size },
      'broker started',
    )
  }

  #restoreSubscription(session: Session, record: SubscriptionRecord): void {
    const share = record.filter.startsWith('$share/') ? record.filter.split('/') : undefined
    const shareGroup = share ? share[1] : undefined
    const filter = share ? share.slice(2).join('/') : record.filter
    session.subscriptions.set(record.filter, { record, filter, shareGroup, grantedQos: record.qos })
    this.tree.add(filter, { clientId: session.clientId, record, qos: record.qos, shareGroup })
  }

  /** Take over an accepted stream. */
  handleConnection(stream: Duplex, context: ConnectionContext): void {
    if (this.#closing) {
      stream.destroy()
      return
    }
    const conn = new Connection(this, stream, context)
    this.connections.add(conn)
  }

  /**
   * Run CONNECT handling for one Client Identifier at a time, so two
   * connections with the same id cannot interleave their session set-up.
   */
  serializeConnect(clientId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.#connectQueues.get(clientId) ?? Promise.resolve()
    const next = previous.then(work, work)
    const tail = next.catch(() => {})
    this.#connectQueues.set(clientId, tail)
    void tail.then(() => {
      if (this.#connectQueues.get(clientId) === tail) this.#connectQueues.delete(clientId)
    })
    return next
  }

  /** A fresh Client Identifier for a client that sent none. */
  assignClientId(): string {
    let id: string
    do id = `phimq-${randomBytes(9).toString('base64url')}`
    while (this.sessions.has(id))
    return id
  }

  /**
   * Attach a connection to its session after CONNECT was accepted: take over
   * a live one [MQTT-3.1.4-3], apply Clean Start [MQTT-3.1.2-4], cancel a
   * delayed will [MQTT-3.1.3-9]. Returns the session and Session Present.
   */
  attachSession(
    conn: Connection,
    cleanStart: boolean,
    sessionExpirySeconds: number,
  ): { session: Session; sessionPresent: boolean } {
    const clientId = conn.clientId
    const info = conn.clientInfo as ClientInfo
    let session = this.sessions.get(clientId)
    const live = session?.connection
    if (live && live !== conn) {
      this.emit({ type: 'session.taken-over', actor: live.actor })
      live.close({ cause: 'takeover', reasonCode: ReasonCode.SessionTakenOver })
      // Closing may have ended a session with expiry 0: look again.
      session = this.sessions.get(clientId)
    }
    const pending = this.#pendingWills.get(clientId)
    if (pending) {
      pending.timer.cancel()
      this.#pendingWills.delete(clientId)
      this.store.setWill(clientId, undefined)
      // Not sent, even with Clean Start: a new Network Connection for the
      // ClientID opened within the Will Delay cancels it [MQTT-3.1.2-8].
    }
    if (session && cleanStart) {
      this.#endSession(session, false)
      session = undefined
    }
    let sessionPresent = true
    if (!session) {
      session = new Session(this, clientId, info)
      this.sessions.set(clientId, session)
      sessionPresent = false
    }
    session.expiryTimer?.cancel()
    session.expiryTimer = undefined
    session.connection = conn
    session.clientInfo = info
    session.protocolVersion = conn.version
    session.identity = info.identity
    session.sessionExpirySeconds = sessionExpirySeconds
    conn.session = session
    // Rights may have changed while the session was away (issue #4).
    if (sessionPresent) this.#reevaluate(session, 'session.resumed')
    this.#persistSession(session)
    return { session, sessionPresent }
  }

  #persistSession(session: Session): void {
    if (!session.persistent) {
      if (session.stored) {
        this.store.deleteSession(session.clientId)
        session.stored = false
      }
      return
    }
    const first = !session.stored
    session.stored = true
    this.store.saveSession({
      clientId: session.clientId,
      protocolVersion: session.protocolVersion,
      identity: session.identity,
      sessionExpirySeconds: session.sessionExpirySeconds,
      disconnectedAt: session.connection ? undefined : this.clock.now(),
    })
    if (!first) return
    // Becoming persistent: write what the session already holds.
    for (const sub of session.subscriptions.values())
      this.store.saveSubscription(session.clientId, sub.record)
    for (const id of session.inboundQos2) this.store.addInboundQos2(session.clientId, id)
  }

  /** Called by a connection once, when it closes. */
  connectionClosed(conn: Connection, cause: CloseCause, wasOpen: boolean): void {
    this.connections.delete(conn)
    const session = conn.session
    if (!wasOpen || !session || session.connection !== conn) return
    session.connection = undefined
    this.emit({
      type: 'client.disconnected',
      actor: conn.actor,
      cause: cause.cause,
      reasonCode: cause.reasonCode,
    })
    this.log.info({ event: 'client.disconnected', cause: cause.cause }, 'client disconnected')
    const will = conn.will
    conn.will = undefined
    if (will && (cause.sendWill ?? true)) {
      const delaySeconds = Math.min(conn.willDelaySeconds, session.sessionExpirySeconds)
      if (delaySeconds > 0 && session.persistent) {
        this.#scheduleWill(session.clientId, will, session.clientInfo, delaySeconds * 1000)
      } else {
        this.#publishWill(session.clientId, will, session.clientInfo)
      }
    }
    if (!session.persistent) {
      this.#endSession(session, false)
      return
    }
    session.trimToOfflineCap()
    this.#persistSession(session)
    // A durable store holds the queue while the client is away (issue #5).
    session.releaseQueue()
    this.#scheduleExpiry(session, this.clock.now())
  }

  #scheduleExpiry(session: Session, disconnectedAt: number): void {
    if (session.sessionExpirySeconds === SESSION_EXPIRY_NEVER_SECONDS) return
    const due = disconnectedAt + session.sessionExpirySeconds * 1000
    session.expiryTimer = this.clock.schedule(Math.max(0, due - this.clock.now()), () => {
      session.expiryTimer = undefined
      if (session.connection || this.sessions.get(session.clientId) !== session) return
      this.#endSession(session, true)
    })
  }

  /** End a session: its will goes if pending, its subscriptions and state go. */
  #endSession(session: Session, expired: boolean): void {
    const pending = this.#pendingWills.get(session.clientId)
    if (pending) {
      pending.timer.cancel()
      this.#pendingWills.delete(session.clientId)
      this.#publishWill(session.clientId, pending.message, pending.client)
    }
    session.expiryTimer?.cancel()
    for (const sub of session.subscriptions.values()) {
      this.tree.remove(sub.filter, session.clientId, sub.shareGroup)
    }
    session.subscriptions.clear()
    session.clear()
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId)
    if (session.stored) {
      this.store.deleteSession(session.clientId)
      session.stored = false
    }
    if (expired) this.emit({ type: 'session.expired', clientId: session.clientId })
  }

  #scheduleWill(clientId: string, message: Message, client: ClientInfo, delayMs: number): void {
    const timer = this.clock.schedule(delayMs, () => {
      if (this.#pendingWills.get(clientId)?.timer !== timer) return
      this.#pendingWills.delete(clientId)
      this.store.setWill(clientId, undefined)
      this.#publishWill(clientId, message, client)
    })
    this.#pendingWills.set(clientId, { message, client, timer })
    this.store.setWill(clientId, { message, dueAt: this.clock.now() + delayMs })
  }

  /** Send a will, asking the gate again: rights may have changed since CONNECT. */
  #publishWill(clientId: string, stored: Message, client: ClientInfo): void {
    const now = this.clock.now()
    // The expiry a gate set at CONNECT does not count: a will's lifetime
    // starts when it is sent [MQTT-3.1.3-9 note].
    const { willExpirySeconds, expiresAt: _atConnect, ...rest } = stored
    const will: Message = rest
    if (willExpirySeconds !== undefined) will.expiresAt = now + willExpirySeconds * 1000
    const verdict = this.gate.authorizePublish(client, will)
    if (!verdict.allow) {
      this.emit({
        type: 'will.denied',
        clientId,
        topic: this.maskTopic(will.topic),
        rule: verdict.rule,
      })
      return
    }
    this.emit({ type: 'will.published', clientId, topic: this.maskTopic(verdict.message.topic) })
    this.publish(verdict.message, undefined)
  }

  /**
   * Route an accepted message: retained handling [MQTT-3.3.1-5..7], then
   * every matching subscription. Returns how many sessions it went to.
   * `now`: the clock as read once for this message, handed to every
   * delivery (a fan-out to many sessions reads it once, not per session).
   */
  publish(message: Message, actor: Actor | undefined, now?: number): number {
    if (message.retain) this.setRetained(message, actor)
    return this.route(message, now)
  }

  /**
   * Whether a retained message fits the retained limits, counting what it
   * replaces; memory for retained messages is bounded (issue #2 limits).
   */
  canRetain(message: Message): boolean {
    if (message.payload.length === 0) return true
    const existing = this.retained.get(message.topic)
    const count = this.retained.size + (existing ? 0 : 1)
    const bytes = this.retained.bytes - (existing?.payload.length ?? 0) + message.payload.length
    return count <= this.limits.maxRetainedMessages && bytes <= this.limits.maxRetainedBytes
  }

  /** Store, replace or (empty payload) clear a retained message. */
  setRetained(message: Message, actor: Actor | undefined): void {
    const topic = message.topic
    if (message.payload.length === 0) {
      // [MQTT-3.3.1-6] a zero-byte retained message clears, and is not stored
      if (!this.retained.get(topic)) return
      this.retained.set(topic, undefined)
      this.store.setRetained(topic, undefined)
      this.emit({ type: 'retained.cleared', actor, topic })
      return
    }
    // A copy: the decoded payload is a view into the socket's read buffer,
    // and a kept view would pin all of it (up to 64 KiB) for as long as the
    // message is retained.
    const kept: Message = { ...message, payload: Buffer.from(message.payload), retain: true }
    this.retained.set(topic, kept)
    this.store.setRetained(topic, kept)
    this.emit({ type: 'retained.set', actor, topic, bytes: message.payload.length })
  }

  /** Deliver to every matching subscription; overlapping ones merged per client. */
  route(message: Message, now?: number): number {
    const { subscribers, groups } = this.tree.match(message.topic)
    let count = 0
    if (subscribers.length === 1) {
      count += this.#deliver(subscribers[0] as RouteEntry, message, now)
    } else if (subscribers.length > 1) {
      count += this.#deliverOverlapping(subscribers, message, now)
    }
    for (const group of groups) count += this.#deliverShared(group, message, now)
    return count
  }

  #deliver(entry: RouteEntry, message: Message, now: number | undefined): number {
    const record = entry.record
    // [MQTT-3.8.3-3] No Local
    if (record.noLocal && message.origin === entry.clientId) return 0
    const session = this.sessions.get(entry.clientId)
    if (!session) return 0
    const qos = Math.min(message.qos, entry.qos) as Qos
    // [MQTT-3.3.1-12, MQTT-3.3.1-13] Retain As Published
    const retain = record.retainAsPublished && message.retain
    const subIds =
      record.subscriptionIdentifier === undefined ? undefined : [record.subscriptionIdentifier]
    session.offer(message, qos, retain, subIds, now)
    return 1
  }

  /**
   * One delivery per client at the highest QoS of its matching
   * subscriptions, with all their identifiers [MQTT-3.3.4-2, MQTT-3.3.4-3].
   */
  #deliverOverlapping(entries: RouteEntry[], message: Message, now: number | undefined): number {
    const merged = new Map<string, { qos: Qos; retain: boolean; subIds: number[] | undefined }>()
    for (const entry of entries) {
      const record = entry.record
      if (record.noLocal && message.origin === entry.clientId) continue
      const qos = Math.min(message.qos, entry.qos) as Qos
      const retain = record.retainAsPublished && message.retain
      const id = record.subscriptionIdentifier
      const seen = merged.get(entry.clientId)
      if (!seen) {
        merged.set(entry.clientId, { qos, retain, subIds: id === undefined ? undefined : [id] })
        continue
      }
      if (qos > seen.qos) seen.qos = qos
      seen.retain ||= retain
      if (id !== undefined) {
        if (seen.subIds) seen.subIds.push(id)
        else seen.subIds = [id]
      }
    }
    let count = 0
    for (const [clientId, d] of merged) {
      const session = this.sessions.get(clientId)
      if (!session) continue
      session.offer(message, d.qos, d.retain, d.subIds, now)
      count++
    }
    return count
  }

  /**
   * A shared subscription gets each message once, round-robin, preferring
   * members that are connected and have window to spare [MQTT-4.8.2-4].
   */
  #deliverShared(group: ShareGroup, message: Message, now: number | undefined): number {
    const members = [...group.members.values()]
    const n = members.length
    if (n === 0) return 0
    let chosen = -1
    let fallback = -1
    for (let i = 0; i < n; i++) {
      const at = (group.next + i) % n
      const session = this.sessions.get((members[at] as RouteEntry).clientId)
      if (!session?.connection?.isOpen) continue
      if (fallback < 0) fallback = at
      if (session.inflight.size < session.window) {
        chosen = at
        break
      }
    }
    if (chosen < 0) chosen = fallback >= 0 ? fallback : group.next % n
    group.next = chosen + 1
    const entry = members[chosen] as RouteEntry
    const session = this.sessions.get(entry.clientId)
    if (!session) return 0
    const qos = Math.min(message.qos, entry.qos) as Qos
    const id = entry.record.subscriptionIdentifier
    session.offer(
      message,
      qos,
      entry.record.retainAsPublished && message.retain,
      id === undefined ? undefined : [id],
      now,
    )
    return 1
  }

  /**
   * Encode a PUBLISH for one subscriber. Messages without per-subscriber
   * properties are encoded once per shape and patched with the packet id.
   */
  encodePublish(
    message: Message,
    version: ProtocolVersion,
    qos: Qos,
    retain: boolean,
    subIds: readonly number[] | undefined,
    packetId: number,
    dup: boolean,
  ): Buffer {
    if (version === 5 && (subIds || message.properties || message.expiresAt !== undefined)) {
      return this.#encodeWithProperties(message, qos, retain, subIds, packetId, dup)
    }
    if (this.#encodedFor !== message) {
      this.#encoded.fill(undefined)
      this.#encodedFor = message
    }
    const key = (version === 5 ? 8 : 0) | (qos << 1) | (retain ? 1 : 0)
    let encoded = this.#encoded[key]
    if (!encoded) {
      encoded = encodeBarePublish(message.topic, message.payload, qos, retain, false, version)
      this.#encoded[key] = encoded
    }
    if (qos === 0) return encoded.bytes
    return withPacketId(encoded, packetId, dup)
  }

  #encodeWithProperties(
    message: Message,
    qos: Qos,
    retain: boolean,
    subIds: readonly number[] | undefined,
    packetId: number,
    dup: boolean,
  ): Buffer {
    const p = message.properties
    let messageExpiryInterval: number | undefined
    if (message.expiresAt !== undefined) {
      // [MQTT-3.3.2-6] the interval sent is what remains
      const remaining = Math.ceil((message.expiresAt - this.clock.now()) / 1000)
      messageExpiryInterval = Math.max(1, remaining)
    }
    // Our own encoder: User Properties leave as pairs, in order [MQTT-3.3.2-18].
    return encodePublishV5({
      topic: message.topic,
      payload: message.payload,
      qos,
      retain,
      dup,
      packetId,
      payloadFormatIndicator: p?.payloadFormatIndicator,
      messageExpiryInterval,
      contentType: p?.contentType,
      responseTopic: p?.responseTopic,
      correlationData: p?.correlationData,
      subscriptionIdentifiers: subIds,
      userProperties: p?.userProperties,
    })
  }

  /**
   * The message to hold for a long time (queued for an offline client): its
   * payload copied out when it is a small view into a larger socket read
   * buffer, which it would otherwise pin and which `maxQueuedBytes` does not
   * count.
   */
  compact(message: Message): Message {
    const payload = message.payload
    const backing = payload.buffer.byteLength
    if (backing <= Buffer.poolSize || backing <= 2 * payload.length) return message
    if (this.#compactedFrom !== message) {
      this.#compactedFrom = message
      this.#compacted = copyMessage(message, { payload: Buffer.from(payload) })
    }
    return this.#compacted as Message
  }

  /**
   * Ask the gate again about every stored subscription and every message
   * waiting for a client, after a policy change (issue #4, C15): what is no
   * longer allowed goes, with one audit event each.
   */
  reevaluateSessions(cause: string): { subscriptionsRemoved: number; messagesDropped: number } {
    const total = { subscriptionsRemoved: 0, messagesDropped: 0 }
    for (const session of this.sessions.values()) {
      const r = this.#reevaluate(session, cause)
      total.subscriptionsRemoved += r.subscriptionsRemoved
      total.messagesDropped += r.messagesDropped
    }
    return total
  }

  #reevaluate(
    session: Session,
    cause: string,
  ): { subscriptionsRemoved: number; messagesDropped: number } {
    let subscriptionsRemoved = 0
    let messagesDropped = 0
    const client = session.clientInfo
    for (const [raw, sub] of [...session.subscriptions]) {
      const verdict = this.gate.authorizeSubscribe(client, {
        filter: sub.filter,
        shareGroup: sub.shareGroup,
        qos: sub.record.qos,
      })
      if (verdict.allow && verdict.maxQos >= sub.record.qos) continue
      const filter = this.maskTopic(raw)
      if (!verdict.allow) {
        session.subscriptions.delete(raw)
        this.tree.remove(sub.filter, session.clientId, sub.shareGroup)
        if (session.stored) this.store.deleteSubscription(session.clientId, raw)
        this.emit({
          type: 'subscription.revoked',
          clientId: session.clientId,
          filter,
          rule: verdict.rule,
          cause,
        })
        subscriptionsRemoved++
        continue
      }
      const record = { ...sub.record, qos: verdict.maxQos }
      session.subscriptions.set(raw, { ...sub, record, grantedQos: verdict.maxQos })
      this.tree.add(sub.filter, {
        clientId: session.clientId,
        record,
        qos: verdict.maxQos,
        shareGroup: sub.shareGroup,
      })
      if (session.stored) this.store.saveSubscription(session.clientId, record)
      this.emit({
        type: 'subscription.revoked',
        clientId: session.clientId,
        filter,
        loweredTo: verdict.maxQos,
        rule: 'policy.max-qos',
        cause,
      })
    }
    messagesDropped += session.dropDenied((message) => this.gate.authorizeDelivery(client, message))
    return { subscriptionsRemoved, messagesDropped }
  }

  /**
   * Totals for the metrics endpoint; walks every session, so call it per
   * scrape only. `queuedMessages` counts memory and store; `queuedInMemory`
   * only what the core holds in memory.
   */
  stats(): {
    sessions: number
    queuedMessages: number
    queuedInMemory: number
    inflightMessages: number
  } {
    let queuedInMemory = 0
    let queuedInStore = 0
    let inflightMessages = 0
    for (const session of this.sessions.values()) {
      queuedInMemory += session.queue.length
      queuedInStore += session.storedQueueLength
      inflightMessages += session.inflight.size
    }
    return {
      sessions: this.sessions.size,
      queuedMessages: queuedInMemory + queuedInStore,
      queuedInMemory,
      inflightMessages,
    }
  }

  /** A topic as it may appear in audit events: PHI hits masked (C21, C26). */
  maskTopic(topic: string): string {
    return this.gate.maskTopic ? this.gate.maskTopic(topic) : topic
  }

  /** A client id not yet accepted, as it may appear in audit events (C26). */
  maskClientId(clientId: string): string {
    return this.gate.maskClientId ? this.gate.maskClientId(clientId) : clientId
  }

  /** A message that will not reach a client: audited, never silently. */
  dropped(clientId: string, message: Message, reason: string): void {
    this.emit({ type: 'message.dropped', clientId, topic: this.maskTopic(message.topic), reason })
  }

  /** Audit a refused CONNECT. */
  auditRefusal(conn: Connection, reasonCode: number, rule: string): void {
    this.emit({
      type: 'connect.refused',
      remoteAddress: conn.context.remoteAddress,
      listener: conn.context.listener,
      fingerprint: conn.context.tls?.fingerprint256,
      clientId: conn.clientId ? this.maskClientId(conn.clientId) : undefined,
      reasonCode,
      rule,
    })
  }

  /** Audit a protocol violation. */
  auditViolation(conn: Connection, reasonCode: number, rule: string): void {
    this.emit({
      type: 'protocol.violation',
      remoteAddress: conn.context.remoteAddress,
      listener: conn.context.listener,
      clientId: conn.clientId ? this.maskClientId(conn.clientId) : undefined,
      reasonCode,
      rule,
    })
  }

  emit(event: AuditEvent): void {
    this.audit.emit(event)
  }

  disconnectClient(
    clientId: string,
    reasonCode: number,
    options?: { sendWill?: boolean },
  ): boolean {
    const conn = this.sessions.get(clientId)?.connection
    if (!conn) return false
    conn.close({ cause: 'server', reasonCode, sendWill: options?.sendWill ?? false })
    return true
  }

  listClients(
    predicate?: (c: { clientId: string; identity?: Identity | undefined }) => boolean,
  ): string[] {
    const out: string[] = []
    for (const conn of this.connections) {
      if (!conn.isOpen) continue
      const c = { clientId: conn.clientId, identity: conn.context.identity }
      if (!predicate || predicate(c)) out.push(conn.clientId)
    }
    return out
  }

  /** Close every connection (5.0 clients get DISCONNECT 0x8B) and the store. */
  async close(): Promise<void> {
    this.#closing = true
    for (const conn of [...this.connections]) {
      conn.close({ cause: 'server', reasonCode: ReasonCode.ServerShuttingDown, sendWill: false })
    }
    for (const will of this.#pendingWills.values()) will.timer.cancel()
    for (const session of this.sessions.values()) session.expiryTimer?.cancel()
    await new Promise<void>((resolve) => this.store.afterCommit(resolve))
    await this.store.close()
  }
}
