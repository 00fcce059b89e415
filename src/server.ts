/**
 * Composition: builds one running broker from a validated config.
 */
import { resolve } from 'node:path'
import type { AuditEvent } from './audit/events.js'
import { type AuditPipeline, createAuditPipeline } from './audit/pipeline.js'
import type { AuditSink } from './audit/sink.js'
import { TopicMaskingAuditSink } from './audit/topic-masking.js'
import { Broker } from './broker/broker.js'
import type { Gate } from './broker/gate.js'
import type { Logger } from './broker/logger.js'
import { silentLogger } from './broker/logger.js'
import { type LoadedConfig, loadConfigFile } from './config/load.js'
import { reportWeakenedControls } from './config/prod-checks.js'
import type { Config } from './config/schema.js'
import { ConfigError, ListenError, PhimqError } from './errors.js'
import { BrokerCertificates } from './monitor/certificates.js'
import { probeHostClock } from './monitor/clock-sync.js'
import { Metrics } from './monitor/metrics.js'
import { type RunningMetricsServer, startMetricsServer } from './monitor/metrics-server.js'
import { maskTopic } from './phi/detectors.js'
import { InventoryWatch } from './pki/inventory-watch.js'
import { createPolicyGate, PolicyGate } from './policy/policy-gate.js'
import { MemoryStore } from './store/memory-store.js'
import { reencryptRetiredKeys } from './store/reencrypt-job.js'
import { sqliteStoreFromConfig } from './store/sqlite-from-config.js'
import { SqliteStore } from './store/sqlite-store.js'
import type { Store } from './store/store.js'
import { DenyList } from './transport/deny-list.js'
import { ExpiryWarnings } from './transport/expiry-warnings.js'
import type { RunningListener } from './transport/tcp-listener.js'
import { configBaseDir, startListener } from './transport/tls-listeners.js'

export interface ServerOptions {
  logger?: Logger
  /** Overrides the configured audit sink (tests). */
  audit?: AuditSink
}

export interface RunningServer {
  readonly broker: Broker
  /** SHA-256 fingerprints refused at once on every listener (C11). */
  readonly denyList: DenyList
  readonly listeners: readonly RunningListener[]
  /**
   * Re-read the config file and swap in its `policy` section (SIGHUP). An
   * invalid file changes nothing and says why; after a change every stored
   * subscription and waiting message is checked again.
   */
  reloadPolicy(): { ok: true; changed: boolean } | { ok: false; errors: string[] }
  /** The Prometheus endpoint, when metrics are on. */
  readonly metricsUrl?: string | undefined
  close(): Promise<void>
}

function buildStore(loaded: LoadedConfig, logger: Logger): Store {
  switch (loaded.config.store.type) {
    case 'memory':
      return new MemoryStore()
    case 'sqlite':
      return sqliteStoreFromConfig(loaded, { logger })
  }
}

