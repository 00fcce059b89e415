/**
 * Key administration of the SQLite store: list, rotate, re-encrypt,
 * crypto-erase, and master key rotation (issue #5). It works through the
 * store's own write queue, so every change is a group-committed write like
 * any other and runs safely beside a live broker.
 */
import type { Logger } from '../broker/logger.js'
import {
  type DataKey,
  type KeyRing,
  type KeyState,
  type MasterKeyProvider,
  openRecord,
  sealRecord,
  wrapContext,
} from './crypto.js'
import {
  deleteClient,
  type KeyRow,
  type QueueKeyRow,
  queueContext,
  type RetainedRow,
  retainedContext,
  type WillRow,
  willContext,
} from './sqlite-rows.js'
import type { Statements } from './sqlite-statements.js'

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

export interface ReencryptOptions {
  /** Records per table per transaction; default 500. */
  readonly batchSize?: number | undefined
  readonly onProgress?: ((progress: ReencryptProgress) => void) | undefined
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

/** What key administration needs of the store. */
export interface KeyAdminContext {
  readonly ring: KeyRing
  readonly log: Logger
  /** Throws when the store is not open. */
  statements(): Statements
  /** Queue a write for the next group commit. */
  write(op: (s: Statements) => void): void
  /** Resolves once every write issued so far is committed. */
  committed(): Promise<void>
  /** Fold the WAL into the database and truncate it. */
  checkpoint(): void
  /** Forget a client's tenant (its session is being deleted). */
  forgetClient(clientId: string): void
  setMasterKey(next: MasterKeyProvider): void
}

/** Key operations over one open SQLite store. */
export class SqliteKeyAdmin {
  readonly #ctx: KeyAdminContext

  constructor(ctx: KeyAdminContext) {
    this.#ctx = ctx
  }

  /** Data keys with how many records use each. */
  async listKeys(): Promise<KeyInfo[]> {
    await this.#ctx.committed()
    const sql = this.#ctx.statements()
    const counts = new Map<number, number>()
    for (const row of sql.countByKey.all() as Array<{ key_id: number; n: number }>) {
      counts.set(row.key_id, (counts.get(row.key_id) ?? 0) + row.n)
    }
    return this.#ctx.ring.keys().map((k) => ({
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
    this.#ctx.statements()
    const old = this.#ctx.ring.keys().filter((k) => k.purpose === 'data' && k.tenant === tenant)
    const fresh = this.#ctx.ring.rotate(tenant)
    const retired = old.filter((k) => k.state === 'retired').map((k) => k.id)
    this.#ctx.write((s) => {
      for (const id of retired) s.setKeyState.run('retired', id)
    })
    await this.#ctx.committed()
    this.#ctx.log.info({ event: 'store.key-rotated', keyId: fresh.id }, 'store key rotated')
    return fresh.id
  }

  /**
   * Re-seal every record under a retired key with its tenant's active key,
   * a batch per transaction, reporting progress; then delete retired keys
   * that nothing uses.
   */
  async reencrypt(options: ReencryptOptions = {}): Promise<ReencryptResult> {
    const batchSize = options.batchSize ?? 500
    await this.#ctx.committed()
    const retired = this.#ctx.ring
      .keys()
      .filter((k) => k.purpose === 'data' && k.state === 'retired')
    const ids = retired.map((k) => k.id)
    const sql = this.#ctx.statements()
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
        await this.#ctx.committed()
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
    await this.#ctx.committed()
    const keys = this.#ctx.ring.keys().filter((k) => k.purpose === 'data' && k.tenant === tenant)
    const ids = keys.map((k) => k.id)
    const sql = this.#ctx.statements()
    let records = 0
    for (const id of ids) records += (sql.countKeyUse.get(id, id, id) as { n: number }).n
    const clients = (
      sql.selectTenantSessions.all(tenant ?? null) as Array<{ client_id: string }>
    ).map((r) => r.client_id)

    this.#ctx.ring.remove(ids)
    for (const clientId of clients) this.#ctx.forgetClient(clientId)
    this.#ctx.write((s) => {
      for (const id of ids) {
        s.deleteQueueByKey.run(id)
        s.deleteRetainedByKey.run(id)
        s.deleteWillsByKey.run(id)
        s.deleteKey.run(id)
      }
      for (const clientId of clients) deleteClient(s, clientId, { will: true })
    })
    await this.#ctx.committed()
    this.#ctx.checkpoint()
    this.#ctx.log.warn({ event: 'store.tenant-erased', keys: ids.length }, 'store tenant erased')
    return { keys: ids.length, records, sessions: clients.length }
  }

  /**
   * Master key rotation: wrap every data key under `next` and use it from
   * now on. Records are untouched. The old master key opens nothing after
   * this; the config must name the new one before the next start.
   */
  async rewrapKeys(next: MasterKeyProvider): Promise<number> {
    await this.#ctx.committed()
    this.#ctx.setMasterKey(next)
    let rewrapped = 0
    // Keys made while wrapping may have been written under the old key: go again.
    for (;;) {
      const stale = (this.#ctx.statements().selectKeys.all() as KeyRow[])
        .filter((row) => row.master_key_id !== next.id)
        .map((row) => this.#ctx.ring.get(row.id))
        .filter((key): key is DataKey => key !== undefined)
      if (stale.length === 0) break
      const wrapped = await Promise.all(stale.map((k) => next.wrap(k.key, wrapContext(k))))
      this.#ctx.write((s) => {
        stale.forEach((k, i) => {
          s.rewrapKey.run(wrapped[i], next.id, k.id)
        })
      })
      await this.#ctx.committed()
      rewrapped += stale.length
    }
    this.#ctx.checkpoint()
    this.#ctx.log.warn({ event: 'store.master-key-rotated', keys: rewrapped }, 'master key rotated')
    return rewrapped
  }

  /** Re-seal up to `limit` records of one retired key, as one queued write. */
  #reencryptSome(key: DataKey, limit: number): { done: number; dropped: number } {
    const sql = this.#ctx.statements()
    const fresh = this.#ctx.ring.activeFor(key.tenant)
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
    this.#ctx.write((s) => {
      for (const update of updates) update(s)
    })
    return { done: updates.length - dropped, dropped }
  }

  #tryPlain(record: Buffer, context: string): Buffer | undefined {
    try {
      return openRecord(this.#ctx.ring, record, context)
    } catch {
      return undefined
    }
  }

  async #deleteUnusedKeys(): Promise<number[]> {
    await this.#ctx.committed()
    const sql = this.#ctx.statements()
    const unused = this.#ctx.ring
      .keys()
      .filter((k) => k.purpose === 'data' && k.state === 'retired')
      .filter((k) => (sql.countKeyUse.get(k.id, k.id, k.id) as { n: number }).n === 0)
      .map((k) => k.id)
    if (unused.length === 0) return []
    this.#ctx.ring.remove(unused)
    this.#ctx.write((s) => {
      for (const id of unused) s.deleteKey.run(id)
    })
    await this.#ctx.committed()
    this.#ctx.checkpoint()
    return unused
  }
}
