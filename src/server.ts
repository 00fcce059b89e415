/**
 * Composition: builds one running broker from a validated config.
 */
import { type AuditPipeline, createAuditPipeline } from './audit/pipeline.js'
import type { AuditSink } from './audit/sink.js'
import { Broker } from './broker/broker.js'
import type { Logger } from './broker/logger.js'
import { silentLogger } from './broker/logger.js'
import type { LoadedConfig } from './config/load.js'
import { Metrics } from './monitor/metrics.js'
import { type RunningMetricsServer, startMetricsServer } from './monitor/metrics-server.js'
import { MemoryStore } from './store/memory-store.js'
import type { Store } from './store/store.js'
import { type RunningListener, startTcpListener } from './transport/tcp-listener.js'

export interface ServerOptions {
  logger?: Logger
  /** Overrides the configured audit sink (tests). */
  audit?: AuditSink
}

export interface RunningServer {
  readonly broker: Broker
  readonly listeners: readonly RunningListener[]
  /** The Prometheus endpoint, when metrics are on. */
  readonly metricsUrl?: string | undefined
  close(): Promise<void>
}

function buildStore(loaded: LoadedConfig): Store {
  switch (loaded.config.store.type) {
    case 'memory':
      return new MemoryStore()
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
  const broker = new Broker({
    nodeId: config.nodeId,
    store: buildStore(loaded),
    audit,
    logger: log,
    limits: config.limits,
    acceptingWork: pipeline ? () => pipeline.acceptingWork() : undefined,
    auditTraffic: true,
  })
  await broker.start()
  const listeners: RunningListener[] = []
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
      listeners.push(await startTcpListener(listener, broker, log))
    }
    if (metrics) {
      const { host, port } = config.metrics
      metricsServer = await startMetricsServer({ metrics, host, port, logger: log })
    }
  } catch (err) {
    await stopAll()
    throw err
  }
  return {
    broker,
    listeners,
    metricsUrl: metricsServer?.url,
    close: stopAll,
  }
}
