/**
 * Encryption at rest for the durable store. Records (queued, retained and
 * will messages) are sealed with AES-256-GCM under a per-tenant data key,
 * each with its own random nonce and the id of its key. Data keys are kept
 * wrapped by a master key that a `MasterKeyProvider` holds: a file or an
 * environment variable today, a KMS later. Destroying a tenant's data keys
 * leaves its records unreadable (crypto-erase).
 *
 * Record layout: `[version 1][key id u32 BE][nonce 12][tag 16][ciphertext]`.
 * The first five bytes and a caller-chosen context string are bound in as
 * additional authenticated data, so a record moved to another row or
 * relabelled with another key id fails to open.
 */
import {
  type CipherKey,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
} from 'node:crypto'
import { readFileSync } from 'node:fs'
import { MasterKeyError, StoreError } from '../errors.js'

export const AES_KEY_BYTES = 32
const NONCE_BYTES = 12
const TAG_BYTES = 16
const RECORD_VERSION = 1
const HEADER_BYTES = 5
const WRAP_VERSION = 1

/**
 * Holds the master key, or reaches it: wraps and unwraps data keys. A KMS
 * implementation never hands out the master key itself, hence no getter.
 */
export interface MasterKeyProvider {
  /** A stable, non-secret fingerprint; stored with each wrapped key. */
  readonly id: string
  /** Seal `dataKey`; `context` is bound in and must match at unwrap. */
  wrap(dataKey: Buffer, context: string): Promise<Buffer>
  /** Open a wrapped key; throws `MasterKeyError` if it is not ours. */
  unwrap(wrapped: Buffer, context: string): Promise<Buffer>
}

/** A 256-bit master key held in process memory. */
export class LocalMasterKey implements MasterKeyProvider {
  readonly id: string
  readonly #key: Buffer

