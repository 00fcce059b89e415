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
import type BetterSqlite3 from 'better-sqlite3'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import type { Identity, Message, ProtocolVersion } from '../broker/types.js'
import { MasterKeyError, StoreError } from '../errors.js'
import {
  type DataKey,
  KeyRing,
  type KeyState,
  type MasterKeyProvider,
  openRecord,
  sealRecord,
  wrapContext,
} from './crypto.js'
import { decodeMessage, encodeMessage } from './record-codec.js'
import { openDatabase, type SynchronousMode } from './sqlite-schema.js'
import { prepareStatements, type Statements } from './sqlite-statements.js'
import type {
  OutboundState,
  QueueEntry,
  SessionRecord,
  Store,
  StoreSnapshot,
  SubscriptionRecord,
  WillRecord,
} from './store.js'

/** Session Expiry Interval meaning "never" (MQTT 5 section 3.1.2.11.2). */
export const SESSION_EXPIRY_NEVER_SECONDS = 0xffff_ffff

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

/** A data key as `phimq store keys` shows it: never the key itself. */
export interface KeyInfo {
  readonly id: number
  readonly tenant: string | undefined
  readonly purpose: 'data' | 'index'
  readonly state: KeyState
  readonly createdAt: number
  /** Sealed records that name this key. */
  readonly records: number
}

export interface ReencryptProgress {
  readonly done: number
  readonly total: number
}

export interface ReencryptResult {
  readonly reencrypted: number
  /** Unreadable records met on the way, deleted. */
  readonly dropped: number
  /** Retired keys deleted because nothing used them any more. */
  readonly deletedKeys: readonly number[]
}

export interface EraseResult {
  readonly keys: number
  readonly records: number
  readonly sessions: number
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

