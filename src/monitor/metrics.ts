/**
 * Prometheus metrics (prom-client): names `phimq_*` in base units, `_total`
 * on counters. Labels are small fixed sets (listener name, QoS, action,
 * rule name, certificate name): never a client id or pseudonym.
 *
 * Most counts come from audit events through `MetricsAuditSink`; the few
 * facts that are not audit events (queue depth, inflight, store latency)
 * are set by the core through the methods below.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { AuditEvent } from '../audit/events.js'
import { isSinkHealthy } from '../audit/health.js'
import type { AuditSink } from '../audit/sink.js'

/** Label values outside this shape become `other`: ids never slip in as labels. */
const SAFE_LABEL = /^[a-z0-9][a-z0-9._-]{0,63}$/i

function label(value: string): string {
  return SAFE_LABEL.test(value) ? value : 'other'
}

function qosLabel(qos: number): string {
  return qos === 1 || qos === 2 ? String(qos) : '0'
}

/**
 * Per-message counts kept as plain numbers and added to their prom-client
 * counters when the registry is read: `Counter.inc` with labels hashes the
 * labels on every call, a visible cost at 100k messages a second (issue #7).
 */
class TrafficTally {
  readonly messages = [0, 0, 0]
  bytes = 0

  add(qos: number, bytes: number): void {
    const i = qos === 1 || qos === 2 ? qos : 0
    this.messages[i] = (this.messages[i] as number) + 1
    this.bytes += bytes
  }

  /** Move the tally into the counters and start again from zero. */
  drainInto(messages: Counter, bytes: Counter): void {
    for (let qos = 0; qos < 3; qos++) {
      const n = this.messages[qos] as number
      if (n === 0) continue
      messages.inc({ qos: qosLabel(qos) }, n)
      this.messages[qos] = 0
    }
    if (this.bytes > 0) bytes.inc(this.bytes)
    this.bytes = 0
  }
}

/** Seconds buckets for write latencies: 0.1 ms to 2.5 s. */
const LATENCY_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5]

export interface MetricsOptions {
  /** Also export Node process metrics as `phimq_process_*` and `phimq_nodejs_*`. Default true. */
  readonly processMetrics?: boolean | undefined
}

