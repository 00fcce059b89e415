import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createServer, type Server } from 'node:tls'
import type { StampedAuditEvent } from '../../src/audit/events.js'
import { SyslogTlsExporter } from '../../src/audit/syslog-tls.js'
import { createLogger } from '../../src/monitor/logger.js'
import { collector } from '../monitor/helpers.js'
import { denied, tempDir } from './helpers.js'
import { makePki, type TestPki } from './tls-certs.js'

/** Split an RFC 5425 octet-counted stream into messages. */
function parseFrames(data: Buffer): string[] {
  const out: string[] = []
  let at = 0
  while (at < data.length) {
    const space = data.indexOf(0x20, at)
    const len = Number(data.subarray(at, space).toString('ascii'))
    assert.ok(Number.isInteger(len) && len > 0, 'bad frame length')
    out.push(data.subarray(space + 1, space + 1 + len).toString('utf8'))
    at = space + 1 + len
  }
  return out
}

function collectorServer(pki: TestPki): Promise<{
  server: Server
  port: number
  received: () => Buffer
  waitFor: (n: number) => Promise<string[]>
}> {
  const chunks: Buffer[] = []
  const server = createServer({ cert: pki.serverCert, key: pki.serverKey }, (socket) => {
    socket.on('data', (d: Buffer) => chunks.push(d))
  })
  const received = () => Buffer.concat(chunks)
  const waitFor = async (n: number) => {
    for (let i = 0; i < 200; i++) {
      const frames = received().length > 0 ? parseFrames(received()) : []
      if (frames.length >= n) return frames
      await new Promise((r) => setTimeout(r, 10))
    }
    throw new Error(`collector got fewer than ${n} frames`)
  }
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, port: (server.address() as AddressInfo).port, received, waitFor })
    })
  })
}

const stamped = (seq: number): StampedAuditEvent =>
  ({ ...denied(seq), time: '2026-06-01T12:00:00.000Z', seq, node: 'n1' }) as StampedAuditEvent

describe('syslog over TLS exporter (C28, RFC 5425)', () => {
  let trusted: TestPki
  let stranger: TestPki
  let cleanup: () => void

  before(() => {
    const t = tempDir('phimq-pki-')
    cleanup = t.cleanup
    trusted = makePki(t.dir, 'trusted')
    stranger = makePki(t.dir, 'stranger')
  })
  after(() => cleanup())

  it('delivers octet-counted RFC 5424 frames to a collector whose certificate verifies', async () => {
    const c = await collectorServer(trusted)
    const exporter = new SyslogTlsExporter({ host: '127.0.0.1', port: c.port, ca: trusted.ca })
    exporter.write(stamped(1))
    exporter.write(stamped(2))
    const frames = await c.waitFor(2)
    assert.match(
      frames[0] ?? '',
      /^<108>1 2026-06-01T12:00:00.000Z - phimq - publish.denied \[phimq@32473 id="n1-1"/,
    )
    assert.match(frames[1] ?? '', /id="n1-2"/)
    assert.equal(exporter.healthy(), true)
    await exporter.close()
    c.server.close()
  })

  it('refuses a collector whose certificate does not chain to the configured CA', async () => {
    const c = await collectorServer(stranger)
    const out = collector()
    const exporter = new SyslogTlsExporter({
      host: '127.0.0.1',
      port: c.port,
      ca: trusted.ca,
      logger: createLogger({ destination: out }),
      reconnectMs: 60_000,
    })
    exporter.write(stamped(1))
    for (let i = 0; i < 100 && out.lines.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10))
    }
    assert.equal(c.received().length, 0)
    assert.equal(exporter.healthy(), false)
    const line = JSON.parse(out.lines[0] ?? '{}') as { msg?: string; exporter?: string }
    assert.equal(line.msg, 'export failed')
    assert.equal(line.exporter, 'syslog')
    await exporter.close(50)
    c.server.close()
  })

  it('refuses a collector reached by a name its certificate does not carry', async () => {
    const c = await collectorServer(trusted)
    const out = collector()
    const exporter = new SyslogTlsExporter({
      host: '127.0.0.1',
      port: c.port,
      ca: trusted.ca,
      servername: 'siem.example.org',
      reconnectMs: 60_000,
      logger: createLogger({ destination: out }),
    })
    exporter.write(stamped(1))
    for (let i = 0; i < 100 && out.lines.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10))
    }
    assert.equal(c.received().length, 0)
    assert.match(out.lines[0] ?? '', /"code":"ERR_TLS_CERT_ALTNAME_INVALID"/)
    await exporter.close(50)
    c.server.close()
  })

  it('drops the oldest frames past its queue bound and counts them', async () => {
    const exporter = new SyslogTlsExporter({
      host: '127.0.0.1',
      port: 1,
      ca: trusted.ca,
      maxQueuedBytes: 1000,
      reconnectMs: 60_000,
    })
    for (let i = 0; i < 10; i++) exporter.write(stamped(i))
    assert.ok(exporter.dropped > 0)
    assert.equal(exporter.healthy(), false)
    await exporter.close(50)
  })
})
