/**
 * `environment: prod` refuses a wss listener without `allowedOrigins` and a
 * master key file readable by others, and records every weakened control
 * (client id binding, stale CRLs, OCSP) at start (red-team finding 9).
 */
import assert from 'node:assert/strict'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import type { Logger } from '../../src/broker/logger.js'
import { parseConfig } from '../../src/config/load.js'
import { reportWeakenedControls, weakenedControls } from '../../src/config/prod-checks.js'
import { InsecureListenerError, MasterKeyError } from '../../src/errors.js'
import { type RunningServer, startServer } from '../../src/server.js'
import { makePki } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'
import { TEST_ENV } from '../policy/helpers.js'

const TLS = '{ cert: s.crt, key: s.key, ca: ca.pem }'

function config(env: string, listeners: string, store = ''): string {
  return `environment: ${env}\nlisteners:\n${listeners}${store}`
}

const mqtts = (extra = '') => `  - { type: mqtts, name: devices, tls: ${TLS}${extra} }\n`
const wss = (extra = '') => `  - { type: wss, name: web, tls: ${TLS}${extra} }\n`

/** A logger that keeps warnings. */
function recordingLogger(): Logger & { warnings: Array<{ fields: object; message: string }> } {
  const warnings: Array<{ fields: object; message: string }> = []
  const log = {
    warnings,
    debug: () => {},
    info: () => {},
    warn: (fields: object, message: string) => {
      warnings.push({ fields, message })
    },
    error: () => {},
    child: () => log,
  }
  return log
}

describe('prod refusals at start-up', () => {
  const tmp = makeTempDir('phimq-prod-checks-')
  after(() => tmp.remove())

  it('refuses a wss listener without allowedOrigins in prod, naming the key', () => {
    assert.throws(
      () => parseConfig(config('prod', wss())),
      (err: unknown) =>
        err instanceof InsecureListenerError &&
        err.code === 'PHIMQ_LISTENER_INSECURE' &&
        /listener web: wss in environment prod needs allowedOrigins/.test(err.message),
    )
  })

  it('accepts a prod wss listener with allowedOrigins, even an empty list (no browsers)', () => {
    parseConfig(config('prod', wss(', allowedOrigins: [https://app.example.org]')))
    parseConfig(config('prod', wss(', allowedOrigins: []')))
  })

  it('accepts a wss listener without allowedOrigins outside prod', () => {
    parseConfig(config('test', wss()))
  })

  function sqlite(keyFile: string): string {
    return `store: { type: sqlite, path: store.db, masterKeyFile: ${keyFile} }\n`
  }

  it('refuses a group- or world-readable master key file in prod, saying chmod 600', () => {
    const key = join(tmp.dir, 'open.key')
    writeFileSync(key, 'synthetic key material\n')
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(key, mode)
      assert.throws(
        () => parseConfig(config('prod', mqtts(), sqlite('open.key')), 'inline', tmp.dir),
        (err: unknown) =>
          err instanceof MasterKeyError &&
          err.code === 'PHIMQ_MASTER_KEY_INVALID' &&
          err.message.includes(`(mode ${mode.toString(8)}); chmod 600 it`) &&
          !err.message.includes('synthetic key material'),
        `mode ${mode.toString(8)}`,
      )
    }
  })

  it('accepts a 0600 master key file in prod, and any mode outside prod', () => {
    const key = join(tmp.dir, 'closed.key')
    writeFileSync(key, 'synthetic\n', { mode: 0o600 })
    chmodSync(key, 0o600)
    parseConfig(config('prod', mqtts(), sqlite(key)), 'inline', tmp.dir)
    chmodSync(key, 0o644)
    parseConfig(config('dev', mqtts(), sqlite(key)), 'inline', tmp.dir)
  })
})

describe('weakened controls in prod', () => {
  const lax = ', clientIdBinding: free, revocation: { crlStale: allow }, ocsp: { mode: "off" }'

  it('names each weakened setting with its control', () => {
    const { config: c } = parseConfig(
      config(
        'prod',
        mqtts(lax) + wss(', clientIdBinding: prefix, ocsp: { failure: allow }, allowedOrigins: []'),
      ),
    )
    assert.deepEqual(weakenedControls(c), [
      { setting: 'listeners.devices.clientIdBinding', value: 'free', control: 'C10' },
      { setting: 'listeners.devices.revocation.crlStale', value: 'allow', control: 'C11' },
      { setting: 'listeners.devices.ocsp.mode', value: 'off', control: 'C11' },
      { setting: 'listeners.web.clientIdBinding', value: 'prefix', control: 'C10' },
      { setting: 'listeners.web.ocsp.failure', value: 'allow', control: 'C11' },
    ])
  })

  it('finds none with the defaults, nor outside prod', () => {
    assert.deepEqual(weakenedControls(parseConfig(config('prod', mqtts())).config), [])
    assert.deepEqual(weakenedControls(parseConfig(config('test', mqtts(lax))).config), [])
  })

  it('logs one warning and records one config.weakened event per setting', () => {
    const { config: c } = parseConfig(config('prod', mqtts(lax)))
    const log = recordingLogger()
    const audit = new MemoryAuditSink('test')
    reportWeakenedControls(c, log, audit)
    assert.equal(log.warnings.length, 3)
    assert.ok(log.warnings.every((w) => w.message === 'config weakened'))
    const events = audit.ofType('config.weakened')
    assert.deepEqual(
      events.map((e) => [e.environment, e.setting, e.value, e.control]),
      [
        ['prod', 'listeners.devices.clientIdBinding', 'free', 'C10'],
        ['prod', 'listeners.devices.revocation.crlStale', 'allow', 'C11'],
        ['prod', 'listeners.devices.ocsp.mode', 'off', 'C11'],
      ],
    )
  })
})

describe('startServer in prod with a weakened control', () => {
  const tmp = makeTempDir('phimq-prod-start-')
  let server: RunningServer | undefined
  after(async () => {
    await server?.close()
    tmp.remove()
  })

  it('starts, and the audit trail says which control was weakened', async () => {
    const pki = await makePki(tmp.dir)
    const policy = readFileSync(new URL('../fixtures/rpm-policy.yaml', import.meta.url), 'utf8')
      .split('\n')
      .map((line) => `  ${line}`)
      .join('\n')
    const text = `environment: prod
dataDir: data
listeners:
  - type: mqtts
    name: devices
    port: 0
    clientIdBinding: free
    tls: { cert: server.crt, key: server.key, ca: ca.pem, crl: [ca/crl.pem] }
metrics:
  enabled: false
policy:
${policy}
`
    const file = join(tmp.dir, 'phimq.yaml')
    writeFileSync(file, text)
    Object.assign(process.env, TEST_ENV)
    const audit = new MemoryAuditSink('test')
    server = await startServer(parseConfig(text, file, pki.dir), { audit })
    const [event] = audit.ofType('config.weakened')
    assert.equal(event?.setting, 'listeners.devices.clientIdBinding')
    assert.equal(event?.value, 'free')
  })
})
