/**
 * One entry point for the composition root: start the `mqtts` or `wss`
 * listener a config entry describes.
 */
import type { BrokerHandle } from '../broker/broker-api.js'
import type { MqttsListenerConfig, WssListenerConfig } from '../config/listeners-tls.js'
import {
  type RunningTlsListener,
  type TlsListenerDeps,
  tlsListenerOptionsFromConfig,
} from './listener-options.js'
import { createMqttsListener } from './mqtts-listener.js'
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
