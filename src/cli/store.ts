/**
 * `phimq store ...`: operate on the SQLite store's keys with the broker
 * stopped (the broker holds the database's lock; these commands fail with
 * PHIMQ_STORE_BUSY while it runs).
 *
 *   phimq store init-master-key --out FILE
 *   phimq store keys          --config FILE
 *   phimq store rotate-key    --config FILE (--tenant T | --default-tenant)
 *   phimq store reencrypt     --config FILE [--batch-size N]
 *   phimq store erase-tenant  --config FILE (--tenant T | --default-tenant) --yes
 *   phimq store rewrap        --config FILE (--new-master-key-file F | --new-master-key-env V)
 *
 * Each change is also an audit event in the configured audit sink.
 */
import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import type { AuditEvent } from '../audit/events.js'
import { createAuditPipeline } from '../audit/pipeline.js'
import { loadConfigFile } from '../config/load.js'
import { ConfigError } from '../errors.js'
import {
  generateMasterKey,
  type MasterKeyProvider,
  masterKeyFromEnv,
  masterKeyFromFile,
} from '../store/crypto.js'
import { masterKeyOf, sqliteStoreFromConfig } from '../store/sqlite-from-config.js'
import type { SqliteStore } from '../store/sqlite-store.js'

/** Where the commands write; tests pass their own. */
export interface StoreCommandIo {
  out(line: string): void
  err(line: string): void
}

const consoleIo: StoreCommandIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
}

interface ConfigOption {
  config: string
}

interface TenantOptions extends ConfigOption {
  tenant?: string
  defaultTenant?: boolean
}

/** Add `phimq store` and its subcommands to `program`. */
export function registerStoreCommands(program: Command, io: StoreCommandIo = consoleIo): void {
  const store = program
    .command('store')
    .description('manage the durable store: master key, data keys, crypto-erase')

  store
    .command('init-master-key')
    .description('write a new random 256-bit master key (base64) to a new file, mode 0600')
    .requiredOption('--out <file>', 'file to create; never overwritten')
    .action((opts: { out: string }) => {
      try {
        writeFileSync(opts.out, `${generateMasterKey()}\n`, { mode: 0o600, flag: 'wx' })
      } catch (err) {
        throw new ConfigError(`cannot create master key file ${opts.out}`, { cause: err })
      }
      io.out(`master key written to ${opts.out}; keep it off the data disk and back it up`)
    })

  store
    .command('keys')
    .description('list data keys with the number of records each seals')
    .option('-c, --config <file>', 'configuration file', 'phimq.yaml')
    .action(async (opts: ConfigOption) => {
      await withStore(opts.config, async ({ store: s }) => {
        io.out('id\tpurpose\tstate\ttenant\trecords\tcreated')
        for (const k of await s.listKeys()) {
          const created = new Date(k.createdAt).toISOString()
          const tenant = k.tenant ?? '(default)'
          io.out(`${k.id}\t${k.purpose}\t${k.state}\t${tenant}\t${k.records}\t${created}`)
        }
      })
    })

  tenantOptions(
    store
      .command('rotate-key')
      .description('retire a tenant data key: new writes use a new key; then run reencrypt'),
  ).action(async (opts: TenantOptions) => {
    const tenant = tenantOf(opts)
    await withStore(opts.config, async ({ store: s, audit }) => {
      const keyId = await s.rotateKey(tenant)
      audit({ type: 'store.key-rotated', tenant, keyId })
      io.out(`tenant ${label(tenant)}: new data key ${keyId}; run "phimq store reencrypt"`)
    })
  })

  store
    .command('reencrypt')
    .description('re-seal records under retired keys with the active ones; delete unused keys')
    .option('-c, --config <file>', 'configuration file', 'phimq.yaml')
    .option('--batch-size <n>', 'records per transaction', '500')
    .action(async (opts: ConfigOption & { batchSize: string }) => {
      const batchSize = Number.parseInt(opts.batchSize, 10)
      if (!Number.isInteger(batchSize) || batchSize < 1) {
        throw new ConfigError('--batch-size must be a positive integer')
      }
      await withStore(opts.config, async ({ store: s, audit }) => {
        const result = await s.reencrypt({
          batchSize,
          onProgress: ({ done, total }) => io.err(`reencrypt ${done}/${total}`),
        })
        audit({
          type: 'store.reencrypted',
          records: result.reencrypted,
          dropped: result.dropped,
          deletedKeys: [...result.deletedKeys],
        })
        const deleted = result.deletedKeys.length > 0 ? result.deletedKeys.join(',') : 'none'
        io.out(
          `re-encrypted ${result.reencrypted} records, dropped ${result.dropped} unreadable, ` +
            `deleted keys: ${deleted}`,
        )
      })
    })

  store
    .command('rewrap')
    .description('master key rotation: wrap every data key under a new master key')
    .option('-c, --config <file>', 'configuration file', 'phimq.yaml')
    .option('--new-master-key-file <file>', 'file with the new master key')
    .option('--new-master-key-env <name>', 'environment variable with the new master key')
    .action(
      async (opts: ConfigOption & { newMasterKeyFile?: string; newMasterKeyEnv?: string }) => {
        const next = newMasterKey(opts)
        await withStore(opts.config, async ({ store: s, audit, masterKeyId }) => {
          const keys = await s.rewrapKeys(next)
          audit({ type: 'store.master-key-rotated', from: masterKeyId, to: next.id, keys })
          io.out(
            `${keys} data keys re-wrapped under master key ${next.id}; ` +
              'point store.masterKeyFile or store.masterKeyEnv at the new key before the next start',
          )
        })
      },
    )

  tenantOptions(
    store
      .command('erase-tenant')
      .description("crypto-erase: destroy a tenant's data keys, records and sessions")
      .option('--yes', 'confirm: this cannot be undone'),
  ).action(async (opts: TenantOptions & { yes?: boolean }) => {
    const tenant = tenantOf(opts)
    if (!opts.yes) {
      throw new ConfigError(`erasing tenant ${label(tenant)} cannot be undone; add --yes`)
    }
    await withStore(opts.config, async ({ store: s, audit }) => {
      const result = await s.eraseTenant(tenant)
      audit({ type: 'store.tenant-erased', tenant, ...result })
      io.out(
        `tenant ${label(tenant)} erased: ${result.keys} keys destroyed, ` +
          `${result.records} records and ${result.sessions} sessions deleted`,
      )
    })
  })
}

function tenantOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'configuration file', 'phimq.yaml')
    .option('--tenant <name>', 'the tenant, as in client certificates')
    .option('--default-tenant', 'the default key: clients without a tenant')
}

function tenantOf(opts: TenantOptions): string | undefined {
  if ((opts.tenant === undefined) === (opts.defaultTenant !== true)) {
    throw new ConfigError('name exactly one of --tenant <name> or --default-tenant')
  }
  return opts.tenant
}

function newMasterKey(opts: {
  newMasterKeyFile?: string
  newMasterKeyEnv?: string
}): MasterKeyProvider {
  if ((opts.newMasterKeyFile === undefined) === (opts.newMasterKeyEnv === undefined)) {
    throw new ConfigError('name exactly one of --new-master-key-file or --new-master-key-env')
  }
  if (opts.newMasterKeyFile !== undefined) return masterKeyFromFile(opts.newMasterKeyFile)
  return masterKeyFromEnv(opts.newMasterKeyEnv ?? '')
}

function label(tenant: string | undefined): string {
  return tenant === undefined ? '(default)' : tenant
}

/** Open the configured store, run `body`, close the store and the audit sink. */
async function withStore(
  configPath: string,
  body: (ctx: {
    store: SqliteStore
    audit: (event: AuditEvent) => void
    masterKeyId: string
  }) => Promise<void>,
): Promise<void> {
  const loaded = loadConfigFile(configPath)
  const masterKey = masterKeyOf(loaded)
  const store = sqliteStoreFromConfig(loaded, { masterKey })
  try {
    await store.open()
  } catch (err) {
    await store.close()
    throw err
  }
  // The configured audit trail: the broker is stopped (the store's lock says so).
  const pipeline = createAuditPipeline({ config: loaded.config, dataDir: loaded.dataDir })
  try {
    await body({ store, audit: (event) => pipeline.sink.emit(event), masterKeyId: masterKey.id })
  } finally {
    await store.close()
    await pipeline.close()
  }
}
