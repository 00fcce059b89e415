/**
 * Composition: builds one running broker from a validated config.
 */
import { type AuditPipeline, createAuditPipeline } from './audit/pipeline.js'
import type { AuditSink } from './audit/sink.js'
import { Broker } from './broker/broker.js'
import type { Gate } from './broker/gate.js'
import type { Logger } from './broker/logger.js'
import { silentLogger } from './broker/logger.js'
import { type LoadedConfig, loadConfigFile } from './config/load.js'
import { ListenError } from './errors.js'
import { Metrics } from './monitor/metrics.js'
import { type RunningMetricsServer, startMetricsServer } from './monitor/metrics-server.js'
import { createPolicyGate, PolicyGate } from './policy/policy-gate.js'
import { MemoryStore } from './store/memory-store.js'
import { reencryptRetiredKeys } from './store/reencrypt-job.js'
import { sqliteStoreFromConfig } from './store/sqlite-from-config.js'
import { SqliteStore } from './store/sqlite-store.js'
import type { Store } from './store/store.js'
import { DenyList } from './transport/deny-list.js'
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
  // core -> alerts -> metrics -> traffic summaries -> trail (see src/audit/pipeline.ts)
  const pipeline: AuditPipeline | undefined = options.audit
    ? undefined
    : createAuditPipeline({ config, dataDir: loaded.dataDir, logger: log, metrics })
  const audit = options.audit ?? (pipeline as AuditPipeline).sink
  // The policy gate: allow-all only in dev without a policy section; refused elsewhere.
  const gate = createPolicyGate(loaded, { audit })
  const store = buildStore(loaded, log)
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
  })
  // TODO(#6): store commit latency and certificate expiry gauges are not fed yet.
  const listeners: RunningListener[] = []
  // One deny list for every listener: quarantine (C30) adds to it once.
  const denyList = new DenyList()
  const baseDir = configBaseDir(loaded)
  let metricsServer: RunningMetricsServer | undefined
  const stopAll = async (): Promise<void> => {
    await Promise.all(listeners.map((l) => l.close()))
    await metricsServer?.close()
    await broker.close()
    if (pipeline) await pipeline.close()
    else await audit.close()
  }
  try {
    for (const listener of config.listeners) {
      listeners.push(
        await startListener(listener, baseDir, broker, { audit, logger: log, denyList }),
      )
    }
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
    reloadPolicy: () => reloadPolicy(loaded, gate, broker),
    close: stopAll,
  }
}

function reloadPolicy(
  loaded: LoadedConfig,
  gate: Gate,
  broker: Broker,
): { ok: true; changed: boolean } | { ok: false; errors: string[] } {
  if (!(gate instanceof PolicyGate)) {
    return { ok: false, errors: ['no policy section was loaded at start; restart to add one'] }
  }
  let next: LoadedConfig
  try {
    next = loadConfigFile(loaded.source)
  } catch (err) {
    return { ok: false, errors: [err instanceof Error ? err.message : 'config unreadable'] }
  }
  const result = gate.reload(next.config.policy)
  if (!result.ok) return { ok: false, errors: result.errors }
  if (result.changes.changed) broker.reevaluateSessions('policy.reloaded')
  return { ok: true, changed: result.changes.changed }
}
