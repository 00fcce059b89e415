/**
 * Options of the TLS listener factories, their defaults, and the bridge
 * from a validated config entry (`mqtts` / `wss`) to those options.
 */
import { isAbsolute, resolve } from 'node:path'
import type { SecureVersion } from 'node:tls'
import type { AuditSink } from '../audit/sink.js'
import type { Clock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import type { MqttsListenerConfig, WssListenerConfig } from '../config/listeners-tls.js'
import { DEFAULT_IDENTITY_RULES, type IdentityRule } from '../identity/mapping.js'
import type { DenyList } from './deny-list.js'
import type { ExpiryWarnings } from './expiry-warnings.js'
import { OCSP_DEFAULTS, type OcspOptions } from './ocsp-checker.js'
import type { TlsProfile } from './tls-options.js'

/** Options common to `mqtts` and `wss`. Paths should be absolute. */
export interface TlsListenerOptions {
  name: string
  host: string
  port: number
  /** Server certificate chain (PEM file). */
  cert: string
  /** Server private key (PEM file). */
  key: string
  /** CA bundle client certificates must chain to (PEM file). */
  ca: string
  /** CRL files (PEM). */
  crl?: readonly string[] | undefined
  profile?: TlsProfile | undefined
  minVersion?: SecureVersion | undefined
  handshakeTimeoutMs?: number | undefined
  reloadPollMs?: number | undefined
  identityRules?: readonly IdentityRule[] | undefined
  /**
   * Refuse certificates that name no environment (C18). Default: on when
   * the broker's environment (`TlsListenerDeps.environment`) is `prod`.
   */
  requireEnv?: boolean | undefined
  clientIdBinding?: 'equal' | 'prefix' | 'free' | undefined
  crlRefreshSeconds?: number | undefined
  crlStale?: 'refuse' | 'allow' | undefined
  denyListFile?: string | undefined
  maxConnections?: number | undefined
  connectionsPerAddress?: number | undefined
  rateWindowSeconds?: number | undefined
  certLifetime?:
    | { deviceMaxDays: number; otherMaxDays: number; action: 'warn' | 'deny' }
    | undefined
  /** Client-certificate OCSP checks and server stapling; see `OCSP_DEFAULTS`. */
  ocsp?: Partial<OcspOptions> | undefined
}

/** `wss` adds the HTTP side. */
export interface WssListenerOptions extends TlsListenerOptions {
  path?: string | undefined
  maxPayloadBytes?: number | undefined
  allowedOrigins?: readonly string[] | undefined
}

/** What a listener factory needs besides its options and the broker. */
export interface TlsListenerDeps {
  audit: AuditSink
  logger?: Logger | undefined
  clock?: Clock | undefined
  /** Shared by all listeners so one `add()` bites everywhere; a private one otherwise. */
  denyList?: DenyList | undefined
  /** Certificate expiry warnings shared by every listener (C12). */
  expiryWarnings?: ExpiryWarnings | undefined
  /** Masks PHI detector hits in peer text for `tls.handshake` (see `peer-text.ts`). */
  maskText?: ((text: string) => string) | undefined
  /**
   * The broker's `environment`: a client certificate's `urn:phimq:env:`
   * attribute must match it (C18). Unset: no environment check.
   */
  environment?: string | undefined
}

/** A listener that is accepting connections. */
export interface RunningTlsListener {
  readonly name: string
  /** e.g. `mqtts://127.0.0.1:8883` or `wss://127.0.0.1:8884/mqtt`. */
  readonly url: string
  /** The bound port (useful with port 0). */
  readonly port: number
  /** Stop accepting, close open sockets, stop watching files. */
  close(): Promise<void>
}

/** Options with every default filled in. */
export type ResolvedTlsOptions = {
  [K in Exclude<keyof TlsListenerOptions, 'denyListFile' | 'ocsp' | 'requireEnv'>]-?: NonNullable<
    TlsListenerOptions[K]
  >
} & { denyListFile: string | undefined; ocsp: OcspOptions; requireEnv: boolean | undefined }

/** Fill defaults (those of `src/config/listeners-tls.ts`). */
export function resolveTlsOptions(o: TlsListenerOptions): ResolvedTlsOptions {
  return {
    name: o.name,
    host: o.host,
    port: o.port,
    cert: o.cert,
    key: o.key,
    ca: o.ca,
    crl: o.crl ?? [],
    profile: o.profile ?? 'default',
    minVersion: o.minVersion ?? 'TLSv1.2',
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    reloadPollMs: o.reloadPollMs ?? 2000,
    identityRules: o.identityRules ?? DEFAULT_IDENTITY_RULES,
    // Resolved against the broker's environment by the guard.
    requireEnv: o.requireEnv,
    clientIdBinding: o.clientIdBinding ?? 'equal',
    crlRefreshSeconds: o.crlRefreshSeconds ?? 3600,
    crlStale: o.crlStale ?? 'refuse',
    denyListFile: o.denyListFile,
    maxConnections: o.maxConnections ?? 10_000,
    connectionsPerAddress: o.connectionsPerAddress ?? 30,
    rateWindowSeconds: o.rateWindowSeconds ?? 10,
    certLifetime: o.certLifetime ?? { deviceMaxDays: 90, otherMaxDays: 397, action: 'warn' },
    ocsp: { ...OCSP_DEFAULTS, ...o.ocsp },
  }
}

/**
 * Options for `createMqttsListener` / `createWssListener` from a config
 * entry; relative paths are resolved against `baseDir` (the config file's folder).
 */
export function tlsListenerOptionsFromConfig(
  config: MqttsListenerConfig | WssListenerConfig,
  baseDir: string,
): WssListenerOptions {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p))
  const base: TlsListenerOptions = {
    name: config.name,
    host: config.host,
    port: config.port,
    cert: at(config.tls.cert),
    key: at(config.tls.key),
    ca: at(config.tls.ca),
    crl: config.tls.crl.map(at),
    profile: config.tls.profile,
    minVersion: config.tls.minVersion,
    handshakeTimeoutMs: config.tls.handshakeTimeoutMs,
    reloadPollMs: config.tls.reloadPollMs,
    identityRules: config.identity.rules,
    requireEnv: config.identity.requireEnv,
    clientIdBinding: config.clientIdBinding,
    crlRefreshSeconds: config.revocation.crlRefreshSeconds,
    crlStale: config.revocation.crlStale,
    denyListFile:
      config.revocation.denyListFile !== undefined ? at(config.revocation.denyListFile) : undefined,
    maxConnections: config.limits.maxConnections,
    connectionsPerAddress: config.limits.connectionsPerAddress,
    rateWindowSeconds: config.limits.rateWindowSeconds,
    certLifetime: config.certLifetime,
    ocsp: config.ocsp,
  }
  if (config.type === 'mqtts') return base
  return {
    ...base,
    path: config.path,
    maxPayloadBytes: config.maxPayloadBytes,
    allowedOrigins: config.allowedOrigins,
  }
}
