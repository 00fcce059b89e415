/**
 * Row shapes of the SQLite store's tables and the small pure helpers that
 * read and write them. No I/O beyond running the given statements.
 */
import type { Identity, ProtocolVersion } from '../broker/types.js'
import type { KeyState } from './crypto.js'
import type { Statements } from './sqlite-statements.js'
import type { OutboundState, SessionRecord } from './store.js'

/** Session Expiry Interval meaning "never" (MQTT 5 section 3.1.2.11.2). */
export const SESSION_EXPIRY_NEVER_SECONDS = 0xffff_ffff

export interface KeyRow {
  id: number
  tenant: string | null
  purpose: 'data' | 'index'
  state: KeyState
  created_at: number
  master_key_id: string
  wrapped: Buffer
}

export interface SessionRow {
  client_id: string
  protocol_version: ProtocolVersion
  identity: string | null
  session_expiry_seconds: number
  disconnected_at: number | null
}

export interface QueueRow {
  seq: number
  packet_id: number | null
  state: OutboundState
  expires_at: number | null
  record: Buffer
}

export interface QueueKeyRow extends QueueRow {
  client_id: string
}

export interface RetainedRow {
  topic_hash: Buffer
  record: Buffer
}

export interface WillRow {
  client_id: string
  due_at: number
  record: Buffer
}

export function deleteClient(s: Statements, clientId: string, what: { will: boolean }): void {
  s.deleteSession.run(clientId)
  s.deleteSubscriptions.run(clientId)
  s.deleteClientQueue.run(clientId)
  s.deleteClientInbound.run(clientId)
  if (what.will) s.deleteWill.run(clientId)
}

export function sessionExpiresAt(session: SessionRecord): number | undefined {
  if (session.disconnectedAt === undefined) return undefined
  if (session.sessionExpirySeconds >= SESSION_EXPIRY_NEVER_SECONDS) return undefined
  return session.disconnectedAt + session.sessionExpirySeconds * 1000
}

export function sessionOf(row: SessionRow): SessionRecord {
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

export function groupBy<R extends { client_id: string }, V>(
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
export function queueContext(clientId: string, seq: number): string {
  return `q:${seq}:${clientId}`
}

export function retainedContext(hash: Buffer): string {
  return `r:${hash.toString('hex')}`
}

export function willContext(clientId: string): string {
  return `w:${clientId}`
}
