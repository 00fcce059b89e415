/**
 * Builds the audit sink chain from the config, for `src/server.ts`:
 *
 *   core -> AlertingAuditSink -> MetricsAuditSink -> SummarizingAuditSink -> base
 *
 * where base is the trail (default), a JSON lines file, or memory. Alerts
 * and metrics sit outside the summarizer so they see every message.
 */
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import type { AuditExporterConfig } from '../config/audit.js'
import type { Config } from '../config/schema.js'
import { AuditExportError } from '../errors.js'
import { AlertingAuditSink, type WatchedCertificate } from '../monitor/alerts.js'
import { ClockJumpDetector } from '../monitor/clock-jump.js'
import { ClockSyncMonitor, type ClockSyncProbe } from '../monitor/clock-sync.js'
import { type Metrics, MetricsAuditSink } from '../monitor/metrics.js'
import { AlertWebhook } from '../monitor/webhook.js'
import { ingestPendingReads, PENDING_READS_POLL_MS } from './access.js'
import { type AuditExporter, FileExporter } from './exporters.js'
import type { HealthReporting } from './health.js'
import { OtlpHttpExporter } from './otlp-http.js'
import { type AuditSink, JsonLinesAuditSink, MemoryAuditSink } from './sink.js'
import { SummarizingAuditSink } from './summarize.js'
import { SyslogTlsExporter } from './syslog-tls.js'
import { TrailAuditSink } from './trail.js'

export interface AuditPipelineOptions {
  readonly config: Config
  /** Absolute data directory (`LoadedConfig.dataDir`). */
  readonly dataDir: string
  /**
   * Absolute path of the config file (`LoadedConfig.source`), recorded in
   * `audit.started` with the environment: `phimq audit` reads only with
   * the config the trail's broker last started with (C27).
   */
  readonly configSource?: string | undefined
  readonly clock?: Clock | undefined
  readonly logger?: Logger | undefined
  /** When given, events are counted into it and it reports the trail's health. */
  readonly metrics?: Metrics | undefined
  /** Certificates the cert-expiry alert watches. */
  readonly certificates?: (() => readonly WatchedCertificate[]) | undefined
  /**
   * Host clock sync probe (C25; `probeHostClock` in the broker). Without
   * one (CLI, tests) the host clock is not watched.
   */
  readonly clockSyncProbe?: ClockSyncProbe | undefined
  /**
   * Masks the topics of traffic summaries (C21, C26); the broker passes
   * the policy gate's `maskTopic`. Default: the default PHI detectors.
   */
  readonly maskTopic?: ((topic: string) => string) | undefined
}

export interface AuditPipeline {
  /** The sink to hand to the broker. */
  readonly sink: AuditSink
  /** The trail, when `audit.sink` is `trail`. */
  readonly trail: TrailAuditSink | undefined
  /** The in-memory base sink, when `audit.sink` is `memory`. */
  readonly memory: MemoryAuditSink | undefined
  /**
   * Back-pressure rule: false while the trail cannot write and
   * `audit.onWriteFailure` is `refuse`. The broker must then refuse new
   * connections (CONNACK 0x88 Server unavailable / 3.1.1 code 3) and
   * publishes (0x80 / disconnect for QoS 0) until it is true again.
   */
  acceptingWork(): boolean
  close(): Promise<void>
}

