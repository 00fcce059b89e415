import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { StampedAuditEvent } from '../../src/audit/events.js'
import { loadConfigFile } from '../../src/config/load.js'
import { BrokerCertificates } from '../../src/monitor/certificates.js'
import { startServer } from '../../src/server.js'
import { makePki } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

const DAY_MS = 86_400_000
const notAfterOf = (pem: string): number => Date.parse(new X509Certificate(pem).validTo)

describe('certificates the broker depends on (C29 cert expiry)', () => {
  const tmp = makeTempDir('phimq-broker-certs-')
  after(() => tmp.remove())

  it('reads the server certificate and every CA certificate, and follows a renewal on disk', async () => {
    const pki = await makePki(join(tmp.dir, 'a'))
    writeFileSync(pki.paths.ca, `${pki.ca.rootPem}\n${pki.ca.intermediatePem}\n`)
    const certs = new BrokerCertificates([
      { listener: 'devices', cert: pki.paths.cert, ca: pki.paths.ca },
      { listener: 'gone', cert: join(tmp.dir, 'missing.crt'), ca: join(tmp.dir, 'missing.pem') },
    ])
    const first = certs.current()
    assert.deepEqual(
      first.map((c) => `${c.listener}.${c.cert}`),
      ['devices.server', 'devices.ca.0', 'devices.ca.1'],
    )
    assert.equal(first[0]?.notAfter, notAfterOf(readFileSync(pki.paths.cert, 'utf8')))

    // Renewal: a shorter-lived server certificate replaces the file.
    const renewed = await pki.ca.issueCertificate({
      kind: 'server',
      tenant: 'acme',
      id: 'broker-1',
      days: 10,
    })
    writeFileSync(pki.paths.cert, `${renewed.chainPem}\n`)
    assert.equal(certs.current()[0]?.notAfter, notAfterOf(renewed.certPem))
    assert.deepEqual(
      certs.watched().map((c) => c.name),
      ['devices.server', 'devices.ca.0', 'devices.ca.1'],
    )
  })

  it('a running server raises cert-expiry for a listener certificate within 30 days', async () => {
    const dir = join(tmp.dir, 'srv')
    const pki = await makePki(dir)
    const soon = await pki.ca.issueCertificate({
      kind: 'server',
      tenant: 'acme',
      id: 'broker-1',
      notBefore: new Date(Date.now() - 85 * DAY_MS),
      days: 90,
    })
    writeFileSync(pki.paths.cert, soon.chainPem)
    writeFileSync(pki.paths.key, soon.keyPem, { mode: 0o600 })
    const file = join(dir, 'phimq.yaml')
    writeFileSync(
      file,
      `environment: prod
dataDir: data
listeners:
  - name: devices
    type: mqtts
    port: 0
    tls: { cert: server.crt, key: server.key, ca: ca.pem }
policy: { rules: [] }
audit: { sink: jsonl, path: audit.jsonl }
metrics: { enabled: false }
`,
    )
    const server = await startServer(loadConfigFile(file))
    await server.close()
    const events = readFileSync(join(dir, 'data', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as StampedAuditEvent)
    const alerts = events.filter((e) => e.type === 'alert.raised' && e.rule === 'cert-expiry')
    assert.equal(alerts.length, 1)
    const alert = alerts[0] as Extract<StampedAuditEvent, { type: 'alert.raised' }>
    assert.equal(alert.subject, 'devices.server')
    assert.equal(alert.severity, 'high')
    assert.ok(alert.observed <= 5)
  })
})
