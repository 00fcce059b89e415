/**
 * The key-rotation job of a running broker (issue #5). `phimq store
 * rotate-key` retires a tenant's data key (new writes use a new one at
 * once); when the broker starts on a store that still has records under
 * retired keys, this job re-seals them in the background, one batch per
 * transaction beside live traffic, logs its progress, and deletes the
 * retired keys nothing uses any more. `phimq store reencrypt` does the
 * same with the broker stopped.
 */
import type { AuditSink } from '../audit/sink.js'
import type { Logger } from '../broker/logger.js'
import type { ReencryptResult, SqliteStore } from './sqlite-store.js'

/** Records re-sealed per transaction by the background job. */
export const REENCRYPT_JOB_BATCH_RECORDS = 200

export interface ReencryptJobOptions {
  readonly log: Logger
  readonly audit: AuditSink
  readonly batchSize?: number | undefined
}

/**
 * Re-seal what retired keys hold and delete those keys. Resolves with the
 * result, or `undefined` when no retired key was there.
 */
export async function reencryptRetiredKeys(
  store: SqliteStore,
  options: ReencryptJobOptions,
): Promise<ReencryptResult | undefined> {
  const { log, audit } = options
  const keys = await store.listKeys()
  const retired = keys.filter((k) => k.purpose === 'data' && k.state === 'retired')
  if (retired.length === 0) return undefined
  log.info({ event: 'store.reencrypt-started', keys: retired.length }, 'store reencrypt started')
  const result = await store.reencrypt({
    batchSize: options.batchSize ?? REENCRYPT_JOB_BATCH_RECORDS,
    onProgress: ({ done, total }) => {
      log.info({ event: 'store.reencrypt-progress', done, total }, 'store reencrypt progress')
    },
  })
  audit.emit({
    type: 'store.reencrypted',
    records: result.reencrypted,
    dropped: result.dropped,
    deletedKeys: [...result.deletedKeys],
  })
  log.info(
    { event: 'store.reencrypted', records: result.reencrypted, keys: result.deletedKeys.length },
    'store reencrypted',
  )
  return result
}
