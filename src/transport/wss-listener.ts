/**
 * The `wss` listener: MQTT over WebSocket over TLS (default port 8884, path
 * `/mqtt`, subprotocol `mqtt`), with `ws` on `node:https`. The TLS guard is
 * the same as on `mqtts`, so the same certificate checks, audit events and
 * revocation apply (C09, C11, C13); the WebSocket upgrade is allowed only on
 * a connection the guard admitted.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import { createWebSocketStream, WebSocketServer } from 'ws'
import type { BrokerHandle } from '../broker/broker-api.js'
import { listen, urlHost } from './listen.js'
import {
  type RunningTlsListener,
  resolveTlsOptions,
  type TlsListenerDeps,
  type WssListenerOptions,
} from './listener-options.js'
import { type Admission, TlsGuard } from './tls-guard.js'

/** The only WebSocket subprotocol accepted (MQTT 5.0 section 6). */
export const MQTT_WS_SUBPROTOCOL = 'mqtt'
/** A little above the default maximum MQTT packet (1 MiB). */
export const WSS_MAX_PAYLOAD_BYTES_DEFAULT = 1_048_640

/**
 * Start a `wss` listener; resolves once it is listening. Throws
 * `TlsMaterialError` for unreadable TLS files, `ListenError` if it cannot bind.
 */
export async function createWssListener(
  options: WssListenerOptions,
  broker: BrokerHandle,
  deps: TlsListenerDeps,
): Promise<RunningTlsListener> {
  const o = resolveTlsOptions(options)
  const path = options.path ?? '/mqtt'
  const origins = options.allowedOrigins ? new Set(options.allowedOrigins) : undefined
  const guard = new TlsGuard(o, broker, deps)
  const server = createServer(guard.serverOptions())
  guard.attach(server)

  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  // Decide on the certificate before the HTTP layer reads a byte.
  // The HTTP layer starts reading at once; an upgrade waits for the verdict.
  const admissions = new WeakMap<TLSSocket, Promise<Admission | undefined>>()
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    admissions.set(socket, guard.admit(socket))
  })
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(426, { connection: 'close', upgrade: 'websocket' }).end()
  })

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayloadBytes ?? WSS_MAX_PAYLOAD_BYTES_DEFAULT,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(MQTT_WS_SUBPROTOCOL) ? MQTT_WS_SUBPROTOCOL : false),
  })

  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    const tlsSocket = req.socket as TLSSocket
    const admitted = await admissions.get(tlsSocket)
    const refusal = checkUpgrade(req, admitted, path, origins)
    if (refusal !== undefined || !admitted) {
      socket.end(`HTTP/1.1 ${refusal ?? '403 Forbidden'}\r\nConnection: close\r\n\r\n`)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      broker.handleConnection(stream, {
        listener: o.name,
        remoteAddress: tlsSocket.remoteAddress ?? 'unknown',
        identity: admitted.identity,
        clientIdBinding: o.clientIdBinding,
        tls: admitted.tls,
      })
    })
  }
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void upgrade(req, socket, head)
  })

  const port = await listen(server, o.host, o.port, o.name)
  return {
    name: o.name,
    url: `wss://${urlHost(o.host)}:${port}${path}`,
    port,
    close: async () => {
      guard.close()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const ws of wss.clients) ws.terminate()
      for (const socket of sockets) socket.destroy()
      wss.close()
      await closed
    },
  }
}

/** Path, subprotocol and origin of an upgrade; an HTTP status line on refusal. */
function checkUpgrade(
  req: IncomingMessage,
  admitted: Admission | undefined,
  path: string,
  origins: ReadonlySet<string> | undefined,
): string | undefined {
  if (!admitted) return '403 Forbidden'
  const url = new URL(req.url ?? '/', 'https://localhost')
  if (url.pathname !== path) return '404 Not Found'
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
  if (!offered.includes(MQTT_WS_SUBPROTOCOL)) return '400 Bad Request'
  if (origins && req.headers.origin !== undefined && !origins.has(req.headers.origin)) {
    return '403 Forbidden'
  }
  return undefined
}
