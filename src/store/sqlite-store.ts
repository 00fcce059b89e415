/**
 * The embedded durable store: one SQLite file (WAL) through better-sqlite3.
 *
 * Group commit: every write call only queues a prepared statement; the
 * writes issued during one event-loop turn run as one transaction from a
 * `setImmediate`, and then the `afterCommit` callbacks of that batch fire.
 * So an acknowledgement waits for at most one fsync shared by everything
 * that arrived with it (issue #5).
 *
 * Encryption at rest: queued, retained and will messages are sealed (see
 * `crypto.ts`) with the data key of the session's tenant; retained rows are
 * found by a keyed hash of the topic. Expired rows are deleted at open and
 * by a periodic sweep on the injected clock, not merely skipped.
 */
import { performance } from 'node:perf_hooks'
import type BetterSqlite3 from 'better-sqlite3'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import type { Message } from '../broker/types.js'
import { MasterKeyError, StoreError } from '../errors.js'
import {
  type DataKey,
  KeyRing,
  type MasterKeyProvider,
  openRecord,
  sealRecord,
  wrapContext,
} from './crypto.js'
import { decodeMessage, encodeMessage } from './record-codec.js'
import {
  type EraseResult,
  type KeyInfo,
  type ReencryptOptions,
  type ReencryptResult,
  SqliteKeyAdmin,
} from './sqlite-keys.js'
import {
  deleteClient,
  groupBy,
  type KeyRow,
  type QueueRow,
  queueContext,
  type RetainedRow,
  retainedContext,
  type SessionRow,
  sessionExpiresAt,
  sessionOf,
  type WillRow,
  willContext,
} from './sqlite-rows.js'
import { openDatabase, type SynchronousMode } from './sqlite-schema.js'
import { prepareStatements, type Statements } from './sqlite-statements.js'
import type {
  CommitObservation,
  OutboundState,
  QueueEntry,
  SessionRecord,
  Store,
  StoreSnapshot,
  SubscriptionRecord,
  WillRecord,
} from './store.js'

export type {
  EraseResult,
  KeyInfo,
  ReencryptOptions,
  ReencryptProgress,
  ReencryptResult,
} from './sqlite-keys.js'
export { SESSION_EXPIRY_NEVER_SECONDS } from './sqlite-rows.js'

/** How often expired rows are looked for while running. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000

export interface SqliteStoreOptions {
  /** Database file; `-wal` sits beside it. */
  readonly path: string
  readonly masterKey: MasterKeyProvider
  /** `normal` (default) survives a process crash; `full` also power loss. */
  readonly synchronous?: SynchronousMode | undefined
  readonly clock?: Clock | undefined
  readonly logger?: Logger | undefined
  readonly sweepIntervalMs?: number | undefined
  /**
   * The tenant whose key seals a retained message. Default: the tenant of
   * the publisher's stored session, else the default key.
   */
  readonly retainedTenant?: ((message: Message) => string | undefined) | undefined
}

interface Batch {
  ops: Array<() => void>
  callbacks: Array<() => void>
}

type Sealed = { keyId: number; record: Buffer }