/** Build the sink chain described by `config.audit`, `alerts` and `metrics`. */
export function createAuditPipeline(options: AuditPipelineOptions): AuditPipeline {
  const { config, dataDir } = options
  const clock = options.clock ?? systemClock
  const logger = options.logger ?? silentLogger
  const at = (p: string) => (isAbsolute(p) ? p : resolve(dataDir, p))
  const audit = config.audit

  let trail: TrailAuditSink | undefined
  let memory: MemoryAuditSink | undefined
  let base: AuditSink
  if (audit.sink === 'trail') {
    trail = new TrailAuditSink({
      dir: at(audit.trail.dir),
      keyPath: at(audit.trail.keyFile),
      nodeId: config.nodeId,
      environment: config.environment,
      configSource: options.configSource,
      clock,
      logger,
      maxSegmentBytes: audit.trail.maxSegmentBytes,
      rotateMinutes: audit.trail.rotateMinutes,
      checkpointMinutes: audit.trail.checkpointMinutes,
      retentionDays: audit.trail.retentionDays,
      flushIntervalMs: audit.trail.flushIntervalMs,
      maxBufferedBytes: audit.trail.maxBufferedBytes,
      exporters: audit.exporters.map((e) => makeExporter(e, { at, clock, logger, config })),
      onWrite: options.metrics ? (n, ms) => options.metrics?.observeAuditWrite(n, ms) : undefined,
    })
    base = trail
  } else if (audit.sink === 'jsonl') {
    base = new JsonLinesAuditSink(at(audit.path), config.nodeId, {
      clock,
      logger,
      exporters: audit.exporters.map((e) => makeExporter(e, { at, clock, logger, config })),
    })
  } else {
    memory = new MemoryAuditSink(config.nodeId, clock)
    base = memory
  }

  let sink: AuditSink = new SummarizingAuditSink(base, {
    clock,
    mode: audit.traffic,
    maskTopic: options.maskTopic,
  })
  if (options.metrics) {
    sink = new MetricsAuditSink(sink, options.metrics)
    options.metrics.watchAuditSink(base)
  }
  let webhook: AlertWebhook | undefined
  if (config.alerts.enabled) {
    const { enabled: _enabled, webhook: hook, ...thresholds } = config.alerts
    webhook =
      hook &&
      new AlertWebhook({
        url: hook.url,
        ca: hook.caFile === undefined ? undefined : readPem(at(hook.caFile)),
        timeoutMs: hook.timeoutMs,
        node: config.nodeId,
        logger,
        now: () => clock.now(),
      })
    sink = new AlertingAuditSink(sink, {
      clock,
      logger,
      thresholds,
      certificates: options.certificates,
      onAlert: webhook && ((alert) => webhook?.send(alert)),
    })
  }

  const detector = new ClockJumpDetector({ sink, clock, logger, limitMs: audit.clockJumpLimitMs })
  detector.start()
  // C25: only a process given a probe (the broker) watches the host clock.
  const clockSync =
    options.clockSyncProbe && audit.clockSync.enabled
      ? new ClockSyncMonitor({
          sink,
          probe: options.clockSyncProbe,
          limitMs: audit.clockSync.maxOffsetMs,
          intervalMs: audit.clockSync.checkMinutes * 60_000,
          clock,
          logger,
        })
      : undefined
  clockSync?.start()
  const outer = sink
  // C27: reads left by `phimq audit` while this process owns the trail (src/audit/access.ts).
  let readsTimer: TimerHandle | undefined
  let closed = false
  if (trail) {
    const trailDir = at(audit.trail.dir)
    const poll = (): void => {
      if (closed) return
      ingestPendingReads(trailDir, outer)
      readsTimer = clock.schedule(PENDING_READS_POLL_MS, poll)
    }
    poll()
  }
  return {
    sink: outer,
    trail,
    memory,
    acceptingWork: acceptingWorkOf(audit.onWriteFailure, base),
    close: async () => {
      closed = true
      readsTimer?.cancel()
      // Reads left just before shutdown are recorded, not carried to the next start.
      if (trail) ingestPendingReads(at(audit.trail.dir), outer)
      detector.stop()
      clockSync?.stop()
      await outer.close()
      await webhook?.close()
    },
  }
}

/**
 * The back-pressure question, asked once per publish. Every wrapper of the
 * chain passes its inner sink's health on unchanged, so the base sink's own
 * flag (the trail flips it when writes fail and recover) is the answer: read
 * directly, not by walking the chain.
 */
function acceptingWorkOf(onWriteFailure: 'refuse' | 'continue', base: AuditSink): () => boolean {
  if (onWriteFailure === 'continue') return () => true
  const probe = (base as Partial<HealthReporting>).healthy
  return typeof probe === 'function' ? probe.bind(base) : () => true
}

function makeExporter(
  e: AuditExporterConfig,
  ctx: { at: (p: string) => string; clock: Clock; logger: Logger; config: Config },
): AuditExporter {
  if (e.type === 'file')
    return new FileExporter({ path: ctx.at(e.path), format: e.format, logger: ctx.logger })
  const read = (p: string | undefined) => (p === undefined ? undefined : readPem(ctx.at(p)))
  if (e.type === 'otlp') {
    return new OtlpHttpExporter({
      endpoint: e.endpoint,
      ca: read(e.caFile),
      servername: e.servername,
      cert: read(e.certFile),
      key: read(e.keyFile),
      resource: { serviceName: e.serviceName, instanceId: ctx.config.nodeId },
      maxBatchRecords: e.maxBatchRecords,
      flushIntervalMs: e.flushIntervalMs,
      clock: ctx.clock,
      logger: ctx.logger,
    })
  }
  return new SyslogTlsExporter({
    host: e.host,
    port: e.port,
    ca: readPem(ctx.at(e.caFile)),
    servername: e.servername,
    cert: read(e.certFile),
    key: read(e.keyFile),
    format: { hostname: e.hostname ?? ctx.config.nodeId, message: e.message },
    clock: ctx.clock,
    logger: ctx.logger,
  })
}

function readPem(path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new AuditExportError(`cannot read certificate file ${path}`, { cause: err })
  }
}
