/**
 * The optional alert webhook (C29): each alert is POSTed as JSON to an
 * HTTPS URL with certificate verification on. The body names the rule and
 * the numbers, never the subject (a client id or address): responders
 * look it up in the audit trail by rule and time.
 */
import { request } from 'node:https'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import { ConfigError } from '../errors.js'
import type { Alert } from './alerts.js'

export interface WebhookOptions {
  /** Must be `https:`. */
  readonly url: string
  /** CA certificates (PEM) for the receiver; the system store when absent. */
  readonly ca?: string | Buffer | undefined
  readonly timeoutMs?: number | undefined
  readonly node?: string | undefined
  readonly logger?: Logger | undefined
  /** Epoch ms, for the `time` field. */
  readonly now?: (() => number) | undefined
}

/** Sends alerts to one HTTPS endpoint, fire and forget. */
export class AlertWebhook {
  readonly #url: URL
  readonly #options: WebhookOptions
  readonly #log: Logger
  readonly #pending = new Set<Promise<void>>()

  constructor(options: WebhookOptions) {
    this.#url = new URL(options.url)
    if (this.#url.protocol !== 'https:') {
      throw new ConfigError('alerts.webhook.url must use https')
    }
    this.#options = options
    this.#log = options.logger ?? silentLogger
  }

  /** Post one alert; failures are logged, never thrown. */
  send(alert: Alert): void {
    const body = JSON.stringify({
      rule: alert.rule,
      severity: alert.severity,
      observed: alert.observed,
      threshold: alert.threshold,
      windowSeconds: alert.windowSeconds,
      node: this.#options.node,
      time: new Date(this.#options.now?.() ?? Date.now()).toISOString(),
    })
    const done = this.#post(body).catch((err: NodeJS.ErrnoException) => {
      this.#log.error(
        { event: 'alert.webhook-failed', exporter: 'webhook', code: err.code ?? err.message },
        'export failed',
      )
    })
    this.#pending.add(done)
    void done.finally(() => this.#pending.delete(done))
  }

  /** Wait for alerts in flight. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#pending])
  }

  #post(body: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request(
        this.#url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
          ...(this.#options.ca === undefined ? {} : { ca: this.#options.ca }),
          rejectUnauthorized: true,
          timeout: this.#options.timeoutMs ?? 5000,
        },
        (res) => {
          res.resume()
          const status = res.statusCode ?? 0
          if (status >= 200 && status < 300) resolve()
          else
            reject(
              Object.assign(new Error(`webhook answered ${status}`), { code: `HTTP_${status}` }),
            )
        },
      )
      req.on('timeout', () =>
        req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })),
      )
      req.on('error', reject)
      req.end(body)
    })
  }
}