/** Start the broker and every listener; resolves once all listen. */
export async function startServer(
  loaded: LoadedConfig,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const { config } = loaded
  const log = options.logger ?? silentLogger
  const metrics = config.metrics.enabled
    ? new Metrics({ processMetrics: config.metrics.processMetrics })
    : undefined
  const baseDir = configBaseDir(loaded)
  // Server and CA certificates of the TLS listeners: expiry gauge and the cert-expiry alert (C29).
  const certificates = brokerCertificates(config, baseDir)
  // The gate is built after the pipeline (it audits into it): summaries
  // reach its topic masker through this late binding.
  let gateMaskTopic: ((topic: string) => string) | undefined
  // core -> alerts -> metrics -> traffic summaries -> trail (see src/audit/pipeline.ts)
  const pipeline: AuditPipeline | undefined = options.audit
    ? undefined
    : createAuditPipeline({
        config,
        dataDir: loaded.dataDir,
        configSource: loaded.source,
        logger: log,
        metrics,
        certificates: () => certificates.watched(),
        clockSyncProbe: probeHostClock,
        maskTopic: (topic) => (gateMaskTopic ?? maskTopic)(topic),
      })
  const pipelineSink = options.audit ?? (pipeline as AuditPipeline).sink
  // The policy gate: allow-all only in dev without a policy section; refused elsewhere.
  const gate = createPolicyGate(loaded, { audit: pipelineSink })
  gateMaskTopic = gate.maskTopic?.bind(gate)
  // C26: without a policy detector (dev allow-all) topics are masked on the way to the trail.
  const audit = gate.maskTopic
    ? pipelineSink
    : new TopicMaskingAuditSink(pipelineSink, (topic) => maskTopic(topic))
  const store = buildStore(loaded, log)
  if (metrics) store.observeCommits?.((c) => metrics.observeStoreCommit(c.seconds))
  // prod settings that weaken a control: accepted, never silently (finding 9).
  reportWeakenedControls(config, log, audit)
  // Listeners mask peer text (SNI, certificate names) with the policy's detectors.
  const maskText = gate.maskClientId
    ? (text: string) => gate.maskClientId?.(text) ?? text
    : undefined
  const broker = new Broker({
    nodeId: config.nodeId,
    gate,
    store,
    audit,
    logger: log,
    limits: config.limits,
    acceptingWork: pipeline ? () => pipeline.acceptingWork() : undefined,
    auditTraffic: true,
  })
  await broker.start()
  // Key rotation: records under retired keys are re-sealed beside traffic.
  if (store instanceof SqliteStore) {
    reencryptRetiredKeys(store, { log, audit }).catch((err: unknown) => {
      const name = err instanceof Error ? err.name : 'unknown'
      log.warn({ event: 'store.reencrypt-stopped', err: name }, 'store reencrypt stopped')
    })
  }
  metrics?.onCollect(() => {
    const stats = broker.stats()
    metrics.setQueuedMessages(stats.queuedMessages)
    metrics.setInflightMessages(stats.inflightMessages)
    metrics.setCertificateExpiries(certificates.current())
  })
  const listeners: RunningListener[] = []
  // One deny list for every listener: quarantine (C30) adds to it once.
  const denyList = new DenyList()
  // C12: one tracker, so a certificate is warned about once per step, whatever the listener.
  const expiryWarnings = new ExpiryWarnings({
    audit,
    warningDays: config.audit.certExpiry.warningDays,
  })
  const inventory = new InventoryWatch({
    dataDir: loaded.dataDir,
    warnings: expiryWarnings,
    logger: log,
    intervalMs: config.audit.certExpiry.inventoryScanMinutes * 60_000,
  })
  let metricsServer: RunningMetricsServer | undefined
  const stopAll = async (): Promise<void> => {
    inventory.stop()
    await Promise.all(listeners.map((l) => l.close()))
    await metricsServer?.close()
    await broker.close()
    if (pipeline) await pipeline.close()
    else await audit.close()
  }
  try {
    for (const listener of config.listeners) {
      listeners.push(
        await startListener(listener, baseDir, broker, {
          audit,
          environment: config.environment,
          logger: log,
          denyList,
          expiryWarnings,
          maskText,
        }),
      )
    }
    // Issued certificates of the built-in CA, when this data directory has one.
    await inventory.start()
    if (metrics) {
      const { host, port } = config.metrics
      metricsServer = await startMetricsServer({ metrics, host, port, logger: log }).catch(
        (err: unknown) => {
          throw new ListenError(
            `metrics endpoint cannot bind ${host}:${port}; change metrics.port or set metrics.enabled: false`,
            { cause: err },
          )
        },
      )
    }
  } catch (err) {
    await stopAll()
    throw err
  }
  return {
    broker,
    denyList,
    listeners,
    metricsUrl: metricsServer?.url,
    reloadPolicy: () => reloadPolicy(loaded, { gate, broker, audit }),
    close: stopAll,
  }
}

function brokerCertificates(config: Config, baseDir: string): BrokerCertificates {
  const files = config.listeners.flatMap((l) =>
    l.type === 'tcp'
      ? []
      : [{ listener: l.name, cert: resolve(baseDir, l.tls.cert), ca: resolve(baseDir, l.tls.ca) }],
  )
  return new BrokerCertificates(files)
}

/**
 * SIGHUP: re-read the config file and swap in its policy. Every refused
 * attempt is one audit event: `config.reload-refused` when the file cannot
 * be used, `policy.reload-refused` when the policy in it is refused (the
 * gate records that one) or none was loaded at start.
 */
function reloadPolicy(
  loaded: LoadedConfig,
  { gate, broker, audit }: { gate: Gate; broker: Broker; audit: AuditSink },
): { ok: true; changed: boolean } | { ok: false; errors: string[] } {
  if (!(gate instanceof PolicyGate)) {
    const problem = 'no policy section was loaded at start; restart to add one'
    audit.emit({ type: 'policy.reload-refused', problems: [problem] })
    return { ok: false, errors: [problem] }
  }
  let next: LoadedConfig
  try {
    next = loadConfigFile(loaded.source)
  } catch (err) {
    audit.emit(configReloadRefused(err))
    return { ok: false, errors: [err instanceof Error ? err.message : 'config unreadable'] }
  }
  const result = gate.reload(next.config.policy)
  if (!result.ok) return { ok: false, errors: result.errors }
  if (result.changes.changed) broker.reevaluateSessions('policy.reloaded')
  return { ok: true, changed: result.changes.changed }
}

/** The audit event for a config file a reload could not use: codes and places only. */
function configReloadRefused(err: unknown): AuditEvent {
  const code = err instanceof PhimqError ? err.code : 'PHIMQ_ERROR'
  const problems =
    err instanceof ConfigError
      ? err.problems.map((p) => ({
          ...(p.key !== undefined && { key: p.key }),
          ...(p.line !== undefined && { line: p.line }),
          ...(p.column !== undefined && { column: p.column }),
          code: p.code,
        }))
      : []
  return { type: 'config.reload-refused', code, problems }
}
