/**
 * Syslog over TLS (RFC 5425) with octet-counted framing, carrying RFC 5424
 * messages (C28). Certificate verification is always on: there is no
 * option to turn it off. Events queue in memory while the collector is
 * unreachable (bounded; the oldest are dropped and counted past the bound)
 * and the exporter reconnects every `reconnectMs`.
 */
import { isIP } from 'node:net'
import { connect, type TLSSocket } from 'node:tls'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import type { StampedAuditEvent } from './events.js'
import type { AuditExporter } from './exporters.js'
import { formatSyslog, frameOctetCounted, type SyslogFormatOptions } from './formats.js'

/** IANA port for syslog over TLS (RFC 5425 section 4.1). */
export const SYSLOG_TLS_PORT = 6514

export interface SyslogTlsOptions {
  readonly host: string
  readonly port?: number | undefined
  /** CA certificates (PEM) that the collector's certificate must chain to. */
  readonly ca: string | Buffer
  /** Name checked against the collector certificate; default `host`. */
  readonly servername?: string | undefined
  /** Client certificate and key (PEM), when the collector asks for mutual TLS. */
  readonly cert?: string | Buffer | undefined
  readonly key?: string | Buffer | undefined
  readonly format?: SyslogFormatOptions | undefined
  readonly reconnectMs?: number | undefined
  /** Bound on frames waiting for the collector. Default 16 MiB. */
  readonly maxQueuedBytes?: number | undefined
  readonly clock?: Clock | undefined
  readonly logger?: Logger | undefined
}

/** The RFC 5425 exporter. */
export class SyslogTlsExporter implements AuditExporter {
  readonly #options: SyslogTlsOptions
  readonly #clock: Clock
  readonly #log: Logger
  readonly #maxQueuedBytes: number
  #queue: Buffer[] = []
  #queuedBytes = 0
  #dropped = 0
  #socket: TLSSocket | undefined
  #connected = false
  #closed = false
  #retry: TimerHandle | undefined
  #failing = false

  constructor(options: SyslogTlsOptions) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#log = options.logger ?? silentLogger
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024
    this.#connect()
  }

  /** True while connected to the collector with nothing dropped. */
  healthy(): boolean {
    return this.#connected && this.#dropped === 0
  }

  /** Frames dropped because the queue was full. */
  get dropped(): number {
    return this.#dropped
  }

  write(event: StampedAuditEvent): void {
    if (this.#closed) return
    const frame = frameOctetCounted(formatSyslog(event, this.#options.format))
    this.#queue.push(frame)
    this.#queuedBytes += frame.length
    while (this.#queuedBytes > this.#maxQueuedBytes && this.#queue.length > 1) {
      this.#queuedBytes -= (this.#queue.shift() as Buffer).length
      this.#dropped++
    }
    if (this.#connected) this.#send()
  }

  /** Send what is queued (waiting up to `timeoutMs` for a connection), then close. */
  async close(timeoutMs = 5000): Promise<void> {
    this.#closed = true
    this.#retry?.cancel()
    const socket = this.#socket
    if (!socket) return
    if (!this.#connected && this.#queue.length > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs)
        t.unref()
        socket.once('secureConnect', () => {
          clearTimeout(t)
          resolve()
        })
        socket.once('close', () => {
          clearTimeout(t)
          resolve()
        })
      })
    }
    await new Promise<void>((resolve) => {
      if (socket.destroyed) {
        resolve()
        return
      }
      socket.once('close', () => resolve())
      socket.end()
    })
  }

  #connect(): void {
    const { host, ca, cert, key } = this.#options
    const servername = this.#options.servername ?? (isIP(host) === 0 ? host : undefined)
    const socket = connect({
      host,
      port: this.#options.port ?? SYSLOG_TLS_PORT,
      ca,
      ...(servername === undefined ? {} : { servername }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      // Verification is mandatory for network exporters (C28).
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    })
    this.#socket = socket
    socket.on('secureConnect', () => {
      this.#connected = true
      if (this.#failing) {
        this.#failing = false
        this.#log.info({ event: 'audit.export-recovered', exporter: 'syslog' }, 'export recovered')
      }
      this.#send()
      if (this.#closed) socket.end()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.#failing) {
        this.#failing = true
        this.#log.error(
          { event: 'audit.export-failed', exporter: 'syslog', code: err.code },
          'export failed',
        )
      }
    })
    socket.on('close', () => {
      this.#connected = false
      if (this.#socket === socket) this.#socket = undefined
      if (!this.#closed) this.#scheduleReconnect()
    })
  }

  #scheduleReconnect(): void {
    this.#retry?.cancel()
    this.#retry = this.#clock.schedule(this.#options.reconnectMs ?? 5000, () => {
      this.#retry = undefined
      if (!this.#closed) this.#connect()
    })
  }

  #send(): void {
    const socket = this.#socket
    if (!socket || this.#queue.length === 0) return
    // Frames leave in order; TLS has no application ack, so a frame is
    // considered sent once handed to the socket.
    socket.write(Buffer.concat(this.#queue))
    this.#queue = []
    this.#queuedBytes = 0
  }
}
