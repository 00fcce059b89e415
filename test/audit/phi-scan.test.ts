/**
 * C26 proof: a scripted session whose payloads (and, for the trail, client
 * ids) carry synthetic identifiers; then every byte the audit pipeline and
 * the logger wrote is scanned. Logs: zero hits. Trail and exports: hits
 * only inside identity fields (the accountability record keeps who).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createServer } from 'node:tls'
import { messageDeliveredEvent, publishAllowedEvent } from '../../src/audit/build.js'
import { createAuditPipeline } from '../../src/audit/pipeline.js'
import { ManualClock } from '../../src/broker/clock.js'
import type { ClientInfo, Message } from '../../src/broker/types.js'
import { parseConfig } from '../../src/config/load.js'
import { createLogger } from '../../src/monitor/logger.js'
import { collector } from '../monitor/helpers.js'
import { filesUnder, PHI_SAMPLES, phiHits, tempDir } from './helpers.js'
import { makePki, type TestPki } from './tls-certs.js'

/** A record with its identity fields removed: what must be clean. */
function withoutIdentity(record: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(record)
  for (const key of ['clientId', 'identityId', 'subject', 'suser', 'duser']) delete copy[key]
  const actor = copy.actor as Record<string, unknown> | undefined
  if (actor) {
    delete actor.clientId
    const identity = actor.identity as Record<string, unknown> | undefined
    if (identity) delete identity.id
  }
  return copy
}

