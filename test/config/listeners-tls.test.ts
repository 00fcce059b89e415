import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseConfig } from '../../src/config/load.js'
import { ConfigError } from '../../src/errors.js'
import { tlsListenerOptionsFromConfig } from '../../src/transport/listener-options.js'

const MQTTS = `
environment: prod
listeners:
  - type: mqtts
    name: devices
    host: 0.0.0.0
    tls: { cert: tls/server.crt, key: tls/server.key, ca: tls/devices-ca.pem, crl: [tls/crl.pem] }
  - type: wss
    name: web
    clientIdBinding: prefix
    tls: { cert: /etc/phimq/server.crt, key: /etc/phimq/server.key, ca: /etc/phimq/apps-ca.pem }
    allowedOrigins: [https://app.example.org]
    identity:
      rules:
        - { from: san-dns, pattern: '{id}.{tenant}.example.org', role: app }
`

describe('config: mqtts and wss listeners (C05, C09)', () => {
  it('parses both types with secure defaults', () => {
    const { config } = parseConfig(MQTTS, '/etc/phimq/phimq.yaml', '/etc/phimq')
    const [mqtts, wss] = config.listeners
    assert.equal(mqtts?.type, 'mqtts')
    assert.equal(wss?.type, 'wss')
    if (mqtts?.type !== 'mqtts' || wss?.type !== 'wss') return
    assert.equal(mqtts.port, 8883)
    assert.equal(mqtts.tls.minVersion, 'TLSv1.2')
    assert.equal(mqtts.tls.profile, 'default')
    assert.equal(mqtts.clientIdBinding, 'equal')
    assert.equal(mqtts.revocation.crlStale, 'refuse')
    assert.equal(mqtts.revocation.crlRefreshSeconds, 3600)
    assert.equal(mqtts.certLifetime.deviceMaxDays, 90)
    assert.equal(wss.port, 8884)
    assert.equal(wss.path, '/mqtt')
    assert.equal(wss.clientIdBinding, 'prefix')
  })

  it('resolves relative TLS paths against the config folder', () => {
    const { config } = parseConfig(MQTTS, '/etc/phimq/phimq.yaml', '/etc/phimq')
    const [mqtts, wss] = config.listeners
    assert.ok(mqtts?.type === 'mqtts' && wss?.type === 'wss')
    const o = tlsListenerOptionsFromConfig(mqtts, '/etc/phimq')
    assert.equal(o.cert, '/etc/phimq/tls/server.crt')
    assert.deepEqual(o.crl, ['/etc/phimq/tls/crl.pem'])
    assert.equal(o.identityRules, undefined)
    const w = tlsListenerOptionsFromConfig(wss, '/srv')
    assert.equal(w.ca, '/etc/phimq/apps-ca.pem')
    assert.equal(w.path, '/mqtt')
    assert.deepEqual(w.identityRules, [
      { from: 'san-dns', pattern: '{id}.{tenant}.example.org', role: 'app' },
    ])
  })

  it('refuses a TLS listener without a client CA bundle, and TLS 1.1 as a floor', () => {
    assert.throws(
      () =>
        parseConfig(`
environment: prod
listeners:
  - { type: mqtts, name: d, tls: { cert: a, key: b } }
`),
      (err: unknown) => err instanceof ConfigError && /tls\.ca/.test(err.message),
    )
    assert.throws(
      () =>
        parseConfig(`
environment: prod
listeners:
  - { type: mqtts, name: d, tls: { cert: a, key: b, ca: c, minVersion: TLSv1.1 } }
`),
      ConfigError,
    )
  })
})
