/**
 * The security side of a TLS listener, shared by `mqtts` and `wss`.
 *
 * Each connection goes through named steps in order:
 * 1. `admitArrival`: connection limits, before any handshake work.
 * 2. OpenSSL handshake with `requestCert: true, rejectUnauthorized: false`,
 *    so that a refused certificate reaches our code and is audited (C09, C13).
 * 3. `admit`: verify certificate → revocation and deny list → cipher and
 *    protocol → map identity → environment (C18) → lifetime → OCSP; one
 *    `tls.handshake` event either way.
 * 4. `track`: remember the session, so a later revocation can close it (C11).
 *
 * The guard also owns the listener's secure context: it rebuilds it when the
 * certificate, key, CA or CRL files change or the CRL refresh timer fires.
 */
import { X509Certificate } from 'node:crypto'
import type { Socket } from 'node:net'
import type {
  PeerCertificate as PeerCertificateObject,
  Server,
  TLSSocket,
  TlsOptions,
} from 'node:tls'
import type { TlsHandshakeFacts } from '../audit/events.js'
import type { AuditSink } from '../audit/sink.js'
import type { BrokerHandle, TlsFacts } from '../broker/broker-api.js'
import { type Clock, systemClock, type TimerHandle } from '../broker/clock.js'
import { type Logger, silentLogger } from '../broker/logger.js'
import { ConfigError, CrlSignatureError, PhimqError } from '../errors.js'
import { checkCertificateEnv } from '../identity/environment.js'
import { IdentityMapper, type MappedIdentity } from '../identity/mapping.js'
import { defaultDetector } from '../phi/detectors.js'
import { ConnectionLimits } from './connection-limits.js'
import { type CrlIssuer, CrlSet, type CrlSubject, crlIssuersFromPem } from './crl-set.js'
import { DenyList } from './deny-list.js'
import type { ExpiryWarnings } from './expiry-warnings.js'
import type { ResolvedTlsOptions } from './listener-options.js'
import { LiveSessions } from './live-sessions.js'
import { type NamedResponder, OcspChecker, type OcspVerdict } from './ocsp-checker.js'
import { auditCertificateName, auditSni, type TextMasker } from './peer-text.js'
import {
  type CertificateNames,
  certificateNames,
  type PeerCertificate,
  PeerViews,
} from './peer-views.js'
import { RefusalSummaries } from './refusal-summary.js'
import { FileWatcher, readCrls, readServerMaterial, type ServerMaterial } from './tls-material.js'
import { allowedCiphersFor, buildSecureContextOptions } from './tls-options.js'

const EXPIRY_CHECK_MS = 3_600_000
const ALLOWED_PROTOCOLS: ReadonlySet<string> = new Set(['TLSv1.2', 'TLSv1.3'])
/** Issuer certificates remembered from verified client chains, to check CRL signatures. */
const LEARNED_ISSUERS_MAX = 256

/** What an admitted connection hands on to the broker. */
export interface Admission {
  readonly identity: MappedIdentity
  readonly tls: TlsFacts
}

export interface TlsGuardDeps {
  audit: AuditSink
  logger?: Logger | undefined
  clock?: Clock | undefined
  denyList?: DenyList | undefined
  /** Certificate expiry warnings shared by every listener (C12); a private one otherwise. */
  expiryWarnings?: ExpiryWarnings | undefined
  /**
   * Masks PHI detector hits in text a peer chose (SNI, certificate names,
   * identity values); the policy's detectors when the server wires them,
   * else the default detectors.
   */
  maskText?: TextMasker | undefined
  /** The broker's environment, which a certificate's env attribute must match (C18). */
  environment?: string | undefined
}