  constructor(key: Buffer) {
    if (key.length !== AES_KEY_BYTES) {
      throw new MasterKeyError(`master key must be ${AES_KEY_BYTES} bytes, got ${key.length}`)
    }
    this.#key = Buffer.from(key)
    // A one-way fingerprint; it says which key, never what key.
    const mac = createHmac('sha256', this.#key).update('phimq master key id').digest()
    this.id = `local:${mac.subarray(0, 8).toString('hex')}`
  }

  async wrap(dataKey: Buffer, context: string): Promise<Buffer> {
    const header = Buffer.from([WRAP_VERSION])
    return Buffer.concat([header, seal(this.#key, dataKey, aadOf(header, context))])
  }

  async unwrap(wrapped: Buffer, context: string): Promise<Buffer> {
    if (wrapped[0] !== WRAP_VERSION) throw new MasterKeyError('wrapped key has unknown version')
    try {
      return unseal(this.#key, wrapped.subarray(1), aadOf(wrapped.subarray(0, 1), context))
    } catch (err) {
      throw new MasterKeyError('master key does not open the stored data keys', { cause: err })
    }
  }
}

/**
 * Read a master key written as text: 64 hex digits or base64 of 32 bytes,
 * surrounding whitespace ignored. Raw bytes are refused: a 32-character
 * passphrase would pass for a key.
 */
export function parseMasterKey(raw: Buffer | string): Buffer {
  const text = (typeof raw === 'string' ? raw : raw.toString('utf8')).trim()
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex')
  if (/^[A-Za-z0-9+/]{43}=?$/.test(text)) {
    const key = Buffer.from(text, 'base64')
    if (key.length === AES_KEY_BYTES) return key
  }
  throw new MasterKeyError('master key must be 32 bytes written as 64 hex digits or base64')
}

/** The master key from a file (C: keep it off the data disk, mode 0600). */
export function masterKeyFromFile(path: string): LocalMasterKey {
  let raw: Buffer
  try {
    raw = readFileSync(path)
  } catch (err) {
    throw new MasterKeyError(`cannot read master key file ${path}`, { cause: err })
  }
  return new LocalMasterKey(parseMasterKey(raw))
}

/** The master key from an environment variable (hex or base64). */
export function masterKeyFromEnv(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): LocalMasterKey {
  const value = env[name]
  if (value === undefined || value === '') {
    throw new MasterKeyError(`environment variable ${name} holding the master key is not set`)
  }
  return new LocalMasterKey(parseMasterKey(value))
}

/** A fresh master key, base64, for `phimq store init-master-key`. */
export function generateMasterKey(): string {
  return randomBytes(AES_KEY_BYTES).toString('base64')
}

/** `data` keys seal records; the one `index` key computes topic hashes. */
export type KeyPurpose = 'data' | 'index'

/** `active` keys seal new records; `retired` ones only open old records. */
export type KeyState = 'active' | 'retired'

/** A data key in memory, unwrapped. */
export interface DataKey {
  readonly id: number
  /** `undefined` is the default tenant: clients with no tenant. */
  readonly tenant: string | undefined
  readonly purpose: KeyPurpose
  state: KeyState
  readonly createdAt: number
  readonly key: Buffer
}

/** A data key as persisted: wrapped by the master key. */
export interface WrappedKeyRecord {
  readonly id: number
  readonly tenant: string | undefined
  readonly purpose: KeyPurpose
  readonly state: KeyState
  readonly createdAt: number
  readonly masterKeyId: string
  readonly wrapped: Buffer
}

/** What the master key binds to a wrapped key: it cannot be moved to another id or tenant. */
export function wrapContext(key: Pick<DataKey, 'id' | 'tenant' | 'purpose'>): string {
  const tenant = key.tenant === undefined ? '-' : `t:${key.tenant}`
  return `phimq-dk:v1:${key.id}:${key.purpose}:${tenant}`
}

/**
 * The unwrapped data keys of one store. Lookups are synchronous so that
 * fire-and-forget writes can seal at once; keys created here are handed to
 * the store (`takeNew`) to be wrapped and written before the records using
 * them commit.
 */
export class KeyRing {
  readonly #byId = new Map<number, DataKey>()
  /** Active data key per tenant; the default tenant under `undefined`. */
  readonly #active = new Map<string | undefined, DataKey>()
  #index: DataKey | undefined
  #nextId = 1
  #new: DataKey[] = []
  readonly #now: () => number

  constructor(now: () => number) {
    this.#now = now
  }

  /** Load a key read from the store. */
  add(key: DataKey): void {
    this.#byId.set(key.id, key)
    this.#nextId = Math.max(this.#nextId, key.id + 1)
    if (key.purpose === 'index') this.#index = key
    else if (key.state === 'active') this.#active.set(key.tenant, key)
  }

  get(id: number): DataKey | undefined {
    return this.#byId.get(id)
  }

  keys(): DataKey[] {
    return [...this.#byId.values()]
  }

  /** The key new records of `tenant` are sealed with; made on first use. */
  activeFor(tenant: string | undefined): DataKey {
    const known = this.#active.get(tenant)
    if (known) return known
    const key = this.#create(tenant, 'data')
    this.#active.set(tenant, key)
    return key
  }

  /** Retire the tenant's active key and make a new one. Returns the new key. */
  rotate(tenant: string | undefined): DataKey {
    const old = this.#active.get(tenant)
    if (old) old.state = 'retired'
    this.#active.delete(tenant)
    return this.activeFor(tenant)
  }

  /** Forget keys (crypto-erase or unused); their bytes are overwritten. */
  remove(ids: Iterable<number>): void {
    for (const id of ids) {
      const key = this.#byId.get(id)
      if (!key) continue
      this.#byId.delete(id)
      if (this.#active.get(key.tenant) === key) this.#active.delete(key.tenant)
      if (this.#index === key) this.#index = undefined
      SECRET_KEYS.delete(key)
      key.key.fill(0)
    }
    this.#new = this.#new.filter((k) => this.#byId.has(k.id))
  }

  /** Keys made since the last call; the store wraps and writes them. */
  takeNew(): DataKey[] {
    const out = this.#new
    this.#new = []
    return out
  }

  /** Hand back keys whose write failed; they go with the next batch. */
  restoreNew(keys: DataKey[]): void {
    this.#new = [...keys.filter((k) => this.#byId.has(k.id)), ...this.#new]
  }

  /** Keyed hash of a topic: the retained index, so topics are never stored in clear. */
  topicIndex(topic: string): Buffer {
    if (!this.#index) this.#index = this.#create(undefined, 'index')
    return createHmac('sha256', this.#index.key).update(topic, 'utf8').digest()
  }

  #create(tenant: string | undefined, purpose: KeyPurpose): DataKey {
    const key: DataKey = {
      id: this.#nextId++,
      tenant,
      purpose,
      state: 'active',
      createdAt: this.#now(),
      key: randomBytes(AES_KEY_BYTES),
    }
    this.#byId.set(key.id, key)
    this.#new.push(key)
    return key
  }
}

/** Seal `plaintext` under `key`; `context` names the row it belongs to. */
export function sealRecord(key: DataKey, plaintext: Buffer, context: string): Buffer {
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt8(RECORD_VERSION, 0)
  header.writeUInt32BE(key.id, 1)
  return Buffer.concat([header, seal(secretOf(key), plaintext, aadOf(header, context))])
}

/** The key id a sealed record names. */
export function recordKeyId(record: Buffer): number {
  if (record.length < HEADER_BYTES + NONCE_BYTES + TAG_BYTES) {
    throw new StoreError('stored record is truncated')
  }
  return record.readUInt32BE(1)
}

/** Open a sealed record. Throws `StoreError` when its key is gone or it was altered. */
export function openRecord(ring: KeyRing, record: Buffer, context: string): Buffer {
  const keyId = recordKeyId(record)
  if (record[0] !== RECORD_VERSION) throw new StoreError('stored record has unknown version')
  const key = ring.get(keyId)
  if (!key) throw new StoreError(`data key ${keyId} is not available`)
  try {
    const header = record.subarray(0, HEADER_BYTES)
    return unseal(secretOf(key), record.subarray(HEADER_BYTES), aadOf(header, context))
  } catch (err) {
    throw new StoreError('stored record failed authentication', { cause: err })
  }
}

/** Constant-time equality, for comparing key fingerprints. */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** SHA-256, hex: used for non-secret checksums. */
export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/**
 * Imported once per data key: building a cipher from a `KeyObject` costs
 * half as much as from raw bytes. Dropped when the key is removed.
 */
const SECRET_KEYS = new WeakMap<DataKey, KeyObject>()

function secretOf(key: DataKey): KeyObject {
  let secret = SECRET_KEYS.get(key)
  if (!secret) {
    secret = createSecretKey(key.key)
    SECRET_KEYS.set(key, secret)
  }
  return secret
}

/**
 * Nonces are cut from a pool of random bytes refilled 4 KiB at a time:
 * one `randomBytes` call per record costs more than the encryption. Each
 * slice is used once; random 96-bit nonces stay far inside GCM's bound for
 * the number of records one key seals.
 */
const NONCE_POOL = Buffer.alloc(4096)
let noncePoolOffset = NONCE_POOL.length

function nextNonce(): Buffer {
  if (noncePoolOffset + NONCE_BYTES > NONCE_POOL.length) {
    randomFillSync(NONCE_POOL)
    noncePoolOffset = 0
  }
  const nonce = Buffer.from(NONCE_POOL.subarray(noncePoolOffset, noncePoolOffset + NONCE_BYTES))
  noncePoolOffset += NONCE_BYTES
  return nonce
}

function aadOf(header: Buffer, context: string): Buffer {
  return Buffer.concat([header, Buffer.from(context, 'utf8')])
}

function seal(key: CipherKey, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = nextNonce()
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(aad)
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([nonce, cipher.getAuthTag(), body])
}

function unseal(key: CipherKey, sealed: Buffer, aad: Buffer): Buffer {
  const nonce = sealed.subarray(0, NONCE_BYTES)
  const tag = sealed.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES)
  const decipher = createDecipheriv('aes-256-gcm', key, nonce)
  decipher.setAAD(aad)
  decipher.setAuthTag(tag)
  return Buffer.concat([
    decipher.update(sealed.subarray(NONCE_BYTES + TAG_BYTES)),
    decipher.final(),
  ])
}
