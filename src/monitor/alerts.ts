/**
 * Anomaly alerts (C29), as an `AuditSink` wrapper: it passes every event on
 * unchanged, watches them, and when a rule fires emits an `alert.raised`
 * audit event and a log line. The core needs no change: put it outermost,
 * `new AlertingAuditSink(new SummarizingAuditSink(trail), options)`, so it
 * sees every allowed publish before summaries fold them.
 *
 * Rules and product defaults:
 * - `wildcard-subscribe`: any subscription attempt to `#`, `+/#` or
 *   `{tenant}/#`, allowed or not: at once, high.
 * - `cross-tenant`: any refusal whose rule starts with a configured prefix
 *   (`tenant.`): at once, high.
 * - `acl-denials`: more than 20 publish/subscribe/will refusals in a
 *   minute for one client.
 * - `auth-failures`: more than 10 authentication refusals at CONNECT in a
 *   minute from one source address.
 * - `qos2-spike`: QoS 2 publishes in the current minute above 5 times the
 *   per-minute mean of the 15 minutes before (and at least 10).
 * - `retained-churn`: more than 50 retained sets or clears in a minute in
 *   one tenant.
 * - `cert-expiry`: a certificate from `certificates()` expires within 30 days
 *   (checked every hour).
 * - `clock-jump`: a `clock.jumped` event: at once.
 * - `clock-unsynchronised`: a `clock.unsynchronised` event (C25): at once.
 * A rule fires at most once per subject per `cooldownSeconds`.
 */
import type { AuditEvent } from '../audit/events.js'
import { isSinkHealthy } from '../audit/health.js'
import type { AuditSink } from '../audit/sink.js'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import { maskIdentifier } from './logger.js'
import { RateWindow } from './rate-window.js'

const MINUTE_MS = 60_000
const DAY_MS = 86_400_000

/** Reason codes that mean "who you are was not accepted" at CONNECT. */
const AUTH_REASON_CODES: ReadonlySet<number> = new Set([
  0x04, // 3.1.1: bad user name or password
  0x05, // 3.1.1: not authorized
  0x86, // 5.0: Bad User Name or Password
  0x87, // 5.0: Not authorized
  0x8c, // 5.0: Bad authentication method
])

/** Thresholds; see `src/config/alerts.ts` for the config keys and defaults. */
export interface AlertThresholds {
  readonly wildcardSubscribe: boolean
  readonly crossTenantRulePrefixes: readonly string[]
  readonly aclDenialsPerMinute: number
  readonly authFailuresPerMinute: number
  readonly qos2SpikeFactor: number
  readonly qos2BaselineMinutes: number
  readonly qos2MinPerMinute: number
  readonly retainedChangesPerMinute: number
  readonly certExpiryDays: number
  readonly cooldownSeconds: number
}

export const ALERT_DEFAULTS: AlertThresholds = {
  wildcardSubscribe: true,
  crossTenantRulePrefixes: ['tenant.'],
  aclDenialsPerMinute: 20,
  authFailuresPerMinute: 10,
  qos2SpikeFactor: 5,
  qos2BaselineMinutes: 15,
  qos2MinPerMinute: 10,
  retainedChangesPerMinute: 50,
  certExpiryDays: 30,
  cooldownSeconds: 60,
}

/** A certificate the broker depends on: its name (not its subject) and expiry. */
export interface WatchedCertificate {
  readonly name: string
  /** Epoch milliseconds. */
  readonly notAfter: number
}

export type Alert = Extract<AuditEvent, { type: 'alert.raised' }>

export interface AlertingOptions {
  readonly clock?: Clock | undefined
  readonly logger?: Logger | undefined
  readonly thresholds?: Partial<AlertThresholds> | undefined
  /** Certificates to watch for expiry, asked every `certCheckMinutes` (default 60). */
  readonly certificates?: (() => readonly WatchedCertificate[]) | undefined
  readonly certCheckMinutes?: number | undefined
  /** Called with each alert after it is recorded (e.g. a webhook). */
  readonly onAlert?: ((alert: Alert) => void) | undefined
}

type SubjectKind = 'client' | 'address' | 'tenant' | 'certificate' | 'node'

