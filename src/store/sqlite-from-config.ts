/**
 * Builds the SQLite store from the validated `store` config section:
 * resolves the database path against `dataDir` and reads the master key
 * from its file or environment variable.
 */
import { mkdirSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import type { Clock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import type { LoadedConfig } from '../config/load.js'
import type { SqliteStoreConfig } from '../config/store.js'
import { ConfigError } from '../errors.js'
import { type MasterKeyProvider, masterKeyFromEnv, masterKeyFromFile } from './crypto.js'
import { SqliteStore } from './sqlite-store.js'

export interface SqliteFromConfigOptions {
  readonly clock?: Clock | undefined
  readonly logger?: Logger | undefined
  /** Use this master key instead of the configured one (already read). */
  readonly masterKey?: MasterKeyProvider | undefined
  /** Where `masterKeyEnv` is looked up; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv | undefined
}

/** The `store` section, when it names the SQLite store; else a `ConfigError`. */
export function sqliteConfigOf(loaded: LoadedConfig): SqliteStoreConfig {
  const store = loaded.config.store
  if (store.type !== 'sqlite') {
    throw new ConfigError(`store.type is ${store.type}; this needs store.type sqlite`)
  }
  return store
}

/** Absolute path of the database file; its folder is made (mode 0700) if missing. */
export function sqlitePathOf(loaded: LoadedConfig): string {
  const config = sqliteConfigOf(loaded)
  const path = isAbsolute(config.path) ? config.path : resolve(loaded.dataDir, config.path)
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  return path
}

/** The master key the config names; relative key files are taken from the config file's folder. */
export function masterKeyOf(loaded: LoadedConfig, env?: NodeJS.ProcessEnv): MasterKeyProvider {
  const config = sqliteConfigOf(loaded)
  if (config.masterKeyEnv !== undefined) return masterKeyFromEnv(config.masterKeyEnv, env)
  const file = config.masterKeyFile ?? ''
  const base = loaded.source === '<inline>' ? process.cwd() : dirname(loaded.source)
  return masterKeyFromFile(isAbsolute(file) ? file : resolve(base, file))
}

/** The SQLite store as configured; `open()` it (the broker's `start()` does). */
export function sqliteStoreFromConfig(
  loaded: LoadedConfig,
  options: SqliteFromConfigOptions = {},
): SqliteStore {
  const config = sqliteConfigOf(loaded)
  return new SqliteStore({
    path: sqlitePathOf(loaded),
    masterKey: options.masterKey ?? masterKeyOf(loaded, options.env),
    synchronous: config.synchronous,
    sweepIntervalMs: config.sweepIntervalSeconds * 1000,
    clock: options.clock,
    logger: options.logger,
  })
}
