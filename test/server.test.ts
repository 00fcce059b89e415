import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import mqtt from 'mqtt'
import { MemoryAuditSink } from '../src/audit/sink.js'
import { loadConfigFile } from '../src/config/load.js'
import { type RunningServer, startServer } from '../src/server.js'
import { TEST_ENV } from './policy/helpers.js'

const policy = readFileSync(new URL('./fixtures/rpm-policy.yaml', import.meta.url), 'utf8')
  .split('\n')
  .map((line) => `  ${line}`)
  .join('\n')

function configText(policyBlock: string): string {
  return `environment: dev
dataDir: data
listeners:
  - name: dev-plain
    type: tcp
    host: 127.0.0.1
    port: 0
metrics:
  enabled: false
policy:
${policyBlock}
`
}

describe('startServer', () => {
  let dir: string
  let file: string
  let server: RunningServer
  const audit = new MemoryAuditSink('test')

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'phimq-server-'))
    file = join(dir, 'phimq.yaml')
    writeFileSync(file, configText(policy))
    // Synthetic pseudonym keys, as an operator would set them in the environment.
    Object.assign(process.env, TEST_ENV)
    server = await startServer(loadConfigFile(file), { audit })
  })
  after(async () => {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('listens where it says and, with a policy loaded, refuses a client without identity (C15)', async () => {
    const url = server.listeners[0]?.url ?? ''
    assert.match(url, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
    await assert.rejects(mqtt.connectAsync(url, { reconnectPeriod: 0, protocolVersion: 5 }), {
      message: /Not authorized/,
    })
    assert.equal(audit.ofType('connect.refused').at(-1)?.reasonCode, 0x87)
  })

  it('a policy reload from an invalid file changes nothing and says why', () => {
    writeFileSync(file, configText('  rules: 7'))
    const result = server.reloadPolicy()
    assert.equal(result.ok, false)
    assert.ok(!result.ok && result.errors.length > 0)
  })

  it('a reload from a broken, unknown-key or empty config file is one config.reload-refused event naming code and line, never content', () => {
    const events = () => audit.ofType('config.reload-refused')
    const before = events().length
    const good = configText(policy)

    // Broken YAML: a key with no colon in the middle of a block (line 5).
    writeFileSync(file, good.replace('    type: tcp', '    type tcp\n    secret-value-7781'))
    const broken = server.reloadPolicy()
    assert.equal(broken.ok, false)
    const message = !broken.ok ? (broken.errors[0] ?? '') : ''
    assert.match(message, /is not valid yaml: line \d+ column \d+: [a-z_]+/)
    assert.equal(message.match(/line \d+/g)?.length, 1, 'the first error, named once')
    assert.equal(events().length, before + 1)
    const yaml = events().at(-1)
    assert.equal(yaml?.code, 'PHIMQ_CONFIG_INVALID')
    assert.equal(typeof yaml?.problems[0]?.line, 'number')
    assert.equal(typeof yaml?.problems[0]?.column, 'number')

    // An unknown key: its path and line.
    writeFileSync(file, `${good}colour: blue\n`)
    assert.equal(server.reloadPolicy().ok, false)
    assert.equal(events().length, before + 2)
    const unknown = events().at(-1)?.problems
    const lastLine = good.split('\n').length
    assert.deepEqual(unknown, [{ key: 'colour', line: lastLine, code: 'unrecognized_keys' }])

    // An empty file.
    writeFileSync(file, '')
    assert.equal(server.reloadPolicy().ok, false)
    assert.equal(events().length, before + 3)
    assert.deepEqual(events().at(-1)?.problems, [{ key: '(root)', code: 'invalid_type' }])

    const recorded = JSON.stringify(events())
    for (const text of ['secret-value-7781', 'blue', 'tcp']) {
      assert.equal(recorded.includes(text), false, `no file content (${text}) in the events`)
    }
    writeFileSync(file, good)
  })

  it('a policy reload from a changed file takes effect and is audited', () => {
    const without = policy.replace(
      / {2}- name: kiosk-no-ecg[\s\S]*?(?= {2}# The de-identification)/,
      '',
    )
    assert.notEqual(without, policy)
    writeFileSync(file, configText(without))
    const result = server.reloadPolicy()
    assert.deepEqual(result, { ok: true, changed: true })
    assert.equal(audit.ofType('policy.reloaded').length, 1)
  })
})
