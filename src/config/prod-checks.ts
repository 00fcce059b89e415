/**
 * What `environment: prod` demands beyond the schema (red-team finding 9).
 *
 * Two kinds of setting:
 * - refused at start-up, with a named error saying what to change: a wss
 *   listener without `allowedOrigins` (any web page could open a socket
 *   with the user's client certificate) and a master key file readable by
 *   group or others;
 * - accepted, but each one logged as a warning and recorded as a
 *   `config.weakened` audit event at start: a client id binding other than
 *   `equal` (C10), `crlStale: allow` and OCSP `off` or `failure: allow`
 *   (C11). Each has a legitimate use (a gateway naming its own clients, an
 *   air-gapped site without OCSP), so they stay possible, never silent.
 */
import { statSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import type { AuditSink } from '../audit/sink.js'
import type { Logger } from '../broker/logger.js'
import { InsecureListenerError, MasterKeyError } from '../errors.js'
import type { Config } from './schema.js'

/** A control weakened by configuration, for the start-up warning and audit event. */
export interface WeakenedControl {
  /** Key path, e.g. `listeners.devices.clientIdBinding`. */
  readonly setting: string
  readonly value: string
  /** The compliance control it weakens, e.g. `C10`. */
  readonly control: string
}

/**
 * In `prod`, refuse what must never run: a wss listener without
 * `allowedOrigins`, a master key file readable by group or others. Relative
 * key paths resolve against `baseDir` (the config file's folder).
 */
export function checkProdRefusals(config: Config, baseDir: string): void {
  if (config.environment !== 'prod') return
  for (const listener of config.listeners) {
    if (listener.type === 'wss' && listener.allowedOrigins === undefined) {
      throw new InsecureListenerError(
        `listener ${listener.name}: wss in environment prod needs allowedOrigins; list the ` +
          'web origins allowed to connect (for example [https://app.example.org]), or [] for none',
      )
    }
  }
  const store = config.store
  if (store.type === 'sqlite' && store.masterKeyFile !== undefined) {
    const file = store.masterKeyFile
    checkKeyFileMode(isAbsolute(file) ? file : resolve(baseDir, file))
  }
}

function checkKeyFileMode(path: string): void {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch {
    // A missing file is the store's to report when it opens the key.
    return
  }
  if ((mode & 0o077) !== 0) {
    throw new MasterKeyError(
      `master key file ${path} is readable or writable by group or others ` +
        `(mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
    )
  }
}

/** The controls a `prod` config weakens; empty outside `prod`. */
export function weakenedControls(config: Config): WeakenedControl[] {
  if (config.environment !== 'prod') return []
  const found: WeakenedControl[] = []
  for (const l of config.listeners) {
    if (l.type === 'tcp') continue
    const at = `listeners.${l.name}`
    if (l.clientIdBinding !== 'equal') {
      found.push({ setting: `${at}.clientIdBinding`, value: l.clientIdBinding, control: 'C10' })
    }
    if (l.identity.requireEnv === false) {
      found.push({ setting: `${at}.identity.requireEnv`, value: 'false', control: 'C18' })
    }
    if (l.revocation.crlStale === 'allow') {
      found.push({ setting: `${at}.revocation.crlStale`, value: 'allow', control: 'C11' })
    }
    if (l.ocsp.mode === 'off') {
      found.push({ setting: `${at}.ocsp.mode`, value: 'off', control: 'C11' })
    } else if (l.ocsp.failure === 'allow') {
      found.push({ setting: `${at}.ocsp.failure`, value: 'allow', control: 'C11' })
    }
  }
  return found
}

/** At start: one warning line and one `config.weakened` audit event per weakened control. */
export function reportWeakenedControls(config: Config, log: Logger, audit: AuditSink): void {
  for (const w of weakenedControls(config)) {
    log.warn(
      { event: 'config.weakened', setting: w.setting, value: w.value, control: w.control },
      'config weakened',
    )
    audit.emit({ type: 'config.weakened', environment: config.environment, ...w })
  }
}