export class TlsGuard {
  readonly #o: ResolvedTlsOptions
  readonly #audit: AuditSink
  readonly #log: Logger
  readonly #clock: Clock
  readonly #denyList: DenyList
  readonly #views: PeerViews
  readonly #limits: ConnectionLimits
  readonly #allowedCiphers: ReadonlySet<string>
  readonly #ocsp: OcspChecker
  readonly #sessions: LiveSessions
  readonly #mask: TextMasker
  readonly #refusals: RefusalSummaries
  readonly #environment: string | undefined
  readonly #requireEnv: boolean
  readonly #staleReported = new Set<string>()
  // CA certificates seen in verified client chains (not in the bundle when
  // it holds only the root): CRLs they issue are checked against them.
  readonly #learnedIssuers = new Map<string, CrlIssuer>()
  // Set when the CRL files were refused at start-up: no valid CRL is in force.
  #crlInvalid = false
  #server: Server | undefined
  #material: ServerMaterial
  #crls: CrlSet
  #watcher: FileWatcher | undefined
  #refreshTimer: TimerHandle | undefined
  #ocspTimer: TimerHandle | undefined
  #expiryTimer: TimerHandle | undefined
  #unsubscribeDeny: (() => void) | undefined
  // Early refusals surface again as an ECONNRESET `tlsClientError` without
  // an address; this many such errors are not audited twice.
  #earlyRefusals = 0
  #closed = false

