/**
 * The `store` section of the config: where sessions, queues, retained
 * messages and wills live (issue #5).
 *
 * ```yaml
 * store:
 *   type: sqlite
 *   path: store.db            # relative to dataDir
 *   synchronous: normal       # or full: also survives power loss
 *   masterKeyFile: /etc/phimq/master.key   # or masterKeyEnv: PHIMQ_MASTER_KEY
 * ```
 */
import { z } from 'zod'

/** Nothing survives the process: tests and `store: memory`. */
export const memoryStoreSchema = z.strictObject({ type: z.literal('memory') })

/** The embedded durable store, encrypted at rest. */
export const sqliteStoreSchema = z
  .strictObject({
    type: z.literal('sqlite'),
    /** Database file; relative paths are taken from `dataDir`. */
    path: z.string().min(1).default('store.db'),
    /**
     * `normal`: WAL with synchronous=NORMAL, survives a process crash.
     * `full`: synchronous=FULL, also survives power loss; slower commits.
     */
    synchronous: z.enum(['normal', 'full']).default('normal'),
    /** File holding the 32-byte master key (hex or base64); relative to the config file. */
    masterKeyFile: z.string().min(1).optional(),
    /** Environment variable holding the master key (hex or base64). */
    masterKeyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not an environment variable name')
      .optional(),
    /** How often expired rows are deleted while running. */
    sweepIntervalSeconds: z.number().int().min(1).max(86_400).default(60),
  })
  .refine((s) => (s.masterKeyFile === undefined) !== (s.masterKeyEnv === undefined), {
    message: 'set exactly one of masterKeyFile or masterKeyEnv: the store is encrypted at rest',
    path: ['masterKeyFile'],
  })

export type MemoryStoreConfig = z.infer<typeof memoryStoreSchema>
export type SqliteStoreConfig = z.infer<typeof sqliteStoreSchema>