describe('no PHI in logs, audit trail or exports (C26)', () => {
  let pki: TestPki
  let dir: string
  let cleanup: () => void

  before(() => {
    ;({ dir, cleanup } = tempDir('phimq-phi-'))
    pki = makePki(dir, 'siem')
  })
  after(() => cleanup())

  it('a scripted session with identifiers in payloads and client ids leaves none outside identity fields', async () => {
    // A syslog collector whose bytes are scanned too.
    const received: Buffer[] = []
    const collectorServer = createServer({ cert: pki.serverCert, key: pki.serverKey }, (s) => {
      s.on('data', (d: Buffer) => received.push(d))
    })
    await new Promise<void>((r) => collectorServer.listen(0, '127.0.0.1', r))
    const port = (collectorServer.address() as AddressInfo).port

    const yaml = `
environment: dev
dataDir: data
listeners:
  - { name: dev-plain, type: tcp, host: 127.0.0.1, port: 1883 }
audit:
  traffic: per-message
  exporters:
    - { type: file, path: export.jsonl }
    - { type: file, path: export.cef, format: cef }
    - { type: syslog-tls, host: 127.0.0.1, port: ${port}, caFile: ../siem-ca.pem, message: cef }
`
    const loaded = parseConfig(yaml, '<inline>', dir)
    const logs = collector()
    const logger = createLogger({ destination: logs, level: 'debug' })
    const clock = new ManualClock()
    const pipeline = createAuditPipeline({
      config: loaded.config,
      dataDir: loaded.dataDir,
      clock,
      logger,
    })

    // 1. A client whose id carries an e-mail (allowed in the trail only).
    const client: ClientInfo = {
      clientId: `pt-${PHI_SAMPLES.email}`,
      identity: { id: `pt-${PHI_SAMPLES.email}`, tenant: 'clinic-a' },
      username: PHI_SAMPLES.email,
      listener: 'dev-plain',
      remoteAddress: '127.0.0.1',
      protocolVersion: 5,
    }
    const payload = Buffer.from(
      JSON.stringify({
        ssn: PHI_SAMPLES.ssn,
        phone: PHI_SAMPLES.phone,
        dob: PHI_SAMPLES.dob,
        email: PHI_SAMPLES.email,
      }),
    )
    const message: Message = { topic: 'clinic-a/vitals/bed-4', payload, qos: 2, retain: true }

    // 2. What the core does for such a session, event by event.
    pipeline.sink.emit({
      type: 'client.connected',
      actor: {
        clientId: client.clientId,
        identity: client.identity,
        listener: 'dev-plain',
        remoteAddress: '127.0.0.1',
      },
      protocolVersion: 5,
      cleanStart: true,
      sessionPresent: false,
      sessionExpirySeconds: 0,
    })
    for (let i = 0; i < 30; i++) {
      pipeline.sink.emit(publishAllowedEvent(client, message))
      pipeline.sink.emit(messageDeliveredEvent(client, message))
      pipeline.sink.emit({
        type: 'publish.denied',
        actor: {
          clientId: client.clientId,
          identity: client.identity,
          listener: 'dev-plain',
          remoteAddress: '127.0.0.1',
        },
        topic: 'clinic-b/vitals/bed-1',
        qos: 1,
        retain: false,
        reasonCode: 0x87,
        rule: 'tenant.cross',
      })
      clock.advance(100)
    }
    pipeline.sink.emit({ type: 'retained.set', topic: message.topic, bytes: payload.length })
    pipeline.sink.emit({
      type: 'message.dropped',
      clientId: client.clientId,
      topic: message.topic,
      reason: 'queue-full',
    })

    // 3. What the core logs, with the fields a careless caller might pass.
    logger.info(
      {
        clientId: client.clientId,
        username: client.username,
        topic: `patients/${PHI_SAMPLES.ssn}`,
      },
      'client connected',
    )
    logger.debug(
      { payload, password: PHI_SAMPLES.ssn, packet: { payload, username: PHI_SAMPLES.email } },
      'publish denied',
    )

    clock.advance(60_000)
    await pipeline.close()
    await new Promise((r) => setTimeout(r, 100))
    collectorServer.close()

    // 4. Scan. Logs: nothing at all.
    assert.ok(logs.lines.length >= 3, 'the logger wrote too little for the scan to mean anything')
    for (const line of logs.lines) assert.deepEqual(phiHits(line), [], line)

    // Trail segments and JSON exports: only identity fields may hit.
    const written = filesUnder(loaded.dataDir).filter((p) => /\.(jsonl|cef)$/.test(p))
    assert.ok(written.some((p) => p.includes('audit-0000')))
    assert.ok(written.some((p) => p.endsWith('export.cef')))
    let identityHits = 0
    for (const path of written) {
      for (const line of readFileSync(path, 'utf8').split('\n').filter(Boolean)) {
        if (path.endsWith('.cef')) {
          const cs6 = line
            .slice(line.indexOf(' cs6=') + 5)
            .replace(/\\=/g, '=')
            .replace(/\\\\/g, '\\')
          const head = line.slice(0, line.indexOf(' cs6=')).replace(/ (suser|duser)=\S+/g, '')
          assert.deepEqual(phiHits(head), [], head)
          assert.deepEqual(phiHits(JSON.stringify(withoutIdentity(JSON.parse(cs6)))), [], cs6)
        } else {
          const record = JSON.parse(line) as Record<string, unknown>
          if (phiHits(line).length > 0) identityHits++
          assert.deepEqual(phiHits(JSON.stringify(withoutIdentity(record))), [], line)
        }
      }
    }
    assert.ok(identityHits > 0, 'the client ids should be in the accountability record')

    // Syslog bytes: the same rule, message by message.
    const syslog = Buffer.concat(received).toString('utf8')
    assert.ok(syslog.includes('publish.denied'), 'the collector received nothing')
    for (const [name, sample] of Object.entries(PHI_SAMPLES)) {
      if (name === 'email') continue
      assert.equal(syslog.includes(sample), false, `${name} reached the collector`)
    }
    // Payload-only samples appear nowhere at all.
    for (const path of written) {
      const text = readFileSync(path, 'utf8')
      for (const s of [PHI_SAMPLES.ssn, PHI_SAMPLES.phone, PHI_SAMPLES.dob])
        assert.equal(text.includes(s), false)
    }
  })
})
