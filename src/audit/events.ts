/**
 * Audit events: one typed union keyed by `type`. Producers fill the fields
 * below; the sink stamps `time`, `seq` and `node`. No event ever holds
 * payload bytes; topics are masked by the producer when a PHI detector
 * flags them.
 */
import type { Identity } from '../broker/types.js'

/** Who did it: the client as the broker knows it. */
export interface Actor {
  readonly clientId: string
  readonly identity?: Identity | undefined
  readonly listener: string
  readonly remoteAddress: string
}

interface Base<T extends string> {
  readonly type: T
}

export type AuditEvent =
  | (Base<'client.connected'> & {
      actor: Actor
      protocolVersion: number
      cleanStart: boolean
      sessionPresent: boolean
      sessionExpirySeconds: number
    })
  | (Base<'client.disconnected'> & {
      actor: Actor
      /** `client` (DISCONNECT), `server`, `keepalive`, `socket`, `takeover`, `protocol`. */
      cause: string
      reasonCode?: number | undefined
    })
  | (Base<'connect.refused'> & {
      remoteAddress: string
      listener: string
      clientId?: string | undefined
      /** SHA-256 fingerprint of the client certificate, on TLS listeners (C10). */
      fingerprint?: string | undefined
      reasonCode: number
      rule: string
    })
  | (Base<'protocol.violation'> & {
      remoteAddress: string
      listener: string
      clientId?: string | undefined
      reasonCode: number
      /** The rule broken, e.g. `MQTT-3.3.2-2`. */
      rule: string
    })
  | (Base<'publish.denied'> & {
      actor: Actor
      topic: string
      qos: number
      retain: boolean
      reasonCode: number
      rule: string
    })
  | (Base<'subscribe.allowed'> & { actor: Actor; filter: string; qos: number })
  | (Base<'subscribe.denied'> & {
      actor: Actor
      filter: string
      reasonCode: number
      rule: string
    })
  | (Base<'unsubscribe'> & { actor: Actor; filter: string })
  | (Base<'retained.set'> & { actor?: Actor | undefined; topic: string; bytes: number })
  | (Base<'retained.cleared'> & { actor?: Actor | undefined; topic: string })
  | (Base<'session.taken-over'> & { actor: Actor })
  | (Base<'session.expired'> & { clientId: string })
  | (Base<'message.dropped'> & {
      clientId: string
      topic: string
      /** `queue-full`, `expired`, `denied`, `too-large`, `receive-maximum` */
      reason: string
    })
  | (Base<'will.published'> & { clientId: string; topic: string })
  | (Base<'will.denied'> & { clientId: string; topic: string; rule: string })
  /** A tenant's data keys were destroyed (crypto-erase); `tenant` absent = the default key. */
  | (Base<'store.tenant-erased'> & {
      tenant?: string | undefined
      keys: number
      records: number
      sessions: number
    })
  | (Base<'store.key-rotated'> & { tenant?: string | undefined; keyId: number })
  /** Master key ids are fingerprints, never key material. */
  | (Base<'store.master-key-rotated'> & { from: string; to: string; keys: number })
  | (Base<'store.reencrypted'> & { records: number; dropped: number; deletedKeys: number[] })
  /** One allowed inbound PUBLISH (per-message mode); the payload only as a length. */
  | (Base<'publish.allowed'> & {
      actor: Actor
      topic: string
      qos: number
      retain: boolean
      bytes: number
    })
  /** One delivery to a subscriber (per-message mode). */
  | (Base<'message.delivered'> & { actor: Actor; topic: string; qos: number; bytes: number })
  /**
   * Allowed publishes or deliveries of one client on one topic during one
   * minute (summary mode, the default): enough to scope a breach.
   */
  | (Base<'traffic.summary'> & {
      /** `in` sums `publish.allowed`, `out` sums `message.delivered`. */
      direction: 'in' | 'out'
      clientId: string
      identityId?: string | undefined
      tenant?: string | undefined
      topic: string
      /** RFC 3339 UTC start (inclusive) and end (exclusive) of the window. */
      from: string
      to: string
      messages: number
      bytes: number
      /** Message counts by QoS 0, 1, 2. */
      byQos: [number, number, number]
    })
  /** An alert rule fired (C29). */
  | (Base<'alert.raised'> & {
      /** Stable rule name, e.g. `acl-denials`. */
      rule: string
      severity: 'high' | 'medium' | 'low'
      /** What the rule counts by: a client id, source address, tenant or certificate name. */
      subject: string
      observed: number
      threshold: number
      /** Window of the count, in seconds; 0 for single-event rules. */
      windowSeconds: number
    })
  /** The wall clock moved against the monotonic clock by more than the limit. */
  | (Base<'clock.jumped'> & { skewMs: number; limitMs: number })
  /**
   * Host clock synchronisation (C25), from `chronyc` or `timedatectl`: at
   * start, and whenever it becomes synchronised again or unknown.
   */
  | (Base<'clock.sync-status'> & ClockSyncFacts)
  /** The host clock is not synchronised, or its offset is above the limit (C25). */
  | (Base<'clock.unsynchronised'> & ClockSyncFacts)
  /** The audit trail opened: the clock source and the first segment. */
  | (Base<'audit.started'> & {
      clockSource: string
      segment: string
      /**
       * The broker environment (`dev`, `test`, `prod`) of the process that
       * opened the trail: `phimq audit --no-auditor` trusts this, not the
       * config it is given (C27).
       */
      environment?: string | undefined
      /** Absolute path of the config file that process started with (C27). */
      config?: string | undefined
      /** After a crash: the segment left without a final checkpoint. */
      recoveredSegment?: string | undefined
      /** After a crash: bytes at its end without a newline (a torn write), cut off. */
      tornBytes?: number | undefined
      /**
       * After a crash: records of that segment after its last checkpoint,
       * unsigned until this start sealed the segment with a recovery checkpoint.
       */
      unsignedRecords?: number | undefined
    })
  /** An expired segment was deleted by retention (C27). */
  | (Base<'audit.segment-deleted'> & {
      segment: string
      /** SHA-256 of the segment's last record line, so the chain stays checkable. */
      lastHash: string
      lastTime: string
      retentionDays: number
    })
  /**
   * Someone read, or tried to read, the trail with `phimq audit verify`
   * or `search` (C27): who (OS user and auditor), when, what they asked
   * for (topics masked), and whether the auditor check let them.
   */
  | (Base<'audit.read'> & {
      /** `unknown` when a pending read file could not be parsed. */
      command: 'verify' | 'search' | 'unknown'
      /** `denied`: nothing was read. */
      result: 'granted' | 'denied'
      /** The `--auditor` name given, if any (checked or not: see `reason`), PHI masked. */
      auditor?: string | undefined
      /** Why a read was denied. */
      reason?: AuditReadDenial | undefined
      /** `--no-auditor` in a `dev` environment: read without the auditor check. */
      devBypass?: boolean | undefined
      user: string
      uid?: number | undefined
      pid: number
      /** RFC 3339: when the command ran. */
      requestedAt: string
      filters?:
        | {
            from?: string | undefined
            to?: string | undefined
            types?: string[] | undefined
            /** Masked by the PHI detectors. */
            client?: string | undefined
            /** Masked by the PHI detectors. */
            topic?: string | undefined
          }
        | undefined
      /** `verify --key`: checked against an outside trusted key. */
      trustedKey?: boolean | undefined
    })
  /** The trail could not write; records are kept in memory meanwhile. */
  | (Base<'audit.write-failed'> & { code: string; bufferedRecords: number })
  /** The trail could write again after a failure. */
  | (Base<'audit.write-recovered'> & {
      failedForMs: number
      /** Records refused because the memory buffer was full meanwhile. */
      lostRecords: number
    })
  /** A client reached for another tenant's topics (C18); refused, raises an alert. */
  | (Base<'tenant.cross-tenant'> & {
      actor: Actor
      /** `connect` (will), `publish` or `subscribe`. */
      op: string
      /** Topic or filter, masked by the PHI detectors. */
      topic: string
      rule: string
      severity: 'high'
    })
  /**
   * At start in `prod`: a setting that weakens a control, accepted but
   * recorded (see src/config/prod-checks.ts).
   */
  | (Base<'config.weakened'> & {
      environment: string
      /** Key path, e.g. `listeners.devices.clientIdBinding`. */
      setting: string
      value: string
      /** The compliance control weakened, e.g. `C10`. */
      control: string
    })
  /** A new topic policy is in force (C15). */
  | (Base<'policy.reloaded'> & {
      version: number
      /** Names of rules, classes and key tenants added, removed or changed. */
      changes: Record<string, string[]>
    })
  /** A policy reload failed validation; the old policy stays in force. */
  /**
   * A reload (SIGHUP) found the config file unusable: unreadable, not
   * YAML, or failing the schema. Nothing changed. One per reload attempt.
   */
  | (Base<'config.reload-refused'> & {
      /** The error code, e.g. `PHIMQ_CONFIG_INVALID`. */
      code: string
      /** Where and what kind: key path, line, column, issue code; never the file's content. */
      problems: Array<{ key?: string; line?: number; column?: number; code: string }>
    })
  | (Base<'policy.reload-refused'> & {
      /** Why, one line per problem; config paths, never topic values unmasked. */
      problems: string[]
    })
  /** A stored subscription the gate no longer allows, removed (or its QoS lowered). */
  | (Base<'subscription.revoked'> & {
      clientId: string
      /** Masked by the PHI detectors. */
      filter: string
      /** The QoS it keeps, or absent when removed. */
      loweredTo?: number | undefined
      rule: string
      /** What prompted the check: `policy.reloaded`, `session.resumed`. */
      cause: string
    })
  | (Base<'tls.handshake'> & TlsHandshakeFacts)
  /**
   * Connections refused before the handshake (`RATE_LIMITED`,
   * `MAX_CONNECTIONS`) from one source during one window, after the first,
   * which has its own `tls.handshake` event: a flood is counted, not
   * recorded one by one (C25).
   */
  | (Base<'tls.refused.summary'> & {
      listener: string
      /** The source address, or `other` once too many sources are tracked at once. */
      remoteAddress: string
      reason: string
      count: number
      /** RFC 3339 UTC start (inclusive) and end (exclusive) of the window. */
      from: string
      to: string
    })
  | (Base<'tls.session.revoked'> & {
      listener: string
      remoteAddress: string
      fingerprint256: string
      serial: string
      /** `crl`, `deny-list` or `ocsp`. */
      cause: string
      /** Live MQTT clients closed with DISCONNECT 0x98; empty if none had connected yet. */
      clientIds: string[]
    })
  | (Base<'tls.crl.stale'> & {
      listener: string
      path: string
      issuer: string
      nextUpdate: string
      /** `refuse` (fail closed) or `allow`. */
      action: string
    })
  | (Base<'tls.material.reloaded'> & {
      listener: string
      /** `server-cert` (with key, CA and CRLs), `crl` or `deny-list`. */
      what: string
      /** Of the server certificate now served. */
      fingerprint256?: string | undefined
    })
  | (Base<'tls.material.rejected'> & { listener: string; what: string; reason: string })
  /** A certificate crossed a warning step before its expiry (C12): once per certificate and step. */
  | (Base<'cert.expiring'> & {
      /** `connected`: seen on a live TLS session; `issued`: in the built-in CA's inventory. */
      source: 'connected' | 'issued'
      /** The listener a connected certificate came in on. */
      listener?: string | undefined
      /** The CA directory (relative to the data directory) of an issued certificate. */
      ca?: string | undefined
      fingerprint256: string
      serial: string
      identity?: Identity | undefined
      /** RFC 3339. */
      notAfter: string
      daysLeft: number
      /** The warning step crossed: 30, 7 or 1 by default (`audit.certExpiry.warningDays`). */
      thresholdDays: number
    })