  constructor(options: SqliteStoreOptions) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#log = (options.logger ?? silentLogger).child({ component: 'store', store: 'sqlite' })
    this.#ring = new KeyRing(() => this.#clock.now())
  }

  async open(): Promise<StoreSnapshot> {
    if (this.#db) throw new StoreError('store is already open')
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
  async listKeys(): Promise<KeyInfo[]> {
    await this.#committed()
    const sql = this.#statements()
    const counts = new Map<number, number>()
    for (const row of sql.countByKey.all() as Array<{ key_id: number; n: number }>) {
      counts.set(row.key_id, (counts.get(row.key_id) ?? 0) + row.n)
    }
    return this.#ring.keys().map((k) => ({
      id: k.id,
      tenant: k.tenant,
      purpose: k.purpose,
      state: k.state,
      createdAt: k.createdAt,
      records: counts.get(k.id) ?? 0,
    }))
  }

  /**
   * Retire the tenant's data key and make a new one: new writes use the
   * new key at once. Run `reencrypt` to move old records over.
   */
  async rotateKey(tenant: string | undefined): Promise<number> {
    this.#open()
    const old = this.#ring.keys().filter((k) => k.purpose === 'data' && k.tenant === tenant)
    const fresh = this.#ring.rotate(tenant)
    const retired = old.filter((k) => k.state === 'retired').map((k) => k.id)
    this.#write((s) => {
      for (const id of retired) s.setKeyState.run('retired', id)
    })
    await this.#committed()
    this.#log.info({ event: 'store.key-rotated', keyId: fresh.id }, 'store key rotated')
    return fresh.id
  }

  /**
   * Re-seal every record under a retired key with its tenant's active key,
   * a batch per transaction, reporting progress; then delete retired keys
   * that nothing uses.
   */
  async reencrypt(
    options: { batchSize?: number; onProgress?: (p: ReencryptProgress) => void } = {},
  ): Promise<ReencryptResult> {
    const batchSize = options.batchSize ?? 500
    await this.#committed()
    const retired = this.#ring.keys().filter((k) => k.purpose === 'data' && k.state === 'retired')
    const ids = retired.map((k) => k.id)
    const sql = this.#statements()
    let total = 0
    for (const id of ids) total += (sql.countKeyUse.get(id, id, id) as { n: number }).n
    let done = 0
    let dropped = 0
    options.onProgress?.({ done, total })

    for (const key of retired) {
      for (;;) {
        const moved = this.#reencryptSome(key, batchSize)
        if (moved.done + moved.dropped === 0) break
        done += moved.done
        dropped += moved.dropped
        await this.#committed()
        options.onProgress?.({ done, total })
      }
    }
    const deletedKeys = await this.#deleteUnusedKeys()
    return { reencrypted: done, dropped, deletedKeys }
  }

  /**
   * Crypto-erase a tenant: destroy its data keys and delete the records
   * they sealed and the tenant's sessions. The WAL is then truncated and
   * deleted pages are zeroed (`secure_delete`), so no copy of a wrapped key
   * stays in the files.
   */
  async eraseTenant(tenant: string | undefined): Promise<EraseResult> {
    await this.#committed()
    const keys = this.#ring.keys().filter((k) => k.purpose === 'data' && k.tenant === tenant)
    const ids = keys.map((k) => k.id)
    const sql = this.#statements()
    let records = 0
    for (const id of ids) records += (sql.countKeyUse.get(id, id, id) as { n: number }).n
    const clients = (
      sql.selectTenantSessions.all(tenant ?? null) as Array<{ client_id: string }>
    ).map((r) => r.client_id)

    this.#ring.remove(ids)
    for (const clientId of clients) this.#tenantOf.delete(clientId)
    this.#write((s) => {
      for (const id of ids) {
        s.deleteQueueByKey.run(id)
        s.deleteRetainedByKey.run(id)
        s.deleteWillsByKey.run(id)
        s.deleteKey.run(id)
      }
      for (const clientId of clients) deleteClient(s, clientId, { will: true })
    })
    await this.#committed()
    this.#db?.pragma('wal_checkpoint(TRUNCATE)')
    this.#log.warn({ event: 'store.tenant-erased', keys: ids.length }, 'store tenant erased')
    return { keys: ids.length, records, sessions: clients.length }
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
    const newKeys = this.#ring.takeNew()
    let wrapped: Buffer[] = []
    try {
      if (newKeys.length > 0) {
        const provider = this.#options.masterKey
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
    for (const fn of batch.callbacks) {
      try {
        fn()
      } catch (err) {
        this.#log.error({ event: 'store.callback-failed', err: errorName(err) }, 'callback failed')
      }
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
          this.#options.masterKey.id,
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
    const provider = this.#options.masterKey
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

  /** Re-seal up to `limit` records of one retired key, as one queued write. */
  #reencryptSome(key: DataKey, limit: number): { done: number; dropped: number } {
    const sql = this.#statements()
    const fresh = this.#ring.activeFor(key.tenant)
    const updates: Array<(s: Statements) => void> = []
    let dropped = 0

    for (const row of sql.selectQueueByKey.all(key.id, limit) as QueueKeyRow[]) {
      const context = queueContext(row.client_id, row.seq)
      const plain = this.#tryPlain(row.record, context)
      if (!plain) {
        dropped++
        updates.push((s) => s.deleteQueue.run(row.client_id, row.seq))
        continue
      }
      const record = sealRecord(fresh, plain, context)
      updates.push((s) => s.rekeyQueue.run(fresh.id, record, row.client_id, row.seq, key.id))
    }
    for (const row of sql.selectRetainedByKey.all(key.id, limit) as RetainedRow[]) {
      const context = retainedContext(row.topic_hash)
      const plain = this.#tryPlain(row.record, context)
      if (!plain) {
        dropped++
        updates.push((s) => s.deleteRetained.run(row.topic_hash))
        continue
      }
      const record = sealRecord(fresh, plain, context)
      updates.push((s) => s.rekeyRetained.run(fresh.id, record, row.topic_hash, key.id))
    }
    for (const row of sql.selectWillsByKey.all(key.id, limit) as WillRow[]) {
      const context = willContext(row.client_id)
      const plain = this.#tryPlain(row.record, context)
      if (!plain) {
        dropped++
        updates.push((s) => s.deleteWill.run(row.client_id))
        continue
      }
      const record = sealRecord(fresh, plain, context)
      updates.push((s) => s.rekeyWill.run(fresh.id, record, row.client_id, key.id))
    }
    this.#write((s) => {
      for (const update of updates) update(s)
    })
    return { done: updates.length - dropped, dropped }
  }

  #tryPlain(record: Buffer, context: string): Buffer | undefined {
    try {
      return openRecord(this.#ring, record, context)
    } catch {
      return undefined
    }
  }

  async #deleteUnusedKeys(): Promise<number[]> {
    await this.#committed()
    const sql = this.#statements()
    const unused = this.#ring
      .keys()
      .filter((k) => k.purpose === 'data' && k.state === 'retired')
      .filter((k) => (sql.countKeyUse.get(k.id, k.id, k.id) as { n: number }).n === 0)
      .map((k) => k.id)
    if (unused.length === 0) return []
    this.#ring.remove(unused)
    this.#write((s) => {
      for (const id of unused) s.deleteKey.run(id)
    })
    await this.#committed()
    this.#db?.pragma('wal_checkpoint(TRUNCATE)')
    return unused
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

