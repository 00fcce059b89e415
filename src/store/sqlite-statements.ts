/**
 * The prepared statements of the SQLite store, made once per connection.
 */
import type BetterSqlite3 from 'better-sqlite3'

/** One prepared statement. */
export type Statement = BetterSqlite3.Statement<unknown[], unknown>

/** The SQL of every statement the store runs, by name. */
const SQL = {
  selectKeys: 'SELECT * FROM data_keys ORDER BY id',
  insertKey: `INSERT INTO data_keys (id, tenant, purpose, state, created_at, master_key_id, wrapped)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
  setKeyState: 'UPDATE data_keys SET state = ? WHERE id = ?',
  deleteKey: 'DELETE FROM data_keys WHERE id = ?',
  rewrapKey: 'UPDATE data_keys SET wrapped = ?, master_key_id = ? WHERE id = ?',
  countByKey: `SELECT key_id, count(*) AS n FROM queue GROUP BY key_id
       UNION ALL SELECT key_id, count(*) FROM retained GROUP BY key_id
       UNION ALL SELECT key_id, count(*) FROM wills GROUP BY key_id`,
  countKeyUse: `SELECT (SELECT count(*) FROM queue WHERE key_id = ?)
            + (SELECT count(*) FROM retained WHERE key_id = ?)
            + (SELECT count(*) FROM wills WHERE key_id = ?) AS n`,

  upsertSession: `INSERT INTO sessions (client_id, tenant, protocol_version, identity,
         session_expiry_seconds, disconnected_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET tenant = excluded.tenant,
         protocol_version = excluded.protocol_version, identity = excluded.identity,
         session_expiry_seconds = excluded.session_expiry_seconds,
         disconnected_at = excluded.disconnected_at, expires_at = excluded.expires_at`,
  selectSessions: 'SELECT * FROM sessions ORDER BY client_id',
  selectTenantSessions: 'SELECT client_id FROM sessions WHERE tenant IS ?',
  selectExpiredSessions:
    'SELECT client_id FROM sessions WHERE expires_at IS NOT NULL AND expires_at <= ?',
  deleteSession: 'DELETE FROM sessions WHERE client_id = ?',

  upsertSubscription: `INSERT INTO subscriptions (client_id, filter, options) VALUES (?, ?, ?)
       ON CONFLICT (client_id, filter) DO UPDATE SET options = excluded.options`,
  selectSubscriptions: 'SELECT client_id, options FROM subscriptions ORDER BY client_id, filter',
  deleteSubscription: 'DELETE FROM subscriptions WHERE client_id = ? AND filter = ?',
  deleteSubscriptions: 'DELETE FROM subscriptions WHERE client_id = ?',

  insertQueue: `INSERT OR REPLACE INTO queue (client_id, seq, packet_id, state, expires_at, key_id, record)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
  updateQueue: 'UPDATE queue SET packet_id = ?, state = ? WHERE client_id = ? AND seq = ?',
  deleteQueue: 'DELETE FROM queue WHERE client_id = ? AND seq = ?',
  selectQueueRecord: 'SELECT record FROM queue WHERE client_id = ? AND seq = ?',
  deleteClientQueue: 'DELETE FROM queue WHERE client_id = ?',
  selectQueue: `SELECT seq, packet_id, state, expires_at, record FROM queue
       WHERE client_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
  selectQueueByKey: 'SELECT * FROM queue WHERE key_id = ? LIMIT ?',
  rekeyQueue:
    'UPDATE queue SET key_id = ?, record = ? WHERE client_id = ? AND seq = ? AND key_id = ?',
  deleteQueueByKey: 'DELETE FROM queue WHERE key_id = ?',
  deleteExpiredQueue: 'DELETE FROM queue WHERE expires_at IS NOT NULL AND expires_at <= ?',

  insertInbound: 'INSERT OR IGNORE INTO inbound_qos2 (client_id, packet_id) VALUES (?, ?)',
  selectInbound: 'SELECT client_id, packet_id FROM inbound_qos2 ORDER BY client_id, packet_id',
  deleteInbound: 'DELETE FROM inbound_qos2 WHERE client_id = ? AND packet_id = ?',
  deleteClientInbound: 'DELETE FROM inbound_qos2 WHERE client_id = ?',

  upsertRetained: `INSERT INTO retained (topic_hash, expires_at, key_id, record) VALUES (?, ?, ?, ?)
       ON CONFLICT (topic_hash) DO UPDATE SET expires_at = excluded.expires_at,
         key_id = excluded.key_id, record = excluded.record`,
  selectRetained: 'SELECT topic_hash, record FROM retained',
  selectRetainedByKey: 'SELECT topic_hash, record FROM retained WHERE key_id = ? LIMIT ?',
  rekeyRetained: 'UPDATE retained SET key_id = ?, record = ? WHERE topic_hash = ? AND key_id = ?',
  deleteRetained: 'DELETE FROM retained WHERE topic_hash = ?',
  deleteRetainedByKey: 'DELETE FROM retained WHERE key_id = ?',
  deleteExpiredRetained: 'DELETE FROM retained WHERE expires_at IS NOT NULL AND expires_at <= ?',

  upsertWill: `INSERT INTO wills (client_id, due_at, expires_at, key_id, record) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET due_at = excluded.due_at,
         expires_at = excluded.expires_at, key_id = excluded.key_id, record = excluded.record`,
  selectWills: 'SELECT client_id, due_at, record FROM wills ORDER BY client_id',
  selectWillsByKey: 'SELECT client_id, due_at, record FROM wills WHERE key_id = ? LIMIT ?',
  rekeyWill: 'UPDATE wills SET key_id = ?, record = ? WHERE client_id = ? AND key_id = ?',
  deleteWill: 'DELETE FROM wills WHERE client_id = ?',
  deleteWillsByKey: 'DELETE FROM wills WHERE key_id = ?',
  deleteExpiredWills: 'DELETE FROM wills WHERE expires_at IS NOT NULL AND expires_at <= ?',
} as const

/** Every statement the store runs, prepared. */
export type Statements = { readonly [K in keyof typeof SQL]: Statement }

/** Prepare all statements on an open, migrated database. */
export function prepareStatements(db: BetterSqlite3.Database): Statements {
  const out = new Map<string, Statement>()
  for (const [name, sql] of Object.entries(SQL)) out.set(name, db.prepare(sql))
  return Object.fromEntries(out) as Statements
}
