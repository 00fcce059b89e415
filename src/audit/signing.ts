/**
 * The Ed25519 key that signs audit checkpoints (C27). The private key lives
 * in the data directory, mode 0600, made on first use; the public key is
 * copied next to the segments so `phimq audit verify` can check them.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { AuditKeyError } from '../errors.js'

/** A signing key and the id that names it in checkpoints. */
export interface SigningKey {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** First 16 hex digits of the SHA-256 of the public key (SPKI DER). */
  readonly keyId: string
}

/** The id of a public key: a short SHA-256 of its SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(der).digest('hex').slice(0, 16)
}

/** Read the key at `path`, or make one there (mode 0600) when none exists. */
export function loadOrCreateSigningKey(path: string): SigningKey {
  let pem: string | undefined
  try {
    const mode = statSync(path).mode
    // Group or other access would let another account forge checkpoints.
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new AuditKeyError(`audit signing key ${path} is readable by others; chmod 600 it`)
    }
    pem = readFileSync(path, 'utf8')
  } catch (err) {
    if (err instanceof AuditKeyError) throw err
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AuditKeyError(`cannot read audit signing key ${path}`, { cause: err })
    }
  }
  if (pem === undefined) return createSigningKey(path)

  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch (err) {
    throw new AuditKeyError(`audit signing key ${path} is not a private key`, { cause: err })
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new AuditKeyError(`audit signing key ${path} is not ed25519`)
  }
  const publicKey = createPublicKey(privateKey)
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) }
}

function createSigningKey(path: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  // `wx`: never overwrite a key another process made meanwhile.
  writeFileSync(path, pem, { flag: 'wx', mode: 0o600 })
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) }
}

/** Base64 Ed25519 signature of a UTF-8 string. */
export function signText(key: KeyObject, text: string): string {
  return sign(null, Buffer.from(text, 'utf8'), key).toString('base64')
}

/** Check a base64 Ed25519 signature; false on any malformed input. */
export function verifyText(key: KeyObject, text: string, signature: string): boolean {
  try {
    return verify(null, Buffer.from(text, 'utf8'), key, Buffer.from(signature, 'base64'))
  } catch {
    return false
  }
}

/** Public key as SPKI PEM, for the copy kept beside the segments. */
export function publicKeyPem(key: SigningKey): string {
  return key.publicKey.export({ type: 'spki', format: 'pem' }) as string
}
