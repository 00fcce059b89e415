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
