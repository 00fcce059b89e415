/**
 * The CA's HTTP face for small deployments and tests: OCSP (RFC 6960
 * appendix A: POST, or GET with the base64 request in the path) and the
 * current CRL, on a loopback address only.
 */
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CaStateError } from '../errors.js'
import type { CertificateAuthority } from './ca.js'

/** Largest OCSP request body read. */
const OCSP_REQUEST_MAX_BYTES = 16 * 1024

export interface CaHttpOptions {
  /** Loopback only: 127.0.0.1 (default) or ::1. */
  host?: string
  port?: number
  /** How long an OCSP answer is valid (nextUpdate); default 3600. */
  ocspValiditySeconds?: number
}

export interface RunningCaHttp {
  /** e.g. `http://127.0.0.1:8990/ocsp` */
  readonly ocspUrl: string
  /** e.g. `http://127.0.0.1:8990/crl.pem` */
  readonly crlUrl: string
  readonly port: number
  close(): Promise<void>
}

/** Serve OCSP at `/ocsp` and the CRL at `/crl.pem`. The CA must be opened with its passphrase. */
export async function startCaHttp(
  ca: CertificateAuthority,
  options: CaHttpOptions = {},
): Promise<RunningCaHttp> {
  const host = options.host ?? '127.0.0.1'
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
    throw new CaStateError('the ca http responder binds a loopback address only')
  }
  const validity = options.ocspValiditySeconds ?? 3600
  const server = createServer((req, res) => {
    handle(ca, validity, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve))
  const port = (server.address() as AddressInfo).port
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  return {
    ocspUrl: `${base}/ocsp`,
    crlUrl: `${base}/crl.pem`,
    port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

async function handle(
  ca: CertificateAuthority,
  validity: number,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost')
  if (req.method === 'GET' && url.pathname === '/crl.pem') {
    const pem = await readFile(ca.crlPath)
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(pem)
    return
  }
  let body: Buffer | undefined
  if (req.method === 'POST' && url.pathname === '/ocsp') {
    body = await readBody(req)
  } else if (req.method === 'GET' && url.pathname.startsWith('/ocsp/')) {
    body = Buffer.from(decodeURIComponent(url.pathname.slice('/ocsp/'.length)), 'base64')
  }
  if (body === undefined) {
    res.writeHead(404).end()
    return
  }
  await ca.refresh()
  const answer = await ca.answerOcsp(body, validity)
  res
    .writeHead(200, {
      'content-type': 'application/ocsp-response',
      'cache-control': `max-age=${validity}`,
    })
    .end(Buffer.from(answer))
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > OCSP_REQUEST_MAX_BYTES) {
        req.destroy()
        reject(new Error('ocsp request too large'))
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}
