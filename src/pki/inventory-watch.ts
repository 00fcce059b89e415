/**
 * Expiry warnings for issued certificates (control C12): when the broker
 * runs on a data directory with the built-in CA (`phimq init` puts it in
 * `ca/`, or `ca/devices` and `ca/apps` for production), its inventory is
 * scanned at start and then on an interval, and each valid certificate
 * that crossed a warning step is reported once as a `cert.expiring` event
 * with `source: issued`. The inventory is re-read from disk each time:
 * `phimq pki issue` and `revoke` run in other processes.
 */
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import type { ExpiryWarnings } from '../transport/expiry-warnings.js'
import { openCa } from './ca.js'

/** Folder of the built-in CA inside the data directory. */
export const BUILT_IN_CA_DIR = 'ca'

export interface InventoryWatchOptions {
  readonly dataDir: string
  readonly warnings: ExpiryWarnings
  readonly clock?: Clock | undefined
  readonly logger?: Logger | undefined
  /** Default one hour. */
  readonly intervalMs?: number | undefined
}

/**
 * CA directories under `dataDir/ca`, relative to `dataDir`: `ca` itself
 * when it holds a `ca.json`, else each `ca/<name>` that does.
 */
export function findBuiltInCas(dataDir: string): string[] {
  const root = join(dataDir, BUILT_IN_CA_DIR)
  if (existsSync(join(root, 'ca.json'))) return [BUILT_IN_CA_DIR]
  let names: string[]
  try {
    names = readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
  } catch {
    return []
  }
  return names
    .filter((n) => existsSync(join(root, n, 'ca.json')))
    .map((n) => `${BUILT_IN_CA_DIR}/${n}`)
}

/** Scans the built-in CA inventory for certificates close to expiry. */
export class InventoryWatch {
  readonly #o: InventoryWatchOptions
  readonly #clock: Clock
  readonly #log: Logger
  #timer: TimerHandle | undefined
  #stopped = false

  constructor(options: InventoryWatchOptions) {
    this.#o = options
    this.#clock = options.clock ?? systemClock
    this.#log = options.logger ?? silentLogger
  }

  /** Scan now, then every interval until `stop()`. */
  async start(): Promise<void> {
    await this.scan()
    this.#schedule()
  }

  /**
   * Read every built-in CA's inventory and warn about valid certificates
   * past a step. Resolves with the number of events emitted. A CA that
   * cannot be read is logged and skipped; the next scan tries again.
   */
  async scan(): Promise<number> {
    let emitted = 0
    for (const ca of findBuiltInCas(this.#o.dataDir)) {
      try {
        const opened = await openCa(join(this.#o.dataDir, ca), undefined, {
          now: () => this.#clock.now(),
        })
        for (const c of opened.list()) {
          if (c.status !== 'valid') continue
          const warned = this.#o.warnings.check({
            source: 'issued',
            ca,
            fingerprint256: c.fingerprint256,
            serial: c.serial,
            identity: { tenant: c.tenant, role: c.role, id: c.id },
            notAfterMs: Date.parse(c.notAfter),
          })
          if (warned) emitted++
        }
      } catch (err) {
        const code = (err as { code?: unknown }).code
        this.#log.warn({ event: 'pki.inventory-unreadable', ca, code }, 'ca inventory unreadable')
      }
    }
    this.#o.warnings.prune()
    return emitted
  }

  stop(): void {
    this.#stopped = true
    this.#timer?.cancel()
  }

  #schedule(): void {
    if (this.#stopped) return
    this.#timer = this.#clock.schedule(this.#o.intervalMs ?? 3_600_000, () => {
      void this.scan().finally(() => this.#schedule())
    })
  }
}
