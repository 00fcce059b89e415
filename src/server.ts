/**
 * Composition: builds one running broker from a validated config.
 */
import { mkdirSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { type AuditSink, JsonLinesAuditSink, MemoryAuditSink } from './audit/sink.js'
import { Broker } from './broker/broker.js'
import type { Logger } from './broker/logger.js'
import { silentLogger } from './broker/logger.js'
import type { LoadedConfig } from './config/load.js'
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
  close(): Promise<void>
}

function buildStore(loaded: LoadedConfig): Store {
  switch (loaded.config.store.type) {
    case 'memory':
      return new MemoryStore()
  }
}

function buildAudit(loaded: LoadedConfig): AuditSink {
  const audit = loaded.config.audit
  if (audit.sink === 'memory') return new MemoryAuditSink(loaded.config.nodeId)
  mkdirSync(loaded.dataDir, { recursive: true, mode: 0o700 })
  const path = isAbsolute(audit.path) ? audit.path : join(loaded.dataDir, audit.path)
  return new JsonLinesAuditSink(path, loaded.config.nodeId)
}

/** Start the broker and every listener; resolves once all listen. */
export async function startServer(
  loaded: LoadedConfig,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const { config } = loaded
  const log = options.logger ?? silentLogger
  const audit = options.audit ?? buildAudit(loaded)
  const broker = new Broker({
    nodeId: config.nodeId,
    store: buildStore(loaded),
    audit,
    logger: log,
    limits: config.limits,
  })
  await broker.start()
  const listeners: RunningListener[] = []
  try {
    for (const listener of config.listeners) {
      listeners.push(await startTcpListener(listener, broker, log))
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()))
    await broker.close()
    throw err
  }
  return {
    broker,
    listeners,
    async close() {
      await Promise.all(listeners.map((l) => l.close()))
      await broker.close()
      await audit.close()
    },
  }
}
