/**
 * Control C18, "cert `env` attribute must match broker env": a client
 * certificate names its environment in a `urn:phimq:env:<env>` SAN URI;
 * a listener refuses a certificate naming another environment, and in
 * `prod` (requireEnv default on) one naming none. Real TLS on the mqtts
 * listener with certificates from our PKI.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { weakenedControls } from '../../src/config/prod-checks.js'
import { configSchema } from '../../src/config/schema.js'
import { ConfigError } from '../../src/errors.js'
import { readCertificateFields } from '../../src/identity/certificate-fields.js'
import { IdentityMapper } from '../../src/identity/mapping.js'
import type { TlsListenerOptions } from '../../src/transport/listener-options.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import {
  closed,
  makePki,
  type Pki,
  RecordingBroker,
  tlsClient,
  waitFor,
} from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

describe('certificate environment must match the broker environment (C18)', () => {
  const tmp = makeTempDir('phimq-env-')
  const cleanups: Array<() => Promise<void>> = []
  let pki: Pki
  let n = 0

  before(async () => {
    pki = await makePki(join(tmp.dir, 'pki'))
  })
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c()
  })
  after(() => tmp.remove())

  async function listen(environment: string | undefined, over: Partial<TlsListenerOptions> = {}) {
    const audit = new MemoryAuditSink()
    const listener = await createMqttsListener(
      { name: 'devices', host: '127.0.0.1', port: 0, ...pki.paths, crl: [pki.paths.crl], ...over },
      new RecordingBroker(),
      { audit, environment },
    )
    cleanups.push(() => listener.close())
    return { audit, listener }
  }

  /** Handshake with a fresh device certificate; the listener's verdict. */
  async function attempt(port: number, audit: MemoryAuditSink, env?: string) {
    const issued = await pki.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: `env-${n++}`,
      ...(env !== undefined ? { env } : {}),
    })
    const before = audit.ofType('tls.handshake').length
    const c = await tlsClient(port, {
      cert: issued.chainPem,
      key: issued.keyPem,
      ca: pki.ca.rootPem,
    })
    const e = await waitFor(() => audit.ofType('tls.handshake')[before])
    if (e.result === 'refused') await closed(c.socket)
    c.socket.destroy()
    return e
  }

  it('a prod listener refuses a dev certificate with ENV_MISMATCH', async () => {
    const { audit, listener } = await listen('prod')
    const e = await attempt(listener.port, audit, 'dev')
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'ENV_MISMATCH')
    assert.ok(e.fingerprint256, 'the refusal names the certificate')
  })

  it('a prod listener accepts a prod certificate', async () => {
    const { audit, listener } = await listen('prod')
    const e = await attempt(listener.port, audit, 'prod')
    assert.equal(e.result, 'accepted')
    assert.deepEqual(e.identity, { tenant: 'acme', role: 'device', id: `env-${n - 1}` })
  })

  it('a prod listener refuses a certificate without env (ENV_MISSING), unless requireEnv is off', async () => {
    const strict = await listen('prod')
    const e = await attempt(strict.listener.port, strict.audit)
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'ENV_MISSING')

    const lax = await listen('prod', { requireEnv: false })
    assert.equal((await attempt(lax.listener.port, lax.audit)).result, 'accepted')
    // Off only for a missing attribute: another environment is still refused.
    assert.equal((await attempt(lax.listener.port, lax.audit, 'dev')).reason, 'ENV_MISMATCH')
  })

  it('a dev listener accepts older certificates without env, and dev ones; refuses prod ones', async () => {
    const { audit, listener } = await listen('dev')
    assert.equal((await attempt(listener.port, audit)).result, 'accepted')
    assert.equal((await attempt(listener.port, audit, 'dev')).result, 'accepted')
    const e = await attempt(listener.port, audit, 'prod')
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'ENV_MISMATCH')
  })

  it('a dev listener with requireEnv refuses a certificate without env', async () => {
    const { audit, listener } = await listen('dev', { requireEnv: true })
    assert.equal((await attempt(listener.port, audit)).reason, 'ENV_MISSING')
  })

  it('requireEnv without a broker environment is a configuration error', async () => {
    await assert.rejects(listen(undefined, { requireEnv: true }), ConfigError)
  })

  it('the env SAN URI is not an identity URI: a two-part pattern stays unambiguous', async () => {
    const issued = await pki.ca.issueCertificate({
      kind: 'device',
      tenant: 'acme',
      id: 'env-map',
      env: 'prod',
    })
    const fields = readCertificateFields(new X509Certificate(issued.certPem).raw)
    assert.deepEqual(fields.envs, ['prod'])
    assert.deepEqual(fields.sanUris, ['urn:phimq:acme:device:env-map'])
    assert.equal(issued.record.env, 'prod')
    const mapper = new IdentityMapper([
      { from: 'san-uri', pattern: 'urn:phimq:{tenant}:{id}', role: 'device' },
    ])
    // Without the split, `urn:phimq:env:prod` would match as tenant env, id prod.
    assert.equal(mapper.map(fields).ok, false)
    assert.equal(mapper.map({ ...fields, sanUris: ['urn:phimq:acme:x1'] }).ok, true)
  })

  it('in prod, identity.requireEnv false is accepted but reported as weakening C18', () => {
    const config = configSchema.parse({
      environment: 'prod',
      listeners: [
        {
          type: 'mqtts',
          name: 'devices',
          tls: { cert: 'a', key: 'b', ca: 'c' },
          identity: { requireEnv: false },
        },
      ],
    })
    assert.deepEqual(weakenedControls(config), [
      { setting: 'listeners.devices.identity.requireEnv', value: 'false', control: 'C18' },
    ])
  })
})
