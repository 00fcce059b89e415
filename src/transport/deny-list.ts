/**
 * The local deny list (control C11): SHA-256 certificate fingerprints that
 * are refused at once, at the next handshake and on live sessions. One list
 * may be shared by all listeners; the admin API (C30) adds to it.
 */
import { readFileSync } from 'node:fs'
import { TlsMaterialError } from '../errors.js'

type ChangeListener = (added: readonly string[]) => void

/** Upper-case hex with colons, the form of Node's `fingerprint256`; undefined if not SHA-256. */
export function normalizeFingerprint(value: string): string | undefined {
  const hex = value.replace(/[:\s]/g, '').toUpperCase()
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined
  return hex.match(/../g)!.join(':')
}

/** Fingerprints refused by this broker, from config files and at run time. */
export class DenyList {
  readonly #runtime = new Set<string>()
  readonly #fromFiles = new Map<string, Set<string>>()
  readonly #listeners = new Set<ChangeListener>()

  /** Refuse a fingerprint from now on; live sessions holding it are closed. */
  add(fingerprint: string): void {
    const fp = mustNormalize(fingerprint)
    const had = this.has(fp)
    this.#runtime.add(fp)
    if (!had) this.#notify([fp])
  }

  remove(fingerprint: string): boolean {
    const fp = normalizeFingerprint(fingerprint)
    return fp !== undefined && this.#runtime.delete(fp)
  }

  has(fingerprint: string): boolean {
    const fp = normalizeFingerprint(fingerprint)
    if (fp === undefined) return false
    if (this.#runtime.has(fp)) return true
    for (const set of this.#fromFiles.values()) if (set.has(fp)) return true
    return false
  }

  /**
   * Replace the entries that came from `path`: one fingerprint per line,
   * blank lines and `#` comments ignored. Throws `TlsMaterialError` on a bad line.
   */
  loadFile(path: string): void {
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      throw new TlsMaterialError(`deny list ${path} cannot be read`, { cause: err })
    }
    const next = new Set<string>()
    for (const [n, raw] of text.split('\n').entries()) {
      const line = raw.replace(/#.*/, '').trim()
      if (line === '') continue
      const fp = normalizeFingerprint(line)
      if (!fp)
        throw new TlsMaterialError(`deny list ${path} line ${n + 1}: not a sha-256 fingerprint`)
      next.add(fp)
    }
    const added = [...next].filter((fp) => !this.has(fp))
    this.#fromFiles.set(path, next)
    if (added.length > 0) this.#notify(added)
  }

  /** Called with newly denied fingerprints; returns an unsubscribe function. */
  onAdded(listener: ChangeListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  get size(): number {
    const all = new Set(this.#runtime)
    for (const set of this.#fromFiles.values()) for (const fp of set) all.add(fp)
    return all.size
  }

  #notify(added: readonly string[]): void {
    for (const listener of this.#listeners) listener(added)
  }
}

function mustNormalize(fingerprint: string): string {
  const fp = normalizeFingerprint(fingerprint)
  if (!fp) throw new TlsMaterialError('not a sha-256 fingerprint')
  return fp
}
