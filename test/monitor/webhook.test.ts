import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Alert } from '../../src/monitor/alerts.js'
import { createLogger } from '../../src/monitor/logger.js'
import { AlertWebhook } from '../../src/monitor/webhook.js'
import { tempDir } from '../audit/helpers.js'
import { makePki, type TestPki } from '../audit/tls-certs.js'
import { collector } from './helpers.js'

const alert: Alert = {
  type: 'alert.raised',
  rule: 'acl-denials',
  severity: 'medium',
  subject: 'patient-078-05-1120',
  observed: 21,
  threshold: 20,
  windowSeconds: 60,
}

describe('alert webhook (C29)', () => {
  let pki: TestPki
  let cleanup: () => void
  let server: Server
  let url: string
  const bodies: string[] = []

  before(async () => {
    const t = tempDir('phimq-hook-')
    cleanup = t.cleanup
    pki = makePki(t.dir, 'hook')
    server = createServer({ cert: pki.serverCert, key: pki.serverKey }, (req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => {
        body += d.toString('utf8')
      })
      req.on('end', () => {
        bodies.push(body)
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`
  })
  after(() => {
    server.close()
    cleanup()
  })

  it('posts the rule and numbers, never the subject, to a verified HTTPS receiver', async () => {
    const hook = new AlertWebhook({ url, ca: pki.ca, node: 'n1', now: () => Date.UTC(2026, 5, 1) })
    hook.send(alert)
    await hook.close()
    const body = JSON.parse(bodies.at(-1) ?? '{}') as Record<string, unknown>
    assert.deepEqual(body, {
      rule: 'acl-denials',
      severity: 'medium',
      observed: 21,
      threshold: 20,
      windowSeconds: 60,
      node: 'n1',
      time: '2026-06-01T00:00:00.000Z',
    })
  })

  it('does not post to a receiver whose certificate does not verify, and logs it', async () => {
    const before = bodies.length
    const out = collector()
    const hook = new AlertWebhook({ url, logger: createLogger({ destination: out }) })
    hook.send(alert)
    await hook.close()
    assert.equal(bodies.length, before)
    assert.match(out.lines[0] ?? '', /"msg":"export failed"/)
  })

  it('refuses a plain http URL', () => {
    assert.throws(() => new AlertWebhook({ url: 'http://127.0.0.1/x' }), {
      code: 'PHIMQ_CONFIG_INVALID',
    })
  })
})