/** The `AuditSink` wrapper that raises alerts. */
export class AlertingAuditSink implements AuditSink {
  readonly #inner: AuditSink
  readonly #clock: Clock
  readonly #log: Logger
  readonly #t: AlertThresholds
  readonly #onAlert: ((alert: Alert) => void) | undefined
  readonly #acl: RateWindow
  readonly #auth: RateWindow
  readonly #retained: RateWindow
  readonly #lastRaised = new Map<string, number>()
  readonly #qos2: Qos2Baseline
  readonly #certificates: (() => readonly WatchedCertificate[]) | undefined
  readonly #certCheckMs: number
  #certTimer: TimerHandle | undefined

  constructor(inner: AuditSink, options: AlertingOptions = {}) {
    this.#inner = inner
    this.#clock = options.clock ?? systemClock
    this.#log = options.logger ?? silentLogger
    this.#t = { ...ALERT_DEFAULTS, ...options.thresholds }
    this.#onAlert = options.onAlert
    this.#acl = new RateWindow({ windowMs: MINUTE_MS, limit: this.#t.aclDenialsPerMinute })
    this.#auth = new RateWindow({ windowMs: MINUTE_MS, limit: this.#t.authFailuresPerMinute })
    this.#retained = new RateWindow({
      windowMs: MINUTE_MS,
      limit: this.#t.retainedChangesPerMinute,
    })
    this.#qos2 = new Qos2Baseline(this.#t.qos2BaselineMinutes)
    this.#certificates = options.certificates
    this.#certCheckMs = (options.certCheckMinutes ?? 60) * MINUTE_MS
    if (this.#certificates) {
      this.checkCertificates()
      this.#scheduleCertCheck()
    }
  }

  /** Passes on the inner sink's health (back-pressure rule, see `trail.ts`). */
  healthy(): boolean {
    return isSinkHealthy(this.#inner)
  }

  emit(event: AuditEvent): void {
    this.#inner.emit(event)
    // Never let an alert rule break recording.
    if (event.type !== 'alert.raised') this.#watch(event)
  }

  /** Raise `cert-expiry` for each watched certificate within the warning period. */
  checkCertificates(): void {
    const now = this.#clock.now()
    for (const cert of this.#certificates?.() ?? []) {
      if (cert.notAfter - now > this.#t.certExpiryDays * DAY_MS) continue
      const daysLeft = Math.floor((cert.notAfter - now) / DAY_MS)
      // Once a day per certificate is enough.
      this.#raise('cert-expiry', 'certificate', cert.name, daysLeft, this.#t.certExpiryDays, 0, {
        severity: daysLeft <= 7 ? 'high' : 'medium',
        cooldownMs: DAY_MS,
      })
    }
  }

  async close(): Promise<void> {
    this.#certTimer?.cancel()
    await this.#inner.close()
  }

  #watch(event: AuditEvent): void {
    // The per-message events first: most are of no interest, and cost no clock read.
    if (event.type === 'message.delivered') return
    if (event.type === 'publish.allowed') {
      if (event.qos === 2) this.#qos2Publish(this.#clock.now())
      return
    }
    const now = this.#clock.now()
    switch (event.type) {
      case 'subscribe.allowed':
      case 'subscribe.denied':
        if (
          this.#t.wildcardSubscribe &&
          isBroadWildcard(event.filter, event.actor.identity?.tenant)
        ) {
          this.#raise('wildcard-subscribe', 'client', event.actor.clientId, 1, 0, 0)
        }
        if (event.type === 'subscribe.denied') {
          this.#denied(event.actor.clientId, event.rule, now)
        }
        return
      case 'publish.denied':
        this.#denied(event.actor.clientId, event.rule, now)
        return
      case 'will.denied':
        this.#denied(event.clientId, event.rule, now)
        return
      case 'connect.refused':
        this.#connectRefused(event.remoteAddress, event.reasonCode, event.rule, now)
        return
      case 'retained.set':
      case 'retained.cleared': {
        const tenant = event.actor?.identity?.tenant ?? '-'
        const n = this.#retained.hit(tenant, now)
        const limit = this.#t.retainedChangesPerMinute
        if (n > limit) this.#raise('retained-churn', 'tenant', tenant, n, limit, 60)
        return
      }
      case 'clock.jumped':
        this.#raise('clock-jump', 'node', 'clock', event.skewMs, event.limitMs, 0)
        return
      case 'clock.unsynchronised':
        // Observed: the offset when known; -1 when the tool only says "not synchronised".
        this.#raise('clock-unsynchronised', 'node', 'clock', event.offsetMs ?? -1, event.limitMs, 0)
        return
      default:
        return
    }
  }

  #denied(clientId: string, rule: string, now: number): void {
    if (this.#t.crossTenantRulePrefixes.some((p) => rule.startsWith(p))) {
      this.#raise('cross-tenant', 'client', clientId, 1, 0, 0)
    }
    const n = this.#acl.hit(clientId, now)
    const limit = this.#t.aclDenialsPerMinute
    if (n > limit)
      this.#raise('acl-denials', 'client', clientId, n, limit, 60, { severity: 'medium' })
  }

  #connectRefused(address: string, reasonCode: number, rule: string, now: number): void {
    if (!AUTH_REASON_CODES.has(reasonCode) && !rule.startsWith('auth.')) return
    const n = this.#auth.hit(address, now)
    const limit = this.#t.authFailuresPerMinute
    if (n > limit) this.#raise('auth-failures', 'address', address, n, limit, 60)
  }

  #qos2Publish(now: number): void {
    const { current, baseline } = this.#qos2.hit(now)
    if (baseline === undefined) return
    const limit = Math.max(this.#t.qos2MinPerMinute, this.#t.qos2SpikeFactor * baseline)
    if (current > limit) {
      this.#raise('qos2-spike', 'node', 'qos2', current, Math.round(limit), 60, {
        severity: 'medium',
      })
    }
  }

  #raise(
    rule: string,
    kind: SubjectKind,
    subject: string,
    observed: number,
    threshold: number,
    windowSeconds: number,
    extra: { severity?: Alert['severity']; cooldownMs?: number } = {},
  ): void {
    const now = this.#clock.now()
    const key = `${rule}\u0000${subject}`
    const cooldownMs = extra.cooldownMs ?? this.#t.cooldownSeconds * 1000
    const last = this.#lastRaised.get(key)
    if (last !== undefined && now - last < cooldownMs) return
    this.#lastRaised.set(key, now)
    this.#pruneCooldowns(now)

    const alert: Alert = {
      type: 'alert.raised',
      rule,
      severity: extra.severity ?? 'high',
      subject,
      observed,
      threshold,
      windowSeconds,
    }
    this.#inner.emit(alert)
    // Operational logs never show client ids or addresses in clear (C26).
    const shown = kind === 'client' || kind === 'address' ? maskIdentifier(subject) : subject
    this.#log.warn(
      {
        event: 'alert.raised',
        rule,
        severity: alert.severity,
        subject: shown,
        observed,
        threshold,
      },
      'alert raised',
    )
    this.#onAlert?.(alert)
  }

  #pruneCooldowns(now: number): void {
    if (this.#lastRaised.size <= 10_000) return
    for (const [key, at] of this.#lastRaised) {
      if (now - at >= DAY_MS) this.#lastRaised.delete(key)
    }
  }

  #scheduleCertCheck(): void {
    this.#certTimer = this.#clock.schedule(this.#certCheckMs, () => {
      this.checkCertificates()
      this.#scheduleCertCheck()
    })
  }
}