/** The broker's metrics, on their own registry. */
export class Metrics {
  readonly registry = new Registry()
  readonly #connections: Gauge
  readonly #connectionsTotal: Counter
  readonly #messagesIn: Counter
  readonly #messagesOut: Counter
  readonly #bytesIn: Counter
  readonly #bytesOut: Counter
  readonly #denials: Counter
  readonly #queued: Gauge
  readonly #inflight: Gauge
  readonly #storeLatency: Histogram
  readonly #auditLatency: Histogram
  readonly #auditRecords: Counter
  readonly #auditHealthy: Gauge
  readonly #certExpiry: Gauge
  readonly #alerts: Counter
  #auditSink: AuditSink | undefined
  readonly #in = new TrafficTally()
  readonly #out = new TrafficTally()

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry]
    this.#connections = new Gauge({
      name: 'phimq_connections',
      help: 'Open client connections',
      labelNames: ['listener'],
      registers,
    })
    this.#connectionsTotal = new Counter({
      name: 'phimq_connections_total',
      help: 'CONNECT attempts by listener and result (accepted, refused)',
      labelNames: ['listener', 'result'],
      registers,
    })
    this.#messagesIn = new Counter({
      name: 'phimq_messages_received_total',
      help: 'PUBLISH packets accepted from clients, by QoS',
      labelNames: ['qos'],
      registers,
      collect: () => this.#in.drainInto(this.#messagesIn, this.#bytesIn),
    })
    this.#messagesOut = new Counter({
      name: 'phimq_messages_sent_total',
      help: 'PUBLISH packets delivered to subscribers, by QoS',
      labelNames: ['qos'],
      registers,
      collect: () => this.#out.drainInto(this.#messagesOut, this.#bytesOut),
    })
    this.#bytesIn = new Counter({
      name: 'phimq_received_payload_bytes_total',
      help: 'Payload bytes accepted from clients',
      registers,
      collect: () => this.#in.drainInto(this.#messagesIn, this.#bytesIn),
    })
    this.#bytesOut = new Counter({
      name: 'phimq_sent_payload_bytes_total',
      help: 'Payload bytes delivered to subscribers',
      registers,
      collect: () => this.#out.drainInto(this.#messagesOut, this.#bytesOut),
    })
    this.#denials = new Counter({
      name: 'phimq_denials_total',
      help: 'Refusals by action (connect, publish, subscribe, will) and rule',
      labelNames: ['action', 'reason'],
      registers,
    })
    this.#queued = new Gauge({
      name: 'phimq_queued_messages',
      help: 'Messages waiting in offline queues, all sessions',
      registers,
    })
    this.#inflight = new Gauge({
      name: 'phimq_inflight_messages',
      help: 'QoS 1 and 2 messages sent and not yet acknowledged, all sessions',
      registers,
    })
    this.#storeLatency = new Histogram({
      name: 'phimq_store_commit_seconds',
      help: 'Duration of one group commit of the store (one transaction)',
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.#auditLatency = new Histogram({
      name: 'phimq_audit_write_duration_seconds',
      help: 'Time to write one batch of audit records to disk',
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.#auditRecords = new Counter({
      name: 'phimq_audit_records_written_total',
      help: 'Audit records written to the trail',
      registers,
    })
    this.#auditHealthy = new Gauge({
      name: 'phimq_audit_healthy',
      help: '1 while the audit trail can write, 0 while the broker refuses new work',
      registers,
      collect: () => {
        if (this.#auditSink) this.#auditHealthy.set(isSinkHealthy(this.#auditSink) ? 1 : 0)
      },
    })
    this.#certExpiry = new Gauge({
      name: 'phimq_certificate_expiry_timestamp_seconds',
      help: 'Expiry (Unix seconds) of each listener server certificate and CA certificate',
      labelNames: ['listener', 'cert'],
      registers,
    })
    this.#alerts = new Counter({
      name: 'phimq_alerts_total',
      help: 'Alerts raised, by rule',
      labelNames: ['rule'],
      registers,
    })
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'phimq_' })
    }
  }

  /** Report the health of this sink as `phimq_audit_healthy`. */
  watchAuditSink(sink: AuditSink): void {
    this.#auditSink = sink
  }

  connectionOpened(listener: string): void {
    this.#connections.inc({ listener: label(listener) })
    this.#connectionsTotal.inc({ listener: label(listener), result: 'accepted' })
  }

  connectionClosed(listener: string): void {
    this.#connections.dec({ listener: label(listener) })
  }

  connectionRefused(listener: string, rule: string): void {
    this.#connectionsTotal.inc({ listener: label(listener), result: 'refused' })
    this.denied('connect', rule)
  }

  messageReceived(qos: number, bytes: number): void {
    this.#in.add(qos, bytes)
  }

  messageSent(qos: number, bytes: number): void {
    this.#out.add(qos, bytes)
  }

  denied(action: 'connect' | 'publish' | 'subscribe' | 'will', rule: string): void {
    this.#denials.inc({ action, reason: label(rule) })
  }

  setQueuedMessages(count: number): void {
    this.#queued.set(count)
  }

  setInflightMessages(count: number): void {
    this.#inflight.set(count)
  }

  /** Matches `Store.observeCommits`: one observation per committed batch. */
  observeStoreCommit(seconds: number): void {
    this.#storeLatency.observe(seconds)
  }

  /** Matches `TrailOptions.onWrite`: records in the batch and milliseconds. */
  observeAuditWrite(records: number, ms: number): void {
    this.#auditLatency.observe(ms / 1000)
    this.#auditRecords.inc(records)
  }

  /**
   * Replace the certificate expiry series with `certs` (certificates that
   * left a bundle disappear). `cert` is `server` or `ca.<n>`.
   */
  setCertificateExpiries(
    certs: ReadonlyArray<{ listener: string; cert: string; notAfter: number }>,
  ): void {
    this.#certExpiry.reset()
    for (const c of certs) {
      const labels = { listener: label(c.listener), cert: label(c.cert) }
      this.#certExpiry.set(labels, Math.floor(c.notAfter / 1000))
    }
  }

  alertRaised(rule: string): void {
    this.#alerts.inc({ rule: label(rule) })
  }

  readonly #collectors: Array<() => void> = []

  /** Run `fn` before each render, to read gauges that are cheaper to pull than to push. */
  onCollect(fn: () => void): void {
    this.#collectors.push(fn)
  }

  /** The text exposition format, for `/metrics`. */
  render(): Promise<string> {
    for (const collect of this.#collectors) collect()
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}

/**
 * An `AuditSink` wrapper that counts events into `Metrics` and passes them
 * on. Place it outside `SummarizingAuditSink` so it sees every message.
 */
export class MetricsAuditSink implements AuditSink {
  readonly #inner: AuditSink
  readonly #metrics: Metrics

  constructor(inner: AuditSink, metrics: Metrics) {
    this.#inner = inner
    this.#metrics = metrics
  }

  healthy(): boolean {
    return isSinkHealthy(this.#inner)
  }

  emit(event: AuditEvent): void {
    this.#inner.emit(event)
    this.#count(event)
  }

  close(): Promise<void> {
    return this.#inner.close()
  }

  #count(event: AuditEvent): void {
    const m = this.#metrics
    switch (event.type) {
      case 'client.connected':
        m.connectionOpened(event.actor.listener)
        return
      case 'client.disconnected':
        m.connectionClosed(event.actor.listener)
        return
      case 'connect.refused':
        m.connectionRefused(event.listener, event.rule)
        return
      case 'publish.allowed':
        m.messageReceived(event.qos, event.bytes)
        return
      case 'message.delivered':
        m.messageSent(event.qos, event.bytes)
        return
      case 'publish.denied':
        m.denied('publish', event.rule)
        return
      case 'subscribe.denied':
        m.denied('subscribe', event.rule)
        return
      case 'will.denied':
        m.denied('will', event.rule)
        return
      case 'alert.raised':
        m.alertRaised(event.rule)
        return
      default:
        return
    }
  }
}
