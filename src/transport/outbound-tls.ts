/**
 * TLS for outbound connections (control C14: TLS on every hop): bridges and
 * connectors verify the server against a pinned CA, present a client
 * certificate, and use the same versions and ciphers as the listeners.
 * There is no option to turn verification off.
 */
import { connect, type TLSSocket } from 'node:tls'
import { TlsMaterialError } from '../errors.js'
import {
  allowedCiphersFor,
  ciphersFor,
  TLS_MAX_VERSION,
  TLS_SECURE_OPTIONS,
} from './tls-options.js'

export interface OutboundTlsOptions {
  host: string
  port: number
  /** The pinned CA bundle (PEM) the server must chain to; never the system store. */
  ca: string
  /** Client certificate chain and key (PEM) presented to the server. */
  cert: string
  key: string
  /** Name checked against the server certificate; default `host`. */
  servername?: string | undefined
  timeoutMs?: number | undefined
}

/** Why an outbound connection was refused, for the caller's audit event. */
export class OutboundTlsError extends TlsMaterialError {
  readonly reason: string

  constructor(reason: string, options?: ErrorOptions) {
    super(`outbound tls refused: ${reason.toLowerCase()}`, options)
    this.reason = reason
  }
}

/**
 * Connect with verification on (`rejectUnauthorized: true`, C14). Resolves
 * with the socket after the handshake; rejects with `OutboundTlsError`
 * naming the reason (`DEPTH_ZERO_SELF_SIGNED_CERT`, `ERR_SSL_WRONG_VERSION_NUMBER`,
 * `TIMEOUT` ...).
 */
export function connectOutboundTls(options: OutboundTlsOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: options.host,
      port: options.port,
      servername: options.servername ?? options.host,
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      maxVersion: TLS_MAX_VERSION,
      ciphers: ciphersFor('default'),
      secureOptions: TLS_SECURE_OPTIONS,
    })
    const timer = setTimeout(() => fail('TIMEOUT'), options.timeoutMs ?? 10_000)
    timer.unref()
    const fail = (reason: string, cause?: unknown): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(new OutboundTlsError(reason, { cause }))
    }
    socket.once('secureConnect', () => {
      clearTimeout(timer)
      const cipher = socket.getCipher().standardName
      if (!allowedCiphersFor('default').has(cipher)) {
        fail('CIPHER_NOT_ALLOWED')
        return
      }
      socket.removeAllListeners('error')
      resolve(socket)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'ERROR', err))
    socket.once('close', () => fail('CLOSED'))
  })
}
