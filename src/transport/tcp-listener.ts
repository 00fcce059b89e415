/**
 * Plain TCP listener: exists only in the `dev` environment on a loopback
 * address (control C05, checked when the config is loaded), and says so at
 * every start.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { BrokerHandle } from '../broker/broker-api.js'
import type { Logger } from '../broker/logger.js'
import { ListenError } from '../errors.js'

export interface ListenerOptions {
  readonly name: string
  readonly host: string
  readonly port: number
}

/** A started listener. */
export interface RunningListener {
  readonly name: string
  /** e.g. `mqtt://127.0.0.1:1883` */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

export async function startTcpListener(
  options: ListenerOptions,
  broker: BrokerHandle,
  log: Logger,
): Promise<RunningListener> {
  const server: Server = createServer({ noDelay: true }, (socket: Socket) => {
    broker.handleConnection(socket, {
      listener: options.name,
      remoteAddress: socket.remoteAddress ?? '',
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new ListenError(`listener ${options.name} cannot bind ${options.host}:${options.port}`, {
          cause: err,
        }),
      ),
    )
    server.listen(options.port, options.host, resolve)
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  log.warn(
    { event: 'listener.plaintext', listener: options.name, host: options.host, port },
    'plaintext listener: development only, never for PHI',
  )
  return {
    name: options.name,
    url: `mqtt://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
      }),
  }
}
