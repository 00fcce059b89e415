/**
 * The OTLP/HTTP logs exporter (C28): audit events as OTLP JSON log records,
 * `POST <endpoint>/v1/logs`, over HTTPS only, certificate verification
 * always on (no option turns it off; an `http:` endpoint is refused).
 *
 * Batching and back-pressure, in order:
 *
 * 1. `write` queues the record (bounded by `maxQueuedBytes`; past it the
 *    oldest records are dropped and counted, as the syslog exporter does);
 * 2. a batch leaves when `maxBatchRecords` wait or `flushIntervalMs` after
 *    the first one queued; one request is in flight at a time;
 * 3. a network error, a timeout or HTTP 429/502/503/504 (retryable per
 *    the OTLP spec) puts the batch back at the head of the queue and
 *    retries after `retryMs`; any other non-2xx drops the batch, counted
 *    as rejected, since sending it again cannot succeed;
 * 4. a 2xx with `partialSuccess.rejectedLogRecords` counts those as rejected.
 *
 * An exporter never blocks or breaks the trail: failures are logged
 * (`export failed`, once until it recovers) and reflected in `healthy()`.
 */
import { Agent, request } from 'node:https'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import { AuditExportError } from '../errors.js'
import type { StampedAuditEvent } from './events.js'
import type { AuditExporter } from './exporters.js'
import {
  type OtlpLogRecord,
  type OtlpResourceOptions,
  otlpLogsRequest,
  toOtlpLogRecord,
} from './otlp.js'

/** Path of the logs signal under the endpoint (OTLP/HTTP). */
export const OTLP_LOGS_PATH = '/v1/logs'
/** Responses the OTLP spec says to retry. */
const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 502, 503, 504])

export interface OtlpHttpOptions {
  /** `https://collector:4318`; `/v1/logs` is appended unless already there. */
  readonly endpoint: string
  /** CA certificates (PEM) the collector certificate must chain to; default the system store. */
  readonly ca?: string | Buffer | undefined
  /** Name checked against the collector certificate; default the endpoint host. */
  readonly servername?: string | undefined
  /** Client certificate and key (PEM), when the collector asks for mutual TLS. */
  readonly cert?: string | Buffer | undefined
  readonly key?: string | Buffer | undefined
  readonly resource?: OtlpResourceOptions | undefined
  /** Default 512. */
  readonly maxBatchRecords?: number | undefined
  /** Default 1000. */
  readonly flushIntervalMs?: number | undefined
  /** Default 5000. */
  readonly retryMs?: number | undefined
  /** Per request; default 10 000. */
  readonly timeoutMs?: number | undefined
  /** Bound on records waiting; default 16 MiB of JSON. */
  readonly maxQueuedBytes?: number | undefined
  readonly clock?: Clock | undefined
  readonly logger?: Logger | undefined
}

interface Queued {
  readonly record: OtlpLogRecord
  readonly bytes: number
}

type Outcome = 'sent' | 'retry' | 'rejected'

/** Sends audit events to an OTLP/HTTP logs endpoint. */
export class OtlpHttpExporter implements AuditExporter {
  readonly #url: URL
  readonly #options: OtlpHttpOptions
  readonly #clock: Clock
  readonly #log: Logger
  readonly #agent: Agent
  readonly #maxBatch: number
  readonly #maxQueuedBytes: number
  #queue: Queued[] = []
  #queuedBytes = 0
  #dropped = 0
  #rejected = 0
  #sent = 0
  #inFlight: Promise<Outcome> | undefined
  #timer: TimerHandle | undefined
  #failing = false
  #closed = false

