/**
 * The `mqtts` listener: MQTT over TLS (default port 8883). Every connection
 * must present a client certificate that passes the guard (controls
 * C05–C13); the broker core only ever sees admitted sockets, with the
 * mapped identity and the listener's Client Identifier binding rule.
 */
import type { Socket } from 'node:net'
import { createServer, type TLSSocket } from 'node:tls'
import type { BrokerHandle } from '../broker/broker-api.js'
import { listen, urlHost } from './listen.js'
import {
  type RunningTlsListener,
  resolveTlsOptions,
  type TlsListenerDeps,
  type TlsListenerOptions,
} from './listener-options.js'
import { TlsGuard } from './tls-guard.js'

/**
 * Start an `mqtts` listener; resolves once it is listening. Throws
 * `TlsMaterialError` for unreadable TLS files, `ListenError` if it cannot bind.
 */
export async function createMqttsListener(
  options: TlsListenerOptions,
  broker: BrokerHandle,
  deps: TlsListenerDeps,
): Promise<RunningTlsListener> {
  const o = resolveTlsOptions(options)
  const guard = new TlsGuard(o, broker, deps)
  // No Nagle: an MQTT packet is small and waits for no more bytes; with it, a
  // PUBLISH or PUBACK can sit up to a delayed-ACK period (40 ms) in the kernel.
  const server = createServer({ ...guard.serverOptions(), noDelay: true })
  guard.attach(server)

  // Every raw socket, admitted or mid-handshake, so close() ends them all.
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('secureConnection', (socket: TLSSocket) => {
    void guard.admit(socket).then((admitted) => {
      if (!admitted) return
      broker.handleConnection(socket, {
        listener: o.name,
        remoteAddress: socket.remoteAddress ?? 'unknown',
        identity: admitted.identity,
        clientIdBinding: o.clientIdBinding,
        tls: admitted.tls,
      })
    })
  })

  const port = await listen(server, o.host, o.port, o.name)
  return {
    name: o.name,
    url: `mqtts://${urlHost(o.host)}:${port}`,
    port,
    close: async () => {
      guard.close()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}