export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  readonly durable = true
  readonly #options: SqliteStoreOptions
  readonly #clock: Clock
  readonly #log: Logger
  readonly #ring: KeyRing
  /** Wraps new data keys; replaced by `rewrapKeys`. */
  #masterKey: MasterKeyProvider
  readonly #keys: SqliteKeyAdmin
  /** Tenant of each stored session; picks the key for its queue and will. */
  readonly #tenantOf = new Map<string, string | undefined>()
  #db: BetterSqlite3.Database | undefined
  #sql: Statements | undefined
  #batch: Batch = { ops: [], callbacks: [] }
  #scheduled = false
  #chain: Promise<void> = Promise.resolve()
  #sweepTimer: TimerHandle | undefined
  #closed = false
  #batches = 0
  #writes = 0
  #commitObserver: ((commit: CommitObservation) => void) | undefined

  constructor(options: SqliteStoreOptions) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#log = (options.logger ?? silentLogger).child({ component: 'store', store: 'sqlite' })
    this.#ring = new KeyRing(() => this.#clock.now())
    this.#masterKey = options.masterKey
    this.#keys = new SqliteKeyAdmin({
      ring: this.#ring,
      log: this.#log,
      statements: () => this.#statements(),
      write: (op) => this.#write(op),
      committed: () => this.#committed(),
      checkpoint: () => this.#db?.pragma('wal_checkpoint(TRUNCATE)'),
      forgetClient: (clientId) => this.#tenantOf.delete(clientId),
      setMasterKey: (next) => {
        this.#masterKey = next
      },
    })
  }

  async open(): Promise<StoreSnapshot> {
    if (this.#db) throw new StoreError('store is already open')
    // A closed instance has dropped its keys: open a new one instead.
    if (this.#closed) throw new StoreError('store is closed')
    const db = openDatabase(this.#options.path, this.#options.synchronous ?? 'normal')
    this.#db = db
    this.#sql = prepareStatements(db)
    try {
      await this.#loadKeys()
      const swept = this.#sweepNow()
      const snapshot = this.#readSnapshot()
      this.#scheduleSweep()
      this.#log.info({ event: 'store.opened', ...swept }, 'store opened')
      return snapshot
    } catch (err) {
      this.#db = undefined
      this.#sql = undefined
      db.close()
      throw err
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#sweepTimer?.cancel()
    this.#cutBatch()
    await this.#chain
    const db = this.#db
    this.#db = undefined
    this.#sql = undefined
    if (!db) return
    // Fold the WAL back so no sealed-but-deleted pages linger in it.
    db.pragma('wal_checkpoint(TRUNCATE)')
    db.close()
    this.#ring.remove(this.#ring.keys().map((k) => k.id))
  }

  saveSession(session: SessionRecord): void {
    const tenant = session.identity?.tenant
    this.#tenantOf.set(session.clientId, tenant)
    const expiresAt = sessionExpiresAt(session)
    const identity = session.identity === undefined ? null : JSON.stringify(session.identity)
    this.#write((s) =>
      s.upsertSession.run(
        session.clientId,
        tenant ?? null,
        session.protocolVersion,
        identity,
        session.sessionExpirySeconds,
        session.disconnectedAt ?? null,
        expiresAt ?? null,
      ),
    )
  }

  deleteSession(clientId: string): void {
    this.#tenantOf.delete(clientId)
    this.#write((s) => deleteClient(s, clientId, { will: true }))
  }

  saveSubscription(clientId: string, subscription: SubscriptionRecord): void {
    const options = JSON.stringify(subscription)
    this.#write((s) => s.upsertSubscription.run(clientId, subscription.filter, options))
  }

  deleteSubscription(clientId: string, filter: string): void {
    this.#write((s) => s.deleteSubscription.run(clientId, filter))
  }

  pushMessage(clientId: string, entry: QueueEntry): void {
    const plain = encodeMessage(entry)
    const { keyId, record } = this.#seal(
      this.#tenantOf.get(clientId),
      plain,
      queueContext(clientId, entry.seq),
    )
    const expiresAt = entry.message.expiresAt ?? null
    const packetId = entry.packetId ?? null
    this.#write((s) =>
      s.insertQueue.run(clientId, entry.seq, packetId, entry.state, expiresAt, keyId, record),
    )
  }

  updateMessage(clientId: string, seq: number, packetId: number, state: OutboundState): void {
    this.#write((s) => s.updateQueue.run(packetId, state, clientId, seq))
  }

  deleteMessage(clientId: string, seq: number): void {
    this.#write((s) => s.deleteQueue.run(clientId, seq))
  }

  dropMessage(clientId: string, seq: number, onDropped: (message: Message) => void): void {
    let dropped: Message | undefined
    this.#write((s) => {
      const row = s.selectQueueRecord.get(clientId, seq) as { record: Buffer } | undefined
      if (!row) return
      s.deleteQueue.run(clientId, seq)
      dropped = this.#tryOpen(row.record, queueContext(clientId, seq))?.message
    })
    this.afterCommit(() => {
      if (dropped) onDropped(dropped)
    })
  }

  async loadMessages(clientId: string, afterSeq: number, limit: number): Promise<QueueEntry[]> {
    // Earlier writes are only queued: read once they are in.
    await this.#committed()
    const sql = this.#statements()
    const out: QueueEntry[] = []
    const unusable: number[] = []
    const now = this.#clock.now()
    let cursor = afterSeq
    while (out.length < limit) {
      const rows = sql.selectQueue.all(clientId, cursor, limit - out.length) as QueueRow[]
      if (rows.length === 0) break
      for (const row of rows) {
        cursor = row.seq
        const entry = this.#readQueueRow(clientId, row, now)
        if (entry) out.push(entry)
        else unusable.push(row.seq)
      }
    }
    // Expired or unreadable (crypto-erased) entries are deleted, not kept.
    for (const seq of unusable) this.deleteMessage(clientId, seq)
    return out
  }

  addInboundQos2(clientId: string, packetId: number): void {
    this.#write((s) => s.insertInbound.run(clientId, packetId))
  }

  deleteInboundQos2(clientId: string, packetId: number): void {
    this.#write((s) => s.deleteInbound.run(clientId, packetId))
  }

  setRetained(topic: string, message: Message | undefined): void {
    const hash = this.#ring.topicIndex(topic)
    if (message === undefined) {
      this.#write((s) => s.deleteRetained.run(hash))
      return
    }
    const tenant = this.#retainedTenant(message)
    const plain = encodeMessage({ message })
    const { keyId, record } = this.#seal(tenant, plain, retainedContext(hash))
    const expiresAt = message.expiresAt ?? null
    this.#write((s) => s.upsertRetained.run(hash, expiresAt, keyId, record))
  }

  setWill(clientId: string, will: WillRecord | undefined): void {
    if (will === undefined) {
      this.#write((s) => s.deleteWill.run(clientId))
      return
    }
    const plain = encodeMessage({ message: will.message })
    const tenant = this.#tenantOf.get(clientId)
    const { keyId, record } = this.#seal(tenant, plain, willContext(clientId))
    const expiresAt = will.message.expiresAt ?? null
    this.#write((s) => s.upsertWill.run(clientId, will.dueAt, expiresAt, keyId, record))
  }

  afterCommit(fn: () => void): void {
    this.#open()
    this.#batch.callbacks.push(fn)
    this.#schedule()
  }

  /** Report each committed batch (metrics); one observer, the last one set. */
  observeCommits(observer: (commit: CommitObservation) => void): void {
    this.#commitObserver = observer
  }

  /** The `synchronous` level in force: `normal` or `full`. */
  synchronousMode(): SynchronousMode {
    const db = this.#db
    if (!db) throw new StoreError('store is not open')
    return db.pragma('synchronous', { simple: true }) === 2 ? 'full' : 'normal'
  }

  /** Committed transactions and the writes in them, since open. */
  stats(): { batches: number; writes: number } {
    return { batches: this.#batches, writes: this.#writes }
  }

  /** Delete expired rows now (the periodic sweep calls this too). */
  async sweep(): Promise<SweepCounts> {
    await this.#committed()
    return this.#sweepNow()
  }

  /** Data keys with how many records use each. */
  listKeys(): Promise<KeyInfo[]> {
    return this.#keys.listKeys()
  }

  /**
   * Retire the tenant's data key and make a new one: new writes use the
   * new key at once. Run `reencrypt` to move old records over.
   */
  rotateKey(tenant: string | undefined): Promise<number> {
    return this.#keys.rotateKey(tenant)
  }

  /** Re-seal records under retired keys; delete retired keys nothing uses. */
  reencrypt(options?: ReencryptOptions): Promise<ReencryptResult> {
    return this.#keys.reencrypt(options)
  }

  /** Crypto-erase a tenant: its data keys, the records they sealed, its sessions. */
  eraseTenant(tenant: string | undefined): Promise<EraseResult> {
    return this.#keys.eraseTenant(tenant)
  }

  /** Wrap every data key under a new master key and use it from now on. */
  rewrapKeys(next: MasterKeyProvider): Promise<number> {
    return this.#keys.rewrapKeys(next)
  }

  // --- group commit -------------------------------------------------------

  #write(op: (s: Statements) => void): void {
    this.#open()
    this.#batch.ops.push(() => op(this.#statements()))
    this.#schedule()
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#cutBatch()
    })
  }

  /** Close the current batch and queue its commit behind earlier ones. */
  #cutBatch(): void {
    const batch = this.#batch
    if (batch.ops.length === 0 && batch.callbacks.length === 0) return
    this.#batch = { ops: [], callbacks: [] }
    this.#chain = this.#chain.then(() => this.#commit(batch))
  }

  async #commit(batch: Batch): Promise<void> {
    const started = performance.now()
    const newKeys = this.#ring.takeNew()
    let wrapped: Buffer[] = []
    try {
      if (newKeys.length > 0) {
        const provider = this.#masterKey
        wrapped = await Promise.all(newKeys.map((k) => provider.wrap(k.key, wrapContext(k))))
      }
      const db = this.#db
      if (!db) throw new StoreError('store is closed')
      const sql = this.#statements()
      if (batch.ops.length + newKeys.length > 0) this.#runBatch(db, sql, batch, newKeys, wrapped)
    } catch (err) {
      // Nothing of the batch is durable: its acknowledgements never leave,
      // so clients resend. Keys go back to be written with the next batch.
      this.#ring.restoreNew(newKeys)
      this.#log.error({ event: 'store.commit-failed', err: errorName(err) }, 'store commit failed')
      return
    }
    if (batch.ops.length > 0) this.#observeCommit(started, batch.ops.length)
    for (const fn of batch.callbacks) {
      try {
        fn()
      } catch (err) {
        this.#log.error({ event: 'store.callback-failed', err: errorName(err) }, 'callback failed')
      }
    }
  }

  #observeCommit(started: number, writes: number): void {
    const seconds = (performance.now() - started) / 1000
    try {
      this.#commitObserver?.({ seconds, writes })
    } catch (err) {
      this.#log.error({ event: 'store.callback-failed', err: errorName(err) }, 'callback failed')
    }
  }

  /** One transaction: new wrapped keys first, then the batch's writes in order. */
  #runBatch(
    db: BetterSqlite3.Database,
    sql: Statements,
    batch: Batch,
    newKeys: DataKey[],
    wrapped: Buffer[],
  ): void {
    db.transaction(() => {
      newKeys.forEach((k, i) => {
        sql.insertKey.run(
          k.id,
          k.tenant ?? null,
          k.purpose,
          k.state,
          k.createdAt,
          this.#masterKey.id,
          wrapped[i],
        )
      })
      for (const op of batch.ops) op()
    })()
    this.#batches++
    this.#writes += batch.ops.length
  }

  /** Resolves once every write issued so far is committed. */
  #committed(): Promise<void> {
    return new Promise((resolve) => this.afterCommit(resolve))
  }

  // --- open, snapshot, sweep ----------------------------------------------

  async #loadKeys(): Promise<void> {
    const provider = this.#masterKey
    const rows = this.#statements().selectKeys.all() as KeyRow[]
    for (const row of rows) {
      if (row.master_key_id !== provider.id) {
        throw new MasterKeyError(
          `store keys were wrapped by master key ${row.master_key_id}, not ${provider.id}`,
        )
      }
      const base = {
        id: row.id,
        tenant: row.tenant ?? undefined,
        purpose: row.purpose,
      }
      const key = await provider.unwrap(row.wrapped, wrapContext(base))
      this.#ring.add({ ...base, state: row.state, createdAt: row.created_at, key })
    }
  }

  #readSnapshot(): StoreSnapshot {
    const sql = this.#statements()
    const subscriptions = groupBy(
      sql.selectSubscriptions.all() as Array<{ client_id: string; options: string }>,
      (r) => JSON.parse(r.options) as SubscriptionRecord,
    )
    const inbound = groupBy(
      sql.selectInbound.all() as Array<{ client_id: string; packet_id: number }>,
      (r) => r.packet_id,
    )
    const sessions = (sql.selectSessions.all() as SessionRow[]).map((row) => {
      const session = sessionOf(row)
      this.#tenantOf.set(session.clientId, session.identity?.tenant)
      return {
        session,
        subscriptions: subscriptions.get(row.client_id) ?? [],
        inboundQos2: inbound.get(row.client_id) ?? [],
      }
    })
    return { sessions, retained: this.#readRetained(), wills: this.#readWills() }
  }

  #readRetained(): Message[] {
    const sql = this.#statements()
    const out: Message[] = []
    const drop: Buffer[] = []
    for (const row of sql.selectRetained.all() as RetainedRow[]) {
      const record = this.#tryOpen(row.record, retainedContext(row.topic_hash))
      if (record) out.push(record.message)
      else drop.push(row.topic_hash)
    }
    for (const hash of drop) this.#write((s) => s.deleteRetained.run(hash))
    return out
  }

  #readWills(): StoreSnapshot['wills'] {
    const sql = this.#statements()
    const out: Array<{ clientId: string; will: WillRecord }> = []
    const drop: string[] = []
    for (const row of sql.selectWills.all() as WillRow[]) {
      const record = this.#tryOpen(row.record, willContext(row.client_id))
      if (record)
        out.push({ clientId: row.client_id, will: { message: record.message, dueAt: row.due_at } })
      else drop.push(row.client_id)
    }
    for (const clientId of drop) this.#write((s) => s.deleteWill.run(clientId))
    return out
  }

  /**
   * Delete what has expired by the clock: messages past `expiresAt`,
   * sessions past `disconnectedAt + sessionExpirySeconds` with their
   * subscriptions, queue and inbound state. A will outlives its expired
   * session: it is due by then, and the core publishes it from the snapshot.
   */
  #sweepNow(): SweepCounts {
    const db = this.#db
    if (!db) return { messages: 0, sessions: 0 }
    const sql = this.#statements()
    const now = this.#clock.now()
    return db.transaction(() => {
      let messages = sql.deleteExpiredQueue.run(now).changes
      messages += sql.deleteExpiredRetained.run(now).changes
      messages += sql.deleteExpiredWills.run(now).changes
      const expired = sql.selectExpiredSessions.all(now) as Array<{ client_id: string }>
      for (const { client_id } of expired) {
        deleteClient(sql, client_id, { will: false })
        this.#tenantOf.delete(client_id)
      }
      return { messages, sessions: expired.length }
    })()
  }

  #scheduleSweep(): void {
    const interval = this.#options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
    this.#sweepTimer = this.#clock.schedule(interval, () => {
      if (this.#closed) return
      this.#write(() => {
        const swept = this.#sweepNow()
        if (swept.messages + swept.sessions > 0) {
          this.#log.debug({ event: 'store.swept', ...swept }, 'store swept')
        }
      })
      this.#scheduleSweep()
    })
  }

  // --- keys and records ---------------------------------------------------

  #seal(tenant: string | undefined, plain: Buffer, context: string): Sealed {
    const key = this.#ring.activeFor(tenant)
    return { keyId: key.id, record: sealRecord(key, plain, context) }
  }

  #tryOpen(record: Buffer, context: string): ReturnType<typeof decodeMessage> | undefined {
    try {
      return decodeMessage(openRecord(this.#ring, record, context))
    } catch {
      return undefined
    }
  }

  #readQueueRow(clientId: string, row: QueueRow, now: number): QueueEntry | undefined {
    if (row.expires_at !== null && row.expires_at <= now) return undefined
    const record = this.#tryOpen(row.record, queueContext(clientId, row.seq))
    if (!record) return undefined
    const entry: {
      seq: number
      message: Message
      state: OutboundState
      packetId?: number
      subscriptionIdentifiers?: readonly number[]
    } = { seq: row.seq, message: record.message, state: row.state }
    if (row.packet_id !== null) entry.packetId = row.packet_id
    if (record.subscriptionIdentifiers !== undefined) {
      entry.subscriptionIdentifiers = record.subscriptionIdentifiers
    }
    return entry
  }

  #retainedTenant(message: Message): string | undefined {
    if (this.#options.retainedTenant) return this.#options.retainedTenant(message)
    return message.origin === undefined ? undefined : this.#tenantOf.get(message.origin)
  }

  #open(): void {
    if (this.#closed || !this.#db) throw new StoreError('store is not open')
  }

  #statements(): Statements {
    if (!this.#sql) throw new StoreError('store is not open')
    return this.#sql
  }
}

/** Rows deleted by one sweep. */
export interface SweepCounts {
  readonly messages: number
  readonly sessions: number
}

function errorName(err: unknown): string {
  if (err instanceof Error) return (err as { code?: string }).code ?? err.name
  return 'unknown'
}