  constructor(options: OtlpHttpOptions) {
    this.#url = logsUrl(options.endpoint)
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#log = options.logger ?? silentLogger
    this.#maxBatch = options.maxBatchRecords ?? 512
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024
    const { ca, cert, key } = options
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      // Verification is mandatory for network exporters (C28).
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
    })
  }

  /** True while the last request went through and nothing was dropped or rejected. */
  healthy(): boolean {
    return !this.#failing && this.#dropped === 0 && this.#rejected === 0
  }

  /** Records dropped because the queue was full. */
  get dropped(): number {
    return this.#dropped
  }

  /** Records the collector refused (non-retryable status or partial success). */
  get rejected(): number {
    return this.#rejected
  }

  /** Records the collector accepted. */
  get sent(): number {
    return this.#sent
  }

  write(event: StampedAuditEvent): void {
    if (this.#closed) return
    const record = toOtlpLogRecord(event)
    const bytes = JSON.stringify(record).length
    this.#queue.push({ record, bytes })
    this.#queuedBytes += bytes
    while (this.#queuedBytes > this.#maxQueuedBytes && this.#queue.length > 1) {
      this.#queuedBytes -= (this.#queue.shift() as Queued).bytes
      this.#dropped++
    }
    if (this.#queue.length >= this.#maxBatch) this.#pump()
    else this.#scheduleFlush(this.#options.flushIntervalMs ?? 1000)
  }

  /** Send what is queued, for at most `timeoutMs`, then stop. */
  async close(timeoutMs = 5000): Promise<void> {
    this.#closed = true
    this.#timer?.cancel()
    this.#timer = undefined
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.#inFlight === undefined) {
        if (this.#queue.length === 0) break
        this.#pump()
      }
      const left = deadline - Date.now()
      const outcome = await Promise.race([this.#inFlight, sleep(left).then(() => undefined)])
      if (outcome === undefined || outcome === 'retry') break
    }
    this.#agent.destroy()
  }

  #scheduleFlush(ms: number): void {
    if (this.#timer !== undefined || this.#inFlight !== undefined) return
    this.#timer = this.#clock.schedule(ms, () => {
      this.#timer = undefined
      this.#pump()
    })
  }

  /** Step 2: send the next batch unless one is in flight. */
  #pump(): void {
    if (this.#inFlight !== undefined || this.#queue.length === 0) return
    this.#timer?.cancel()
    this.#timer = undefined
    const batch = this.#queue.splice(0, this.#maxBatch)
    for (const q of batch) this.#queuedBytes -= q.bytes
    const flight = this.#post(batch).then((outcome) => {
      this.#inFlight = undefined
      this.#settle(batch, outcome)
      return outcome
    })
    this.#inFlight = flight
  }

  /** Steps 3–4. */
  #settle(batch: Queued[], outcome: Outcome): void {
    if (outcome === 'retry') {
      this.#queue = [...batch, ...this.#queue]
      for (const q of batch) this.#queuedBytes += q.bytes
      if (!this.#closed) this.#scheduleFlush(this.#options.retryMs ?? 5000)
      return
    }
    if (this.#failing) {
      this.#failing = false
      this.#log.info({ event: 'audit.export-recovered', exporter: 'otlp' }, 'export recovered')
    }
    if (this.#closed) return
    if (this.#queue.length >= this.#maxBatch) this.#pump()
    else if (this.#queue.length > 0) this.#scheduleFlush(this.#options.flushIntervalMs ?? 1000)
  }

  #post(batch: readonly Queued[]): Promise<Outcome> {
    const body = JSON.stringify(
      otlpLogsRequest(
        batch.map((q) => q.record),
        this.#options.resource,
      ),
    )
    const servername = this.#options.servername
    return new Promise((resolve) => {
      const req = request(
        this.#url,
        {
          method: 'POST',
          agent: this.#agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
          ...(servername === undefined ? {} : { servername }),
          timeout: this.#options.timeoutMs ?? 10_000,
        },
        (res) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (d: Buffer) => {
            // A response body is read only for partialSuccess; keep it small.
            if (size < 65_536) chunks.push(d)
            size += d.length
          })
          res.on('end', () => resolve(this.#outcome(res.statusCode ?? 0, chunks, batch.length)))
          res.on('error', () => resolve(this.#failed('ERR_RESPONSE')))
        },
      )
      req.on('timeout', () =>
        req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })),
      )
      req.on('error', (err: NodeJS.ErrnoException) => resolve(this.#failed(err.code ?? 'error')))
      req.end(body)
    })
  }

  #outcome(status: number, chunks: Buffer[], records: number): Outcome {
    if (status >= 200 && status < 300) {
      const rejected = partialRejections(Buffer.concat(chunks))
      this.#sent += records - rejected
      if (rejected > 0) this.#reject(rejected, status)
      return 'sent'
    }
    if (RETRYABLE_STATUS.has(status)) return this.#failed(`HTTP_${status}`)
    this.#reject(records, status)
    return 'rejected'
  }

  #reject(records: number, status: number): void {
    this.#rejected += records
    this.#log.error(
      { event: 'audit.export-failed', exporter: 'otlp', code: `HTTP_${status}`, records },
      'export failed',
    )
  }

  #failed(code: string): Outcome {
    if (!this.#failing) {
      this.#failing = true
      this.#log.error({ event: 'audit.export-failed', exporter: 'otlp', code }, 'export failed')
    }
    return 'retry'
  }
}

/** The `/v1/logs` URL of an endpoint; only `https:` is accepted (C28). */
export function logsUrl(endpoint: string): URL {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch (err) {
    throw new AuditExportError('otlp endpoint is not a URL', { cause: err })
  }
  if (url.protocol !== 'https:') {
    throw new AuditExportError(
      'otlp endpoint must use https (certificate verification is mandatory)',
    )
  }
  if (!url.pathname.endsWith(OTLP_LOGS_PATH)) {
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${OTLP_LOGS_PATH}`
  }
  return url
}

/** `partialSuccess.rejectedLogRecords` of a response body, 0 when absent. */
function partialRejections(body: Buffer): number {
  if (body.length === 0) return 0
  try {
    const parsed = JSON.parse(body.toString('utf8')) as {
      partialSuccess?: { rejectedLogRecords?: unknown }
    }
    const n = Number(parsed.partialSuccess?.rejectedLogRecords ?? 0)
    return Number.isSafeInteger(n) && n > 0 ? n : 0
  } catch {
    return 0
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, Math.max(0, ms))
    t.unref()
  })
}
