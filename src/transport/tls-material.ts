/**
 * Reads a listener's TLS files (server chain, key, client CA bundle, CRLs)
 * and watches them, so a swapped certificate or a new CRL takes effect
 * without a restart (controls C11, C12). Polling (`fs.watchFile`) is used
 * because it survives files replaced by rename, which `fs.watch` does not.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync, type Stats, unwatchFile, watchFile } from 'node:fs'
import { TlsMaterialError } from '../errors.js'
import { type CrlIssuer, CrlSet } from './crl-set.js'

export interface TlsFilePaths {
  readonly cert: string
  readonly key: string
  readonly ca: string
  readonly crl: readonly string[]
}

export interface ServerMaterial {
  readonly cert: string
  readonly key: string
  readonly ca: string
  /** SHA-256 fingerprint of the first certificate in `cert`. */
  readonly fingerprint256: string
}

/** Read the server chain, key and client CA bundle. Throws `TlsMaterialError`. */
export function readServerMaterial(paths: TlsFilePaths): ServerMaterial {
  const cert = readText(paths.cert, 'cert')
  const key = readText(paths.key, 'key')
  const ca = readText(paths.ca, 'ca')
  let fingerprint256: string
  try {
    fingerprint256 = new X509Certificate(cert).fingerprint256
  } catch (err) {
    throw new TlsMaterialError(`cert file ${paths.cert} holds no pem certificate`, { cause: err })
  }
  return { cert, key, ca, fingerprint256 }
}

/**
 * Read and parse every CRL file; a CRL of a known issuer must verify
 * against it. Throws `TlsMaterialError` or `CrlSignatureError`.
 */
export function readCrls(paths: readonly string[], issuers: readonly CrlIssuer[] = []): CrlSet {
  if (paths.length === 0) return CrlSet.EMPTY
  return CrlSet.parse(
    paths.map((path) => ({ path, text: readText(path, 'crl') })),
    issuers,
  )
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new TlsMaterialError(`${what} file ${path} cannot be read`, { cause: err })
  }
}

/** Calls `onChange(path)` when a watched file's size or mtime changes. */
export class FileWatcher {
  readonly #watched = new Map<string, (curr: Stats, prev: Stats) => void>()

  constructor(paths: Iterable<string>, intervalMs: number, onChange: (path: string) => void) {
    for (const path of new Set(paths)) {
      const listener = (curr: Stats, prev: Stats): void => {
        if (curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size || curr.ino !== prev.ino) {
          onChange(path)
        }
      }
      const watcher = watchFile(path, { interval: intervalMs, persistent: false }, listener)
      watcher.unref?.()
      this.#watched.set(path, listener)
    }
  }

  close(): void {
    for (const [path, listener] of this.#watched) unwatchFile(path, listener)
    this.#watched.clear()
  }
}