/**
 * One TLS handshake as control C13 records it: certificate fields only, no
 * private data. Fields a failed handshake never reached are absent.
 */
export interface TlsHandshakeFacts {
  listener: string
  remoteAddress: string
  /** `accepted` or `refused`. */
  result: 'accepted' | 'refused'
  /**
   * Why it was refused: an OpenSSL verify code (`CERT_REVOKED`,
   * `CERT_HAS_EXPIRED`), a Node error code (`ERR_SSL_NO_SHARED_CIPHER`), or
   * ours (`NO_CLIENT_CERT`, `DENY_LISTED`, `IDENTITY_UNMAPPED`, `RATE_LIMITED`).
   */
  reason?: string | undefined
  sni?: string | undefined
  protocol?: string | undefined
  cipher?: string | undefined
  subject?: string | undefined
  issuer?: string | undefined
  serial?: string | undefined
  fingerprint256?: string | undefined
  /** RFC 3339. */
  validFrom?: string | undefined
  validTo?: string | undefined
  identity?: Identity | undefined
  /** Accepted with a caveat, e.g. `LIFETIME_ABOVE_MAX`. */
  warnings?: string[] | undefined
}

export type AuditEventType = AuditEvent['type']

/** An event as stored: stamped by the sink. */
export type StampedAuditEvent = AuditEvent & {
  /** RFC 3339 UTC with milliseconds. */
  readonly time: string
  /** Monotonic per node. */
  readonly seq: number
  readonly node: string
}

/** Why `phimq audit` refused a read (C27). */
export type AuditReadDenial =
  /** No `--auditor` given, and no dev bypass. */
  | 'no-auditor'
  /** No config owns the trail, so no auditor could be checked. */
  | 'no-owner'
  /** `--no-auditor` outside `environment: dev`. */
  | 'bypass-refused'
  /** No password or no one-time code was given. */
  | 'no-credentials'
  | 'unknown-auditor'
  | 'bad-password'
  | 'bad-otp'
  /** A code whose TOTP step was already used (RFC 6238 §5.2). */
  | 'otp-reused'
  /** The auditor's record is readable or writable by group or others. */
  | 'record-unsafe'

/** What a clock synchronisation probe found, judged against the limit. */
export interface ClockSyncFacts {
  /** The tool asked: `chronyc`, `timedatectl`, or `none` when neither answered. */
  source: 'chronyc' | 'timedatectl' | 'none'
  status: 'synchronised' | 'unsynchronised' | 'unknown'
  /** Whether the tool said the clock is synchronised. */
  synchronised?: boolean | undefined
  /** Offset from the time source, when the tool reports one (chronyc). */
  offsetMs?: number | undefined
  limitMs: number
}
