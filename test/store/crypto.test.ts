/**
 * Record sealing and key wrapping for encryption at rest (issue #5):
 * AES-256-GCM with a nonce per record, the key id in every record, and
 * data keys bound to their id and tenant under the master key.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  KeyRing,
  LocalMasterKey,
  masterKeyFromEnv,
  masterKeyFromFile,
  openRecord,
  parseMasterKey,
  recordKeyId,
  sealRecord,
  wrapContext,
} from '../../src/store/crypto.js'

const PLAIN = Buffer.from('synthetic observation: heart rate 72')

describe('record sealing', () => {
  it('round-trips a record and names its key id in the record', () => {
    const ring = new KeyRing(() => 0)
    const key = ring.activeFor('clinic-a')
    const sealed = sealRecord(key, PLAIN, 'q:1:dev')
    assert.equal(recordKeyId(sealed), key.id)
    assert.deepEqual(openRecord(ring, sealed, 'q:1:dev'), PLAIN)
  })

  it('uses a fresh nonce per record: the same plaintext never seals alike', () => {
    const ring = new KeyRing(() => 0)
    const key = ring.activeFor(undefined)
    const a = sealRecord(key, PLAIN, 'ctx')
    const b = sealRecord(key, PLAIN, 'ctx')
    assert.notDeepEqual(a.subarray(5, 17), b.subarray(5, 17))
    assert.notDeepEqual(a, b)
    assert.equal(a.includes(PLAIN), false)
  })

  it('never repeats a nonce across many records, past refills of the nonce pool', () => {
    const ring = new KeyRing(() => 0)
    const key = ring.activeFor(undefined)
    const nonces = new Set<string>()
    for (let i = 0; i < 2000; i++) {
      nonces.add(sealRecord(key, PLAIN, 'ctx').subarray(5, 17).toString('hex'))
    }
    assert.equal(nonces.size, 2000)
  })

  it('refuses a record that was altered, moved to another row, or relabelled', () => {
    const ring = new KeyRing(() => 0)
    const key = ring.activeFor('t')
    const other = ring.activeFor('u')
    const sealed = sealRecord(key, PLAIN, 'q:1:dev')

    const flipped = Buffer.from(sealed)
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1
    assert.throws(() => openRecord(ring, flipped, 'q:1:dev'), { code: 'PHIMQ_STORE_FAILED' })
    assert.throws(() => openRecord(ring, sealed, 'q:2:dev'), { code: 'PHIMQ_STORE_FAILED' })

    const relabelled = Buffer.from(sealed)
    relabelled.writeUInt32BE(other.id, 1)
    assert.throws(() => openRecord(ring, relabelled, 'q:1:dev'), { code: 'PHIMQ_STORE_FAILED' })
  })

  it('cannot open a record once its key is removed (crypto-erase)', () => {
    const ring = new KeyRing(() => 0)
    const key = ring.activeFor('clinic-b')
    const sealed = sealRecord(key, PLAIN, 'w:dev')
    ring.remove([key.id])
    assert.throws(() => openRecord(ring, sealed, 'w:dev'), /not available/)
    assert.ok(
      key.key.every((b) => b === 0),
      'key bytes are overwritten',
    )
  })
})

describe('key ring', () => {
  it('gives each tenant, and clients without one, their own data key', () => {
    const ring = new KeyRing(() => 0)
    const a = ring.activeFor('clinic-a')
    const b = ring.activeFor('clinic-b')
    const none = ring.activeFor(undefined)
    assert.equal(new Set([a.id, b.id, none.id]).size, 3)
    assert.equal(ring.activeFor('clinic-a'), a)
    assert.equal(ring.takeNew().length, 3)
    assert.equal(ring.takeNew().length, 0)
  })

  it('rotation retires the old key and seals new records with a new one', () => {
    const ring = new KeyRing(() => 0)
    const old = ring.activeFor('clinic-a')
    const fresh = ring.rotate('clinic-a')
    assert.notEqual(fresh.id, old.id)
    assert.equal(old.state, 'retired')
    assert.equal(ring.activeFor('clinic-a'), fresh)
    // The old key still opens old records.
    const sealed = sealRecord(old, PLAIN, 'c')
    assert.deepEqual(openRecord(ring, sealed, 'c'), PLAIN)
  })

  it('hashes topics with a secret key: not a plain SHA-256, stable per ring', () => {
    const ring = new KeyRing(() => 0)
    const other = new KeyRing(() => 0)
    const topic = 'ward/7/status'
    assert.deepEqual(ring.topicIndex(topic), ring.topicIndex(topic))
    assert.notDeepEqual(ring.topicIndex(topic), other.topicIndex(topic))
    assert.equal(ring.topicIndex(topic).length, 32)
  })
})

describe('master key', () => {
  it('reads 64 hex digits or base64 of 32 bytes, and refuses anything else', () => {
    const raw = randomBytes(32)
    assert.deepEqual(parseMasterKey(Buffer.from(raw.toString('hex'))), raw)
    assert.deepEqual(parseMasterKey(`${raw.toString('hex')}\n`), raw)
    assert.deepEqual(parseMasterKey(raw.toString('base64')), raw)
    const passphrase = 'correct horse battery staple 123'
    for (const bad of ['', 'short', randomBytes(16).toString('hex'), raw, passphrase]) {
      assert.throws(() => parseMasterKey(bad), { code: 'PHIMQ_MASTER_KEY_INVALID' })
    }
  })

  it('comes from a file or an environment variable, with named errors when missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phimq-mk-'))
    try {
      const raw = randomBytes(32)
      const file = join(dir, 'master.key')
      await writeFile(file, raw.toString('base64'), { mode: 0o600 })
      assert.equal(masterKeyFromFile(file).id, new LocalMasterKey(raw).id)
      assert.throws(() => masterKeyFromFile(join(dir, 'absent')), {
        code: 'PHIMQ_MASTER_KEY_INVALID',
      })
      const env = { PHIMQ_TEST_KEY: raw.toString('hex') }
      assert.equal(masterKeyFromEnv('PHIMQ_TEST_KEY', env).id, new LocalMasterKey(raw).id)
      assert.throws(() => masterKeyFromEnv('PHIMQ_UNSET', {}), /PHIMQ_UNSET/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('unwraps only what it wrapped, for the same key id and tenant', async () => {
    const master = new LocalMasterKey(randomBytes(32))
    const stranger = new LocalMasterKey(randomBytes(32))
    const dataKey = randomBytes(32)
    const context = wrapContext({ id: 4, tenant: 'clinic-a', purpose: 'data' })
    const wrapped = await master.wrap(dataKey, context)

    assert.equal(wrapped.includes(dataKey), false)
    assert.deepEqual(await master.unwrap(wrapped, context), dataKey)
    await assert.rejects(stranger.unwrap(wrapped, context), { code: 'PHIMQ_MASTER_KEY_INVALID' })
    const movedTenant = wrapContext({ id: 4, tenant: 'clinic-b', purpose: 'data' })
    await assert.rejects(master.unwrap(wrapped, movedTenant), { code: 'PHIMQ_MASTER_KEY_INVALID' })
    const defaultTenant = wrapContext({ id: 4, tenant: undefined, purpose: 'data' })
    await assert.rejects(master.unwrap(wrapped, defaultTenant))
  })

  it('has a fingerprint id that reveals nothing of the key', () => {
    const raw = randomBytes(32)
    const master = new LocalMasterKey(raw)
    assert.match(master.id, /^local:[0-9a-f]{16}$/)
    assert.equal(master.id.includes(raw.toString('hex').slice(0, 16)), false)
  })
})
