/**
 * Test fixtures for the TLS listeners: a CA made by our PKI module with a
 * server certificate on disk, a recording stand-in for the broker (allowed
 * for listener-level tests only: it proves what the listener hands over,
 * not that MQTT works), and a node:tls client.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls'
import type { BrokerHandle, ConnectionContext } from '../../src/broker/broker-api.js'
import type { Identity } from '../../src/broker/types.js'
import { type CertificateAuthority, initCa } from '../../src/pki/ca.js'

export const TEST_PASSPHRASE = 'a synthetic test passphrase'

export interface Pki {
  ca: CertificateAuthority
  dir: string
  paths: { cert: string; key: string; ca: string; crl: string }
}

/** A CA in `dir/ca` and a server certificate in `dir/server.{crt,key}`. */
export async function makePki(dir: string): Promise<Pki> {
  const ca = await initCa(join(dir, 'ca'), TEST_PASSPHRASE)
  const server = await ca.issueCertificate({ kind: 'server', tenant: 'acme', id: 'broker-1' })
  const paths = {
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
    ca: join(dir, 'ca.pem'),
    crl: ca.crlPath,
  }
  writeFileSync(paths.cert, server.chainPem)
  writeFileSync(paths.key, server.keyPem, { mode: 0o600 })
  writeFileSync(paths.ca, ca.rootPem)
  return { ca, dir, paths }
}

export interface Recorded {
  stream: Duplex
  context: ConnectionContext
  /** Set by a test to play the part of a CONNECT with this Client Identifier. */
  clientId?: string
}

/** Records what listeners hand over; `disconnectClient` ends the stream. */
export class RecordingBroker implements BrokerHandle {
  readonly connections: Recorded[] = []
  readonly disconnects: Array<{ clientId: string; reasonCode: number; at: number }> = []

  handleConnection(stream: Duplex, context: ConnectionContext): void {
    this.connections.push({ stream, context })
    // Keep the stream flowing like the core would.
    stream.on('data', () => {})
    stream.on('error', () => {})
  }

  disconnectClient(clientId: string, reasonCode: number): boolean {
    const found = this.connections.find((c) => c.clientId === clientId && !c.stream.destroyed)
    if (!found) return false
    this.disconnects.push({ clientId, reasonCode, at: Date.now() })
    found.stream.destroy()
    return true
  }

  listClients(
    predicate?: (c: { clientId: string; identity?: Identity | undefined }) => boolean,
  ): string[] {
    return this.connections
      .filter((c) => c.clientId !== undefined && !c.stream.destroyed)
      .map((c) => ({ clientId: c.clientId as string, identity: c.context.identity }))
      .filter((c) => (predicate ? predicate(c) : true))
      .map((c) => c.clientId)
  }
}

export interface ClientOutcome {
  socket: TLSSocket
  /** The TLS handshake completed on the client side. */
  secure: boolean
  error?: NodeJS.ErrnoException
}

/** Connect and settle on the first of: secureConnect, error, close. */
export function tlsClient(port: number, options: ConnectionOptions): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...options })
    socket.once('secureConnect', () => resolve({ socket, secure: true }))
    socket.once('error', (error: NodeJS.ErrnoException) =>
      resolve({ socket, secure: false, error }),
    )
    socket.once('close', () => resolve({ socket, secure: false }))
  })
}

/** Resolves when the socket closes, or rejects after `ms`. */
export function closed(socket: TLSSocket, ms = 2000): Promise<void> {
  if (socket.destroyed) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket still open')), ms)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.on('error', () => {})
  })
}

/** Poll `predicate` every 10 ms until it holds, or fail after `ms`. */
export async function waitFor<T>(
  predicate: () => T | undefined | false,
  ms = 3000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const value = predicate()
    if (value) return value
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
