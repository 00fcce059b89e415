import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { checkPolicyFile, explain, loadPolicyGate, parseIdentity } from '../../src/cli/policy.js'
import { RPM_POLICY_TEXT, TEST_ENV } from '../policy/helpers.js'

const HEAD = `environment: dev
listeners:
  - name: dev-plain
    type: tcp
    host: 127.0.0.1
    port: 1883
`

describe('phimq policy check / explain', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phimq-cli-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'phimq.yaml')
  const policy = RPM_POLICY_TEXT.split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n')
  writeFileSync(path, `${HEAD}policy:\n${policy}`)

  it('checks a valid policy and names what it holds', () => {
    assert.equal(checkPolicyFile(path, TEST_ENV), 'policy ok: 10 rules, 4 classes')
  })

  it('fails with the named error when a pseudonym key is missing', () => {
    assert.throws(() => checkPolicyFile(path, {}), { code: 'PHIMQ_PSEUDONYM_KEY' })
  })

  it('fails with the named error when there is no policy', () => {
    const bare = join(dir, 'bare.yaml')
    writeFileSync(bare, HEAD)
    assert.throws(() => checkPolicyFile(bare, TEST_ENV), { code: 'PHIMQ_CONFIG_INVALID' })
  })

  it('explains a refusal and an allowed subscription (C15, C17)', () => {
    const gate = loadPolicyGate(path, TEST_ENV)
    const device = parseIdentity('tenant=acme,role=device,id=dev-1')
    const refused = explain(gate, { identity: device, publish: 'acme/rpm/dev-2/vitals/hr', qos: 1 })
    assert.equal(refused, 'deny 0x87 NotAuthorized policy.default-deny')
    const app = parseIdentity('tenant=acme, role=clinical-app, id=app-1')
    const shared = {
      identity: app,
      subscribe: 'acme/rpm/+/vitals/+',
      share: 'clinical',
      qos: 2 as const,
    }
    assert.equal(explain(gate, shared), 'allow subscribe, qos 1')
    const own = { identity: device, publish: 'acme/rpm/dev-1/vitals/hr', qos: 1 as const }
    assert.match(explain(gate, own), /^allow publish, expires 20\d\d-/)
  })

  it('refuses an identity without an id', () => {
    assert.throws(() => parseIdentity('tenant=acme'), { code: 'PHIMQ_CONFIG_INVALID' })
  })
})
