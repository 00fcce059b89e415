import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseConfig } from '../src/config/load.js'

const devPlain = `
environment: dev
listeners:
  - name: dev-plain
    type: tcp
    host: 127.0.0.1
    port: 1883
`

describe('config loader', () => {
  it('accepts a dev plaintext listener on loopback and fills defaults', () => {
    const { config } = parseConfig(devPlain)
    assert.equal(config.listeners[0]?.type, 'tcp')
    assert.equal(config.limits.receiveMaximum, 32)
    assert.equal(config.limits.connectTimeoutSeconds, 10)
  })

  it('names an unknown key and its line', () => {
    const text = `${devPlain}bogus: 1\n`
    assert.throws(() => parseConfig(text), /bogus.*line 8|line 8.*bogus/)
  })

  it('names a wrong type with its key path and line', () => {
    const text = devPlain.replace('port: 1883', "port: 'x'")
    assert.throws(
      () => parseConfig(text),
      (err: Error) => {
        assert.match(err.message, /listeners\.0\.port \(line 7\)/)
        return true
      },
    )
  })

  it('refuses a plaintext listener outside dev (C05)', () => {
    const text = devPlain.replace('environment: dev', 'environment: prod')
    assert.throws(() => parseConfig(text), { code: 'PHIMQ_LISTENER_INSECURE' })
  })

  it('refuses a plaintext listener on a non-loopback address (C05)', () => {
    const text = devPlain.replace('host: 127.0.0.1', 'host: 0.0.0.0')
    assert.throws(() => parseConfig(text), /loopback/)
  })
})

describe('published JSON Schema', () => {
  it('schema/phimq.schema.json matches the zod schema (run npm run schema)', async () => {
    const { readFileSync } = await import('node:fs')
    const { renderJsonSchema } = await import('../src/config/write-json-schema.js')
    const committed = readFileSync(new URL('../schema/phimq.schema.json', import.meta.url), 'utf8')
    assert.equal(committed, renderJsonSchema())
  })
})