/** `#`, `+/#`, `+/+/#` … or `{tenant}/#`: the filters that read everything (C16). */
export function isBroadWildcard(filter: string, tenant: string | undefined): boolean {
  if (!filter.endsWith('#')) return false
  const head = filter.split('/').slice(0, -1)
  if (head.every((level) => level === '+')) return true
  return tenant !== undefined && head.length === 1 && head[0] === tenant
}

/** Per-minute QoS 2 counts: the current minute and the mean of the ones before. */
class Qos2Baseline {
  readonly #minutes: number
  #firstMinute: number | undefined
  readonly #counts = new Map<number, number>()

  constructor(minutes: number) {
    this.#minutes = minutes
  }

  hit(now: number): { current: number; baseline: number | undefined } {
    const minute = Math.floor(now / MINUTE_MS)
    this.#firstMinute ??= minute
    const current = (this.#counts.get(minute) ?? 0) + 1
    this.#counts.set(minute, current)
    for (const m of this.#counts.keys()) {
      if (m < minute - this.#minutes) this.#counts.delete(m)
    }
    // No baseline until a full history exists: a fresh broker is not a spike.
    if (minute - this.#firstMinute < this.#minutes) return { current, baseline: undefined }
    let sum = 0
    for (let m = minute - this.#minutes; m < minute; m++) sum += this.#counts.get(m) ?? 0
    return { current, baseline: sum / this.#minutes }
  }
}
