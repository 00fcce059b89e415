/**
 * Tables of the SQLite store and how a database file is opened. Columns
 * that may carry PHI (topic names, payloads, properties) only ever hold
 * sealed records (`record`); expiry times stay in clear so the sweep can
 * delete expired rows without keys.
 */
import Database from 'better-sqlite3'
import { StoreBusyError, StoreError } from '../errors.js'

/** `user_version` of the layout below; bump with a migration step. */
export const SCHEMA_VERSION = 1

const SCHEMA_V1 = `
CREATE TABLE data_keys (
  id INTEGER PRIMARY KEY,
  tenant TEXT,
  purpose TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  master_key_id TEXT NOT NULL,
  wrapped BLOB NOT NULL
);
CREATE TABLE sessions (
  client_id TEXT PRIMARY KEY,
  tenant TEXT,
  protocol_version INTEGER NOT NULL,
  identity TEXT,
  session_expiry_seconds INTEGER NOT NULL,
  disconnected_at INTEGER,
  expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX sessions_expires_at ON sessions (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE subscriptions (
  client_id TEXT NOT NULL,
  filter TEXT NOT NULL,
  options TEXT NOT NULL,
  PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;
CREATE TABLE queue (
  client_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  packet_id INTEGER,
  state TEXT NOT NULL,
  expires_at INTEGER,
  key_id INTEGER NOT NULL,
  record BLOB NOT NULL,
  PRIMARY KEY (client_id, seq)
) WITHOUT ROWID;
CREATE INDEX queue_expires_at ON queue (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX queue_key_id ON queue (key_id);
CREATE TABLE inbound_qos2 (
  client_id TEXT NOT NULL,
  packet_id INTEGER NOT NULL,
  PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;
CREATE TABLE retained (
  topic_hash BLOB PRIMARY KEY,
  expires_at INTEGER,
  key_id INTEGER NOT NULL,
  record BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX retained_key_id ON retained (key_id);
CREATE TABLE wills (
  client_id TEXT PRIMARY KEY,
  due_at INTEGER NOT NULL,
  expires_at INTEGER,
  key_id INTEGER NOT NULL,
  record BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX wills_key_id ON wills (key_id);
`

/** Durability of a commit: `normal` survives a process crash, `full` also power loss. */
export type SynchronousMode = 'normal' | 'full'

/**
 * Open (creating if needed) a database file: WAL journal, the chosen
 * `synchronous` level, deleted content overwritten (`secure_delete`), and
 * an exclusive lock held for the life of the connection so no second
 * process can write behind the broker's back.
 */
export function openDatabase(path: string, synchronous: SynchronousMode): Database.Database {
  let db: Database.Database
  try {
    db = new Database(path, { timeout: 200 })
  } catch (err) {
    throw new StoreError(`cannot open store database ${path}`, { cause: err })
  }
  try {
    // Exclusive before WAL: the WAL index then lives in process memory
    // and no -shm file is made.
    db.pragma('locking_mode = EXCLUSIVE')
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
    db.pragma('secure_delete = ON')
    db.pragma('foreign_keys = OFF')
    // Take the lock now rather than at the first write.
    db.exec('BEGIN IMMEDIATE; COMMIT')
    migrate(db)
  } catch (err) {
    db.close()
    if (isBusy(err)) {
      throw new StoreBusyError(`store database ${path} is in use by another process`, {
        cause: err,
      })
    }
    throw new StoreError(`cannot prepare store database ${path}`, { cause: err })
  }
  return db
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version === SCHEMA_VERSION) return
  if (version > SCHEMA_VERSION) {
    throw new StoreError(`store database has schema ${version}, newer than this phimq`)
  }
  db.transaction(() => {
    if (version < 1) db.exec(SCHEMA_V1)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
  })()
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED'
}
