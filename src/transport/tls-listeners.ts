/**
 * One entry point for the composition root: start the listener a config
 * entry describes. `mqtts` and `wss` get the TLS guard; `tcp` (dev only,
 * loopback only, checked by the loader) stays the plaintext listener.
 */
import { dirname } from 'node:path'
import type { BrokerHandle } from '../broker/broker-api.js'
import { silentLogger } from '../broker/logger.js'
import type { MqttsListenerConfig, WssListenerConfig } from '../config/listeners-tls.js'
import type { LoadedConfig } from '../config/load.js'
import type { ListenerConfig } from '../config/schema.js'
import {
  type RunningTlsListener,
  type TlsListenerDeps,
  tlsListenerOptionsFromConfig,
} from './listener-options.js'
import { createMqttsListener } from './mqtts-listener.js'
import { startTcpListener } from './tcp-listener.js'
import { createWssListener } from './wss-listener.js'

/**
 * Start a TLS listener from its validated config entry. Relative file paths
 * resolve against `baseDir` (the config file's folder). Throws
 * `TlsMaterialError` or `ListenError`.
 */
export function startTlsListener(
  config: MqttsListenerConfig | WssListenerConfig,
  baseDir: string,
  broker: BrokerHandle,
  deps: TlsListenerDeps,
): Promise<RunningTlsListener> {
  const options = tlsListenerOptionsFromConfig(config, baseDir)
  return config.type === 'mqtts'
    ? createMqttsListener(options, broker, deps)
    : createWssListener(options, broker, deps)
}

/** The folder relative TLS paths in a config resolve against. */
export function configBaseDir(loaded: Pick<LoadedConfig, 'source'>): string {
  return loaded.source === '<inline>' ? process.cwd() : dirname(loaded.source)
}

/**
 * Start any configured listener: `tcp` as plaintext (the loader already
 * refused it outside `dev` / loopback, C05), `mqtts` / `wss` with TLS.
 */
export function startListener(
  config: ListenerConfig,
  baseDir: string,
  broker: BrokerHandle,
  deps: TlsListenerDeps,
): Promise<RunningTlsListener> {
  if (config.type === 'tcp') return startTcpListener(config, broker, deps.logger ?? silentLogger)
  return startTlsListener(config, baseDir, broker, deps)
}
