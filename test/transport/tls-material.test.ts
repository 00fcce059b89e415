import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { TlsMaterialError } from '../../src/errors.js'
import { CrlSet, normalizeSerial } from '../../src/transport/crl-set.js'
import { DenyList, normalizeFingerprint } from '../../src/transport/deny-list.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { makePki, RecordingBroker } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

describe('TLS material, CRL files and the deny list', () => {
  const tmp = makeTempDir('phimq-material-')
  after(() => tmp.remove())

  it('a listener whose certificate file is missing fails to start with TlsMaterialError (C05)', async () => {
    const pki = await makePki(join(tmp.dir, 'pki'))
    await assert.rejects(
      createMqttsListener(
        {
          name: 'd',
          host: '127.0.0.1',
          port: 0,
          ...pki.paths,
          crl: [],
          cert: join(tmp.dir, 'nope.crt'),
        },
        new RecordingBroker(),
        { audit: new MemoryAuditSink() },
      ),
      (err: unknown) =>
        err instanceof TlsMaterialError && /cert file .*nope\.crt/.test(err.message),
    )
  })

  it('a CRL file without a CRL, or with a damaged one, is refused', () => {
    assert.throws(() => CrlSet.parse([{ path: 'a.pem', text: 'hello' }]), TlsMaterialError)
    const broken = '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'
    assert.throws(() => CrlSet.parse([{ path: 'b.pem', text: broken }]), TlsMaterialError)
  })

  it('serial numbers compare without case, colons or leading zeros', () => {
    assert.equal(normalizeSerial('00:0A:bc'), 'abc')
    assert.equal(normalizeSerial('0'), '0')
  })

  it('fingerprints are normalised and anything not SHA-256 is refused', () => {
    const hex = 'ab'.repeat(32)
    assert.equal(normalizeFingerprint(hex), Array(32).fill('AB').join(':'))
    assert.equal(normalizeFingerprint('ab:cd'), undefined)
    const list = new DenyList()
    assert.throws(() => list.add('not-a-fingerprint'), TlsMaterialError)
    list.add(hex)
    assert.equal(list.has(Array(32).fill('ab').join(':')), true)
    assert.equal(list.size, 1)
    assert.equal(list.remove(hex), true)
    assert.equal(list.has(hex), false)
  })

  it('a deny-list file with a bad line is refused, naming the line', () => {
    const file = join(tmp.dir, 'deny.txt')
    writeFileSync(file, `# ok\n${'cd'.repeat(32)}\nnot a fingerprint\n`)
    assert.throws(() => new DenyList().loadFile(file), /line 3/)
  })

  it('tells listeners only about newly denied fingerprints', () => {
    const list = new DenyList()
    const seen: string[][] = []
    const stop = list.onAdded((added) => seen.push([...added]))
    list.add('ef'.repeat(32))
    list.add('ef'.repeat(32))
    stop()
    list.add('01'.repeat(32))
    assert.equal(seen.length, 1)
  })
})
