/**
 * The live TLS sessions of one listener, by certificate fingerprint, so
 * revocation can bite them (control C11) and expiry can be warned about
 * (C12). Closing goes through the broker: DISCONNECT 0x98 and no will.
 */
import type { TLSSocket } from 'node:tls'
import type { AuditSink } from '../audit/sink.js'
import type { BrokerHandle } from '../broker/broker-api.js'
import type { Clock } from '../broker/clock.js'
import type { MappedIdentity } from '../identity/mapping.js'
import { ReasonCode } from '../protocol/reason-codes.js'
import type { CrlSubject } from './crl-set.js'
import { ExpiryWarnings } from './expiry-warnings.js'
import type { PeerView } from './peer-views.js'

/** What a session keeps of the certificate it showed. */
export type TrackedCertificate = Pick<PeerView, 'names' | 'leafDer' | 'issuerDer' | 'notAfterMs'>

/** After DISCONNECT 0x98, the socket is destroyed if still open (C11: closed within 1 s). */
const REVOKE_DESTROY_AFTER_MS = 500

/** One admitted connection and the certificate it showed. */
export interface LiveSession {
  readonly socket: TLSSocket
  /** The object handed to the broker: the core keeps it, so it finds this session's clients. */
  readonly identity: MappedIdentity
  readonly serial: string
  readonly fingerprint256: string
  readonly remoteAddress: string
  readonly leafDer: Uint8Array
  readonly issuerDer: Uint8Array | undefined
  /** Serial and issuer, for CRL checks by issuer and serial (C11). */
  readonly crl: CrlSubject
  readonly notAfterMs: number
}

export interface LiveSessionsDeps {
  listener: string
  broker: BrokerHandle
  audit: AuditSink
  clock: Clock
  /** Shared by every listener so a certificate is warned about once per step (C12). */
  expiryWarnings?: ExpiryWarnings | undefined
}

export class LiveSessions {
  readonly #listener: string
  readonly #broker: BrokerHandle
  readonly #audit: AuditSink
  readonly #clock: Clock
  readonly #expiry: ExpiryWarnings
  readonly #tracked = new Map<string, Set<LiveSession>>()

  constructor(deps: LiveSessionsDeps) {
    this.#listener = deps.listener
    this.#broker = deps.broker
    this.#audit = deps.audit
    this.#clock = deps.clock
    this.#expiry =
      deps.expiryWarnings ?? new ExpiryWarnings({ audit: deps.audit, clock: deps.clock })
  }

  /** A snapshot: safe to close sessions while iterating. */
  all(): LiveSession[] {
    return [...this.#tracked.values()].flatMap((set) => [...set])
  }

  /** Remember an admitted session until its socket closes; warns at once if it expires soon. */
  track(
    socket: TLSSocket,
    identity: MappedIdentity,
    cert: TrackedCertificate,
    crl: CrlSubject,
  ): LiveSession {
    const entry: LiveSession = {
      socket,
      identity,
      serial: cert.names.serial,
      fingerprint256: cert.names.fingerprint256,
      remoteAddress: socket.remoteAddress ?? 'unknown',
      leafDer: cert.leafDer,
      issuerDer: cert.issuerDer,
      crl,
      notAfterMs: cert.notAfterMs,
    }
    let set = this.#tracked.get(entry.fingerprint256)
    if (!set) {
      set = new Set()
      this.#tracked.set(entry.fingerprint256, set)
    }
    set.add(entry)
    socket.once('close', () => this.untrack(entry))
    this.warnExpiry(entry)
    return entry
  }

  /** C12: one `cert.expiring` event per certificate and warning step crossed. */
  warnExpiry(entry: LiveSession): void {
    this.#expiry.check({
      source: 'connected',
      listener: this.#listener,
      fingerprint256: entry.fingerprint256,
      serial: entry.serial,
      identity: { tenant: entry.identity.tenant, role: entry.identity.role, id: entry.identity.id },
      notAfterMs: entry.notAfterMs,
    })
  }

  /** Forget a session (its socket closed, or it was closed for revocation). */
  untrack(entry: LiveSession): void {
    const set = this.#tracked.get(entry.fingerprint256)
    set?.delete(entry)
    if (set?.size === 0) this.#tracked.delete(entry.fingerprint256)
  }

  /**
   * Close a session whose certificate is revoked: DISCONNECT 0x98 through
   * the broker (no will), one `tls.session.revoked` event, the socket
   * destroyed at once if no client had connected, else after 500 ms if open.
   */
  closeRevoked(entry: LiveSession, cause: string): void {
    this.untrack(entry)
    // The core keeps the identity object it was handed, so identity by
    // reference finds exactly this certificate's clients (not a renewed twin).
    const clientIds = this.#broker
      .listClients((c) => c.identity === entry.identity)
      .filter((clientId) =>
        // 5.0: DISCONNECT 0x98; the will is not sent.
        this.#broker.disconnectClient(clientId, ReasonCode.AdministrativeAction, {
          sendWill: false,
        }),
      )
    this.#audit.emit({
      type: 'tls.session.revoked',
      listener: this.#listener,
      remoteAddress: entry.remoteAddress,
      fingerprint256: entry.fingerprint256,
      serial: entry.serial,
      cause,
      clientIds,
    })
    if (clientIds.length === 0) {
      // No CONNECT yet: nothing to tell the client, no will to suppress.
      entry.socket.destroy()
      return
    }
    this.#clock.schedule(REVOKE_DESTROY_AFTER_MS, () => {
      if (!entry.socket.destroyed) entry.socket.destroy()
    })
  }
}