interface KeyRow {
  id: number
  tenant: string | null
  purpose: 'data' | 'index'
  state: KeyState
  created_at: number
  master_key_id: string
  wrapped: Buffer
}

interface SessionRow {
  client_id: string
  protocol_version: ProtocolVersion
  identity: string | null
  session_expiry_seconds: number
  disconnected_at: number | null
}

interface QueueRow {
  seq: number
  packet_id: number | null
  state: OutboundState
  expires_at: number | null
  record: Buffer
}

interface QueueKeyRow extends QueueRow {
  client_id: string
}

interface RetainedRow {
  topic_hash: Buffer
  record: Buffer
}

interface WillRow {
  client_id: string
  due_at: number
  record: Buffer
}

function deleteClient(s: Statements, clientId: string, what: { will: boolean }): void {
  s.deleteSession.run(clientId)
  s.deleteSubscriptions.run(clientId)
  s.deleteClientQueue.run(clientId)
  s.deleteClientInbound.run(clientId)
  if (what.will) s.deleteWill.run(clientId)
}

function sessionExpiresAt(session: SessionRecord): number | undefined {
  if (session.disconnectedAt === undefined) return undefined
  if (session.sessionExpirySeconds >= SESSION_EXPIRY_NEVER_SECONDS) return undefined
  return session.disconnectedAt + session.sessionExpirySeconds * 1000
}

function sessionOf(row: SessionRow): SessionRecord {
  const session: {
    clientId: string
    protocolVersion: ProtocolVersion
    sessionExpirySeconds: number
    identity?: Identity
    disconnectedAt?: number
  } = {
    clientId: row.client_id,
    protocolVersion: row.protocol_version,
    sessionExpirySeconds: row.session_expiry_seconds,
  }
  if (row.identity !== null) session.identity = JSON.parse(row.identity) as Identity
  if (row.disconnected_at !== null) session.disconnectedAt = row.disconnected_at
  return session
}

function groupBy<R extends { client_id: string }, V>(
  rows: R[],
  pick: (r: R) => V,
): Map<string, V[]> {
  const out = new Map<string, V[]>()
  for (const row of rows) {
    const list = out.get(row.client_id)
    if (list) list.push(pick(row))
    else out.set(row.client_id, [pick(row)])
  }
  return out
}

// The context bound into each sealed record: the row it belongs to. The
// integer comes first so a client id holding ':' cannot make two rows alike.
function queueContext(clientId: string, seq: number): string {
  return `q:${seq}:${clientId}`
}

function retainedContext(hash: Buffer): string {
  return `r:${hash.toString('hex')}`
}

function willContext(clientId: string): string {
  return `w:${clientId}`
}

function errorName(err: unknown): string {
  if (err instanceof Error) return (err as { code?: string }).code ?? err.name
  return 'unknown'
}