  /** Reads the TLS files at once: a missing or bad file throws `TlsMaterialError`. */
  constructor(options: ResolvedTlsOptions, broker: BrokerHandle, deps: TlsGuardDeps) {
    this.#o = options
    this.#audit = deps.audit
    this.#clock = deps.clock ?? systemClock
    this.#log = (deps.logger ?? silentLogger).child({ listener: options.name })
    this.#denyList = deps.denyList ?? new DenyList()
    this.#mask = deps.maskText ?? ((text) => defaultDetector.maskText(text))
    this.#views = new PeerViews(new IdentityMapper(options.identityRules))
    this.#environment = deps.environment
    // C18: on by default in prod; dev keeps accepting certificates without env.
    this.#requireEnv = options.requireEnv ?? deps.environment === 'prod'
    if (this.#requireEnv && deps.environment === undefined) {
      throw new ConfigError(`listener ${options.name}: requireEnv needs the broker environment`)
    }
    this.#limits = new ConnectionLimits(options, this.#clock)
    this.#refusals = new RefusalSummaries({
      listener: options.name,
      windowSeconds: options.rateWindowSeconds,
      clock: this.#clock,
      audit: deps.audit,
    })
    this.#allowedCiphers = allowedCiphersFor(options.profile)
    this.#ocsp = new OcspChecker(options.ocsp, this.#clock)
    this.#sessions = new LiveSessions({
      listener: options.name,
      broker,
      audit: deps.audit,
      clock: this.#clock,
      expiryWarnings: deps.expiryWarnings,
    })
    this.#material = readServerMaterial({ ...options, crl: options.crl })
    this.#crls = this.#readCrlsAtStart()
    if (options.denyListFile !== undefined) this.#denyList.loadFile(options.denyListFile)
  }

  get denyList(): DenyList {
    return this.#denyList
  }

  /** Options for `tls.createServer` / `https.createServer`. */
  serverOptions(): TlsOptions {
    return {
      ...this.#secureContextOptions(),
      requestCert: true,
      // We decide from `authorizationError`, so refusals are audited (C09, C13).
      rejectUnauthorized: false,
      handshakeTimeout: this.#o.handshakeTimeoutMs,
    }
  }

  /** Wire the guard to its server: limits, handshake errors, reloads, revocation. */
  attach(server: Server): void {
    this.#server = server
    server.prependListener('connection', (socket: Socket) => this.#admitArrival(socket))
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) =>
      this.#onHandshakeError(err, socket),
    )
    const files = [this.#o.cert, this.#o.key, this.#o.ca, ...this.#o.crl]
    if (this.#o.denyListFile !== undefined) files.push(this.#o.denyListFile)
    this.#watcher = new FileWatcher(files, this.#o.reloadPollMs, (path) => this.#onFileChange(path))
    this.#unsubscribeDeny = this.#denyList.onAdded(() => this.#enforceRevocation('deny-list'))
    this.#scheduleCrlRefresh()
    this.#reportStaleCrls()
    if (this.#o.ocsp.staple) server.on('OCSPRequest', (c, i, cb) => this.#staple(c, i, cb))
    this.#scheduleOcspRecheck()
    this.#scheduleExpiryCheck()
  }

  /**
   * Step 3: decide on a completed handshake. Undefined means refused (the
   * socket is destroyed). Async only for OCSP; the socket buffers meanwhile.
   */
  async admit(socket: TLSSocket): Promise<Admission | undefined> {
    // The peer certificate is read once, in Node's plain form (its
    // X509Certificate object costs more per handshake); what follows from its
    // bytes alone (names, fields, mapping, CRL view, AIA, lifetime) is
    // remembered per certificate (`peer-views.ts`). Revocation is checked
    // every time.
    const leaf = socket.getPeerCertificate(false) as Partial<PeerCertificateObject> | null
    const der = leaf?.raw
    const view =
      der && leaf?.fingerprint256 && socket.authorized
        ? this.#views.viewOf(leaf.fingerprint256, () => readPeer(socket, der))
        : undefined
    const names = view?.names ?? (der ? certificateNames(new X509Certificate(der)) : undefined)
    const facts = this.#collectFacts(socket, names)
    const crl = view ? this.#learnIssuer(view.crl) : undefined
    const refusal = this.#checkPeer(socket, facts, names?.fingerprint256, crl)
    if (refusal !== undefined || !view || !crl) {
      return this.#refuse(socket, { ...facts, reason: refusal ?? 'NO_CLIENT_CERT' })
    }

    const { fields, mapped, issuerDer } = view
    if (!mapped.ok) return this.#refuse(socket, { ...facts, reason: mapped.reason })
    // An identity travels in every audit event of the connection: one that
    // holds PHI (even from our own CA) is refused, never logged (C21, C26).
    if (this.#holdsPhi(mapped.identity)) {
      return this.#refuse(socket, { ...facts, reason: 'IDENTITY_PHI' })
    }

    // C18: the certificate's environment must be the broker's.
    const env = checkCertificateEnv(fields.envs, this.#environment, this.#requireEnv)
    if (env !== undefined) return this.#refuse(socket, { ...facts, reason: env })

    const warnings: string[] = []
    // Only under `crlStale: allow` does a refused CRL file get this far.
    if (this.#crlInvalid) warnings.push('CRL_SIGNATURE_INVALID')
    const lifetime = this.#checkLifetime(view.lifetimeDays, mapped.identity)
    if (lifetime === 'deny') {
      return this.#refuse(socket, { ...facts, reason: 'LIFETIME_ABOVE_MAX' })
    }
    if (lifetime === 'warn') warnings.push('LIFETIME_ABOVE_MAX')

    const ocsp = await this.#checkOcsp(view.leafDer, issuerDer, { url: view.ocspResponder })
    if (socket.destroyed) return this.#refuse(socket, { ...facts, reason: 'CLIENT_CLOSED' })
    if (ocsp.refusal !== undefined) return this.#refuse(socket, { ...facts, reason: ocsp.refusal })
    if (ocsp.warning !== undefined) warnings.push(ocsp.warning)

    this.#audit.emit({
      type: 'tls.handshake',
      ...facts,
      result: 'accepted',
      identity: mapped.identity,
      ...(warnings.length > 0 ? { warnings } : {}),
    })
    this.#sessions.track(socket, mapped.identity, view, crl)
    return {
      identity: mapped.identity,
      tls: {
        protocol: facts.protocol ?? '',
        cipher: facts.cipher ?? '',
        fingerprint256: view.names.fingerprint256,
      },
    }
  }

  /** C11 OCSP step: what the verdict means under the listener's policy. */
  async #checkOcsp(
    leafDer: Uint8Array,
    issuerDer: Uint8Array | undefined,
    named: NamedResponder,
  ): Promise<{ refusal?: string; warning?: string }> {
    const policy = this.#o.ocsp
    if (policy.mode === 'off') return {}
    const verdict: OcspVerdict = await this.#ocsp.check(leafDer, issuerDer, named)
    switch (verdict) {
      case 'good':
        return {}
      case 'revoked':
        return { refusal: 'OCSP_REVOKED' }
      case 'no-responder':
        return policy.mode === 'require' ? { refusal: 'OCSP_NO_RESPONDER' } : {}
      default: {
        const reason = verdict === 'unknown' ? 'OCSP_UNKNOWN' : 'OCSP_UNAVAILABLE'
        return policy.failure === 'refuse' ? { refusal: reason } : { warning: reason }
      }
    }
  }

  /** Stop timers and watchers; open sockets are the listener's to close. */
  close(): void {
    this.#closed = true
    this.#watcher?.close()
    this.#refreshTimer?.cancel()
    this.#ocspTimer?.cancel()
    this.#expiryTimer?.cancel()
    this.#unsubscribeDeny?.()
    this.#refusals.close()
  }

  /** Step 1: limits, before the handshake costs anything. */
  #admitArrival(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown'
    const refusal = this.#limits.admit(address)
    if (refusal === undefined) {
      socket.once('close', () => this.#limits.release())
      return
    }
    this.#earlyRefusals += 1
    // The first refusal per source and window is recorded; the rest are
    // counted into one summary, so a flood cannot grow the trail.
    if (this.#refusals.admitRecord(address, refusal)) {
      this.#audit.emit({
        type: 'tls.handshake',
        listener: this.#o.name,
        remoteAddress: address,
        result: 'refused',
        reason: refusal,
      })
    }
    socket.destroy()
  }

  /** A handshake that never completed: protocol, cipher, timeout, reset. */
  #onHandshakeError(err: NodeJS.ErrnoException, socket: TLSSocket): void {
    if (socket.remoteAddress === undefined && this.#earlyRefusals > 0) {
      this.#earlyRefusals -= 1
      return
    }
    this.#audit.emit({
      type: 'tls.handshake',
      listener: this.#o.name,
      remoteAddress: socket.remoteAddress ?? 'unknown',
      result: 'refused',
      reason: err.code ?? 'HANDSHAKE_FAILED',
      sni: auditSni(socket.servername, this.#mask),
    })
    socket.destroy()
  }

  #checkPeer(
    socket: TLSSocket,
    facts: HandshakeFacts,
    fingerprint256: string | undefined,
    crl: CrlSubject | undefined,
  ): string | undefined {
    if (fingerprint256 === undefined) return 'NO_CLIENT_CERT'
    if (!socket.authorized || !crl) return String(socket.authorizationError ?? 'UNAUTHORIZED')
    if (this.#crlInvalid && this.#o.crlStale === 'refuse') return 'CRL_SIGNATURE_INVALID'
    // OpenSSL refuses a stale CRL by its own time; the broker's clock decides too.
    if (this.#o.crlStale === 'refuse' && this.#crls.stale(this.#clock.now()).length > 0) {
      return 'CRL_HAS_EXPIRED'
    }
    // Also catches what OpenSSL did not check (stale CRLs left out under
    // `allow`). Matched by issuer and serial: serials are unique per CA only.
    if (this.#crls.isRevoked(crl)) return 'CERT_REVOKED'
    if (this.#denyList.has(fingerprint256)) return 'DENY_LISTED'
    if (!ALLOWED_PROTOCOLS.has(facts.protocol ?? '')) return 'PROTOCOL_NOT_ALLOWED'
    if (!this.#allowedCiphers.has(facts.cipher ?? '')) return 'CIPHER_NOT_ALLOWED'
    return undefined
  }

  /** C12: flag client certificates that live longer than the maximum. */
  #checkLifetime(days: number, identity: MappedIdentity): 'ok' | 'warn' | 'deny' {
    const policy = this.#o.certLifetime
    const max = identity.role === 'device' ? policy.deviceMaxDays : policy.otherMaxDays
    if (days <= max + 1 / 24) return 'ok'
    return policy.action
  }

  /**
   * The facts of a completed handshake. What the peer chose (SNI, and the
   * names of a certificate that did not verify) is masked and capped
   * (`peer-text.ts`); a verified certificate's names are masked too.
   */
  #collectFacts(socket: TLSSocket, names: CertificateNames | undefined): HandshakeFacts {
    const cipher = socket.getCipher() as { standardName?: string; name?: string } | undefined
    return {
      listener: this.#o.name,
      remoteAddress: socket.remoteAddress ?? 'unknown',
      sni: auditSni(socket.servername, this.#mask),
      protocol: socket.getProtocol() ?? undefined,
      cipher: cipher?.standardName ?? cipher?.name,
      ...(names ? certificateFacts(names, this.#mask, socket.authorized) : {}),
    }
  }

  #holdsPhi(identity: MappedIdentity): boolean {
    return [identity.tenant, identity.role, identity.id].some((v) => this.#mask(v) !== v)
  }

  #refuse(socket: TLSSocket, facts: HandshakeFacts & { reason: string }): undefined {
    this.#audit.emit({ type: 'tls.handshake', ...facts, result: 'refused' })
    this.#log.info({ event: 'tls.refused', reason: facts.reason }, 'handshake refused')
    socket.destroy()
    return undefined
  }

  #scheduleExpiryCheck(): void {
    if (this.#closed) return
    this.#expiryTimer = this.#clock.schedule(EXPIRY_CHECK_MS, () => {
      for (const entry of this.#sessions.all()) this.#sessions.warnExpiry(entry)
      this.#scheduleExpiryCheck()
    })
  }

  /** Close every live session whose certificate is now revoked or deny-listed (C11). */
  #enforceRevocation(cause: 'crl' | 'deny-list'): void {
    // Nothing remembered per certificate outlives a change of revocation state.
    this.#views.clear()
    for (const entry of this.#sessions.all()) {
      const revoked = this.#denyList.has(entry.fingerprint256) || this.#crls.isRevoked(entry.crl)
      if (revoked) this.#sessions.closeRevoked(entry, cause)
    }
  }

  /** Ask OCSP again about every live session; a revoked answer closes it (C11). */
  #scheduleOcspRecheck(): void {
    if (this.#o.ocsp.mode === 'off' || this.#closed) return
    this.#ocspTimer = this.#clock.schedule(this.#o.ocsp.recheckSeconds * 1000, () => {
      void this.#recheckOcsp().finally(() => this.#scheduleOcspRecheck())
    })
  }

  async #recheckOcsp(): Promise<void> {
    for (const entry of this.#sessions.all()) {
      const verdict = await this.#ocsp.check(entry.leafDer, entry.issuerDer)
      if (verdict === 'revoked' && !entry.socket.destroyed) {
        this.#sessions.closeRevoked(entry, 'ocsp')
      }
    }
  }

  /** Staple the server certificate's OCSP status for clients that ask. */
  #staple(
    cert: Buffer,
    issuer: Buffer | null,
    done: (err: Error | null, res: Buffer | null) => void,
  ): void {
    if (!issuer) {
      done(null, null)
      return
    }
    this.#ocsp
      .stapleFor(cert, issuer)
      .then((der) => done(null, der ? Buffer.from(der) : null))
      .catch(() => done(null, null))
  }

  #onFileChange(path: string): void {
    if (this.#closed) return
    if (path === this.#o.denyListFile) {
      this.#reloadDenyList()
      return
    }
    this.#reloadContext(this.#o.crl.includes(path) ? 'crl' : 'server-cert')
  }

  #reloadDenyList(): void {
    try {
      this.#denyList.loadFile(this.#o.denyListFile as string)
      this.#views.clear()
      this.#audit.emit({ type: 'tls.material.reloaded', listener: this.#o.name, what: 'deny-list' })
    } catch (err) {
      this.#rejectMaterial('deny-list', err)
    }
  }

  /**
   * Re-read every file and swap the secure context; new handshakes use it,
   * live sessions keep theirs. A bad file keeps the old context (and a
   * half-written cert/key pair is retried at the next poll).
   */
  #reloadContext(what: 'server-cert' | 'crl'): void {
    try {
      const material = readServerMaterial(this.#o)
      const crls = readCrls(this.#o.crl, this.#crlIssuers(material))
      const options = buildSecureContextOptions(this.#pem(material, crls), this.#o)
      this.#server?.setSecureContext(options)
      this.#material = material
      this.#crls = crls
      this.#crlInvalid = false
    } catch (err) {
      // A forged or damaged CRL changes nothing: the previous list stays.
      this.#rejectMaterial(err instanceof CrlSignatureError ? 'crl' : what, err)
      return
    }
    this.#audit.emit({
      type: 'tls.material.reloaded',
      listener: this.#o.name,
      what,
      fingerprint256: this.#material.fingerprint256,
    })
    this.#log.info({ event: 'tls.reloaded', what }, 'tls material reloaded')
    this.#reportStaleCrls()
    this.#enforceRevocation('crl')
  }

  #rejectMaterial(what: string, err: unknown): void {
    const reason =
      err instanceof PhimqError
        ? `${err.code}: ${err.message}`
        : err instanceof Error
          ? err.message
          : 'unknown error'
    this.#audit.emit({ type: 'tls.material.rejected', listener: this.#o.name, what, reason })
    this.#log.error({ event: 'tls.reload.failed', what, reason }, 'tls material rejected')
  }

  /**
   * The CRL files at start-up. A CRL with a bad signature is refused; then
   * no valid CRL is in force, and `crlStale` decides: `refuse` every client
   * (`CRL_SIGNATURE_INVALID`) or `allow` them with that warning.
   */
  #readCrlsAtStart(): CrlSet {
    try {
      return readCrls(this.#o.crl, this.#crlIssuers(this.#material))
    } catch (err) {
      if (!(err instanceof CrlSignatureError)) throw err
      this.#crlInvalid = true
      this.#rejectMaterial('crl', err)
      return CrlSet.EMPTY
    }
  }

  /** Who may have signed a CRL: the bundle's CAs, learned issuers, live sessions' issuers. */
  #crlIssuers(material: ServerMaterial): CrlIssuer[] {
    const issuers = [...crlIssuersFromPem(material.ca), ...this.#learnedIssuers.values()]
    for (const entry of this.#sessions.all()) {
      if (entry.crl.issuer) issuers.push(entry.crl.issuer)
    }
    return issuers
  }

  /** A verified peer's issuer is remembered for CRL signature checks. */
  #learnIssuer(subject: CrlSubject): CrlSubject {
    const issuer = subject.issuer
    if (issuer && !this.#learnedIssuers.has(issuer.fingerprint256)) {
      if (this.#learnedIssuers.size >= LEARNED_ISSUERS_MAX) {
        const oldest = this.#learnedIssuers.keys().next().value
        if (oldest !== undefined) this.#learnedIssuers.delete(oldest)
      }
      this.#learnedIssuers.set(issuer.fingerprint256, issuer)
    }
    return subject
  }

  #scheduleCrlRefresh(): void {
    if (this.#o.crl.length === 0 || this.#closed) return
    this.#refreshTimer = this.#clock.schedule(this.#o.crlRefreshSeconds * 1000, () => {
      this.#reloadContext('crl')
      this.#scheduleCrlRefresh()
    })
  }

  /** C11: a CRL past nextUpdate raises one event per CRL version. */
  #reportStaleCrls(): void {
    for (const crl of this.#crls.stale(this.#clock.now())) {
      const key = `${crl.path}\u0000${crl.issuer}\u0000${crl.thisUpdate.toISOString()}`
      if (this.#staleReported.has(key)) continue
      this.#staleReported.add(key)
      this.#audit.emit({
        type: 'tls.crl.stale',
        listener: this.#o.name,
        path: crl.path,
        issuer: crl.issuer,
        nextUpdate: crl.nextUpdate?.toISOString() ?? '',
        action: this.#o.crlStale,
      })
      this.#log.warn({ event: 'tls.crl.stale', action: this.#o.crlStale }, 'crl past nextUpdate')
    }
  }

  #secureContextOptions(): ReturnType<typeof buildSecureContextOptions> {
    return buildSecureContextOptions(this.#pem(this.#material, this.#crls), this.#o)
  }

  /**
   * Under `crlStale: allow` a stale CRL would make OpenSSL refuse everyone,
   * so then no CRL goes to OpenSSL and our own serial check stands in.
   */
  #pem(material: ServerMaterial, crls: CrlSet) {
    const stale = crls.stale(this.#clock.now()).length > 0
    const crl = this.#o.crlStale === 'allow' && stale ? [] : crls.pems
    return { cert: material.cert, key: material.key, ca: material.ca, crl }
  }
}

type HandshakeFacts = Omit<TlsHandshakeFacts, 'result'>

function certificateFacts(
  names: CertificateNames,
  mask: TextMasker,
  verified: boolean,
): Partial<HandshakeFacts> {
  return {
    subject: auditCertificateName(names.subject, mask, verified),
    issuer: auditCertificateName(names.issuer, mask, verified),
    serial: names.serial,
    fingerprint256: names.fingerprint256,
    validFrom: isoDate(names.validFrom),
    validTo: isoDate(names.validTo),
  }
}

/** The detailed chain, read only the first time a certificate is seen. */
function readPeer(socket: TLSSocket, der: Uint8Array): PeerCertificate {
  const leaf = socket.getPeerCertificate(true)
  const issuer = leaf.issuerCertificate
  // A self-issued leaf points at itself: there is no separate issuer.
  const self = !issuer?.raw || issuer.fingerprint256 === leaf.fingerprint256
  return { der, issuerDer: self ? undefined : issuer.raw }
}

function isoDate(text: string): string | undefined {
  const ms = Date.parse(text)
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString()
}
