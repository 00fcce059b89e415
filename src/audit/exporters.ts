/**
 * Exporters take stamped events (the same `{node}-{seq}` ids as the audit
 * trail) and send them to a file or a SIEM (C28). None is enabled until
 * configured. The trail feeds them through its `exporters` option; a
 * failing exporter never blocks or breaks the trail.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import type { StampedAuditEvent } from './events.js'
import { type CefFormatOptions, formatCef, formatJsonLine } from './formats.js'
import { formatOcsf } from './ocsf.js'

/** Receives every stamped event after the trail has stamped it. */
export interface AuditExporter {
  write(event: StampedAuditEvent): void
  close(): Promise<void>
}

export interface FileExporterOptions {
  readonly path: string
  /** `jsonl` (default), `cef` or `ocsf` (OCSF 1.1 JSON), one event per line. */
  readonly format?: 'jsonl' | 'cef' | 'ocsf' | undefined
  readonly cef?: CefFormatOptions | undefined
  readonly logger?: Logger | undefined
}

/** Appends one line per event to a file (mode 0600), buffered by the stream. */
export class FileExporter implements AuditExporter {
  readonly #out: WriteStream
  readonly #format: (event: StampedAuditEvent) => string

  constructor(options: FileExporterOptions) {
    const log = options.logger ?? silentLogger
    this.#out = createWriteStream(options.path, { flags: 'a', mode: 0o600 })
    this.#out.on('error', (err: NodeJS.ErrnoException) => {
      log.error({ event: 'audit.export-failed', exporter: 'file', code: err.code }, 'export failed')
    })
    const cef = options.cef
    this.#format =
      options.format === 'cef'
        ? (e) => formatCef(e, cef)
        : options.format === 'ocsf'
          ? (e) => formatOcsf(e)
          : formatJsonLine
  }

  write(event: StampedAuditEvent): void {
    this.#out.write(`${this.#format(event)}\n`)
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#out.end(resolve))
  }
}

/** Send `event` to each exporter; one failing exporter does not stop the others. */
export function exportEvent(
  exporters: readonly AuditExporter[],
  event: StampedAuditEvent,
  logger: Logger = silentLogger,
): void {
  for (const exporter of exporters) {
    try {
      exporter.write(event)
    } catch (err) {
      const code = (err as { code?: unknown }).code
      logger.error({ event: 'audit.export-failed', code }, 'export failed')
    }
  }
}
