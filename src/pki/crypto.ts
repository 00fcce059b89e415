/**
 * Crypto helpers the PKI and the transport share: the WebCrypto provider for
 * `@peculiar/x509`, serial numbers, fingerprints, and private keys kept
 * encrypted at rest (PKCS#8, PBES2 with AES-256-CBC) by `node:crypto`.
 */
import { createHash, createPrivateKey, type KeyObject, randomBytes, webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { CaPassphraseError } from '../errors.js'

/** WebCrypto key types, from Node (the project compiles without the DOM lib). */
export type CryptoKey = webcrypto.CryptoKey
export type CryptoKeyPair = webcrypto.CryptoKeyPair
type SigningAlgorithm = webcrypto.EcKeyImportParams & webcrypto.EcdsaParams

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

/** Shortest passphrase `initCa` accepts for the CA keys. */
export const CA_PASSPHRASE_MIN_LENGTH = 12

/** Key types the CA can make; EC P-256 is the default. */
export const KEY_TYPES = ['ec-p256', 'ec-p384'] as const
export type KeyType = (typeof KEY_TYPES)[number]

/** WebCrypto parameters for a key type, also used as the signing algorithm. */
export function algorithmFor(keyType: KeyType): SigningAlgorithm {
  return keyType === 'ec-p384'
    ? { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' }
    : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
}

/** A fresh signing key pair. */
export async function generateKeyPair(keyType: KeyType): Promise<CryptoKeyPair> {
  const pair = await webcrypto.subtle.generateKey(algorithmFor(keyType), true, ['sign', 'verify'])
  return pair as CryptoKeyPair
}

/**
 * A positive 127-bit serial in lower-case hex (RFC 5280 4.1.2.2: at most 20
 * octets, positive). The top bits are fixed so the DER form has no padding.
 */
export function newSerial(): string {
  const bytes = randomBytes(16)
  bytes[0] = 0x40 | ((bytes[0] ?? 0) & 0x3f)
  return bytes.toString('hex')
}

/** SHA-256 of DER bytes as upper-case hex with colons, the form Node's `fingerprint256` uses. */
export function fingerprint256(der: ArrayBuffer | Uint8Array): string {
  const hex = createHash('sha256').update(new Uint8Array(der)).digest('hex').toUpperCase()
  return hex.match(/../g)?.join(':') ?? ''
}

/** Export a WebCrypto private key as unencrypted PKCS#8 PEM (for a device to hold). */
export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key)
  return toKeyObject(new Uint8Array(der)).export({ type: 'pkcs8', format: 'pem' }) as string
}

/** Export a private key encrypted with `passphrase` (PKCS#8 PBES2, AES-256-CBC). */
export async function exportEncryptedPrivateKeyPem(
  key: CryptoKey,
  passphrase: string,
): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key)
  return toKeyObject(new Uint8Array(der)).export({
    type: 'pkcs8',
    format: 'pem',
    cipher: 'aes-256-cbc',
    passphrase,
  }) as string
}

/** Decrypt an encrypted PKCS#8 PEM into a WebCrypto signing key. */
export async function importEncryptedPrivateKey(
  pem: string,
  passphrase: string,
  keyType: KeyType,
): Promise<CryptoKey> {
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem', passphrase })
  } catch (err) {
    throw new CaPassphraseError('ca key cannot be decrypted: wrong passphrase', { cause: err })
  }
  const der = key.export({ type: 'pkcs8', format: 'der' })
  const imported = await webcrypto.subtle.importKey('pkcs8', der, algorithmFor(keyType), false, [
    'sign',
  ])
  return imported
}

function toKeyObject(der: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
}
