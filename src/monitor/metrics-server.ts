/**
 * The operations port: `GET /metrics` in the Prometheus text format, on
 * loopback unless configured otherwise. Nothing else is served.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'
import type { Metrics } from './metrics.js'

export interface MetricsServerOptions {
  readonly metrics: Metrics
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Default 9464; 0 picks a free port. */
  readonly port?: number | undefined
  readonly logger?: Logger | undefined
}

export interface RunningMetricsServer {
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** Start serving `/metrics`. */
export async function startMetricsServer(
  options: MetricsServerOptions,
): Promise<RunningMetricsServer> {
  const { metrics } = options
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      () => res.writeHead(500).end(),
    )
  })
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 9464, host, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`
  ;(options.logger ?? silentLogger).info({ event: 'metrics.started', url }, 'metrics started')
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
