/**
 * Interop (slow, kept out of `npm test`; run `npm run test:interop`): the
 * `testssl` scanner (Debian `testssl.sh`) against a live mqtts listener.
 * Fails unless it finds only TLS 1.2/1.3, only Appendix C ciphers, and no
 * client-initiated renegotiation (C06, C07, C08).
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { ALLOWED_CIPHERS_DEFAULT } from '../../src/transport/tls-options.js'
import { makePki, RecordingBroker } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

const HAVE_TESTSSL = spawnSync('testssl', ['--version']).error === undefined

interface Finding {
  id: string
  severity: string
  finding: string
}

describe('testssl against an mqtts listener', {
  skip: HAVE_TESTSSL ? false : 'testssl not installed (apt testssl.sh)',
}, () => {
  const tmp = makeTempDir('phimq-testssl-')
  let listener: Awaited<ReturnType<typeof createMqttsListener>>
  let findings: Finding[] = []

  before(async () => {
    const pki = await makePki(join(tmp.dir, 'pki'))
    listener = await createMqttsListener(
      {
        name: 'scan',
        host: '127.0.0.1',
        port: 0,
        ...pki.paths,
        crl: [pki.paths.crl],
        // A scanner opens hundreds of connections.
        connectionsPerAddress: 100_000,
      },
      new RecordingBroker(),
      { audit: new MemoryAuditSink() },
    )
    const json = join(tmp.dir, 'testssl.json')
    const status = await new Promise<number | null>((resolve) => {
      const child = spawn('testssl', [
        '--quiet',
        '--color',
        '0',
        '--warnings',
        'batch',
        '-p',
        '-e',
        '-R',
        '--jsonfile',
        json,
        `127.0.0.1:${listener.port}`,
      ])
      child.stdout.resume()
      child.stderr.resume()
      child.on('close', resolve)
    })
    assert.ok(status !== null, 'testssl ran')
    findings = JSON.parse(readFileSync(json, 'utf8')) as Finding[]
  })
  after(async () => {
    await listener.close()
    tmp.remove()
  })

  const find = (id: string) => findings.find((f) => f.id === id)?.finding ?? ''

  it('offers TLS 1.2 and 1.3 only (C06)', () => {
    for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) assert.match(find(id), /not offered/, id)
    assert.match(find('TLS1_2'), /^offered/)
    assert.match(find('TLS1_3'), /^offered/)
  })

  it('offers only Appendix C ciphers (C07)', () => {
    const ciphers = findings
      .filter((f) => f.id.startsWith('cipher_x'))
      .map((f) => f.finding.trim().split(/\s+/).at(-1) ?? '')
    assert.ok(ciphers.length > 0, 'testssl listed ciphers')
    for (const name of ciphers) assert.ok(ALLOWED_CIPHERS_DEFAULT.has(name), name)
  })

  it('allows no client-initiated renegotiation (C08)', () => {
    // With mutual TLS testssl cannot try it ("client x509-based authentication
    // prevents this"); the node:tls test in mqtts-listener.test.ts does.
    assert.doesNotMatch(find('secure_client_renego'), /VULNERABLE/)
  })
})
