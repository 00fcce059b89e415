/**
 * Shared helpers for the SQLite store tests: a temp dir per store, a fresh
 * random master key, and raw access to the database file once closed.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Clock } from '../../src/broker/clock.js'
import { LocalMasterKey } from '../../src/store/crypto.js'
import { SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite-store.js'
import type { StoreHarness } from './store-contract.js'

export interface SqliteFixture {
  readonly dir: string
  readonly path: string
  readonly masterKey: LocalMasterKey
  /** The master key's bytes as hex, to hand to a child process. */
  readonly masterKeyHex: string
  make(extra?: Partial<SqliteStoreOptions>): SqliteStore
  cleanup(): Promise<void>
}

/** A temp dir with a database path and a master key; `make` builds stores over it. */
export async function sqliteFixture(defaults: { clock?: Clock } = {}): Promise<SqliteFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'phimq-store-'))
  const path = join(dir, 'store.db')
  const raw = randomBytes(32)
  const masterKey = new LocalMasterKey(raw)
  return {
    dir,
    path,
    masterKey,
    masterKeyHex: raw.toString('hex'),
    make: (extra = {}) => new SqliteStore({ path, masterKey, ...defaults, ...extra }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

/** The contract harness over a fresh fixture. */
export async function sqliteHarness(): Promise<StoreHarness> {
  const fixture = await sqliteFixture()
  return {
    store: fixture.make(),
    reopen: async () => fixture.make(),
    cleanup: fixture.cleanup,
  }
}

/** Run `fn` on the raw database file; the store must be closed. */
export function withRawDb<T>(path: string, fn: (db: Database.Database) => T): T {
  const db = new Database(path)
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

/** Resolves once every write issued so far is committed. */
export function committed(store: { afterCommit(fn: () => void): void }): Promise<void> {
  return new Promise((resolve) => store.afterCommit(resolve))
}
