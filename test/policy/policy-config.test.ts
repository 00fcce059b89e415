import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { allowAllGate } from '../../src/broker/gate.js'
import { parseConfig } from '../../src/config/load.js'
import { createPolicyGate, PolicyGate } from '../../src/policy/policy-gate.js'
import { loadPseudonymKeys } from '../../src/policy/pseudonym.js'
import { device1, message, RPM_POLICY_TEXT, rpmPolicy } from './helpers.js'

const HEAD = `environment: dev
listeners:
  - name: dev-plain
    type: tcp
    host: 127.0.0.1
    port: 1883
policy:
`

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l.length > 0 ? `  ${l}` : l))
    .join('\n')
}

/** A dev config whose policy is the RPM example with `edit` applied to its text. */
function configText(edit: (policy: string) => string = (p) => p): string {
  return HEAD + indent(edit(RPM_POLICY_TEXT))
}

describe('policy config section (src/config/policy.ts)', () => {
  it('loads the worked example through the config loader', () => {
    const { config } = parseConfig(configText())
    assert.equal(config.policy?.rules.length, 10)
    assert.equal(config.policy?.classes[1]?.messageExpiry.maxSeconds, 86_400)
    assert.equal(config.policy?.tenancy.mode, 'prefix')
  })

  it('the example in docs/policy.md is the tested fixture, verbatim', () => {
    const docs = readFileSync(new URL('../../docs/policy.md', import.meta.url), 'utf8')
    assert.ok(docs.includes(RPM_POLICY_TEXT.trim()), 'docs/policy.md drifted from the fixture')
  })

  const problems: Array<[string, (p: string) => string, RegExp]> = [
    [
      'PHI in a rule topic pattern (C21), masked, with key path and line',
      (p) => p.replace('"{tenant}/rpm/{id}/status"', '"{tenant}/rpm/pt-555-12-3456/status"'),
      /policy\.rules\.0\.topics\.1 \(line \d+\): topic pattern \{tenant\}\/rpm\/\*\*\*\/status holds phi \(ssn\)/,
    ],
    [
      'PHI in a class topic pattern (C21)',
      (p) =>
        p.replace(
          'topics: ["{tenant}/deid/+"]\n    messageExpiry',
          'topics: ["{tenant}/deid/jane.roe@example.org"]\n    messageExpiry',
        ),
      /policy\.classes\.3\.topics\.0.*\{tenant\}\/deid\/\*\*\* holds phi \(email\)/,
    ],
    [
      'an unknown placeholder',
      (p) => p.replace('"{tenant}/rpm/{id}/cmd/+"', '"{tenant}/rpm/{serial}/cmd/+"'),
      /policy\.rules\.1\.topics\.0.*unknown placeholder \{serial\}/,
    ],
    [
      'a rule pattern beginning with a wildcard (spans tenants)',
      (p) =>
        p.replace(
          'topics: ["{tenant}/deid/+"]\n    maxQos: 1\n    shareGroups',
          'topics: ["+/deid/+"]\n    maxQos: 1\n    shareGroups',
        ),
      /may not begin with a wildcard/,
    ],
    [
      'retain allowed on a PHI class',
      (p) =>
        p.replace(
          '    contentType: application/json\n',
          '    contentType: application/json\n    retain: true\n',
        ),
      /policy\.classes\.1\.retain.*a phi class may not allow retain/,
    ],
    [
      'a PHI class without a payload rule',
      (p) => p.replace('  - name: status\n    phi: false', '  - name: status\n    phi: true'),
      /policy\.classes\.2\.payload.*needs a payload rule/,
    ],
    [
      'a duplicate rule name',
      (p) => p.replace('name: device-commands', 'name: device-telemetry'),
      /policy\.rules\.1\.name.*duplicate name device-telemetry/,
    ],
    [
      'an unknown default class',
      (p) => `${p}defaultClass: nope\n`,
      /policy\.defaultClass.*no class named nope/,
    ],
    [
      'a key with both file and env',
      (p) =>
        p.replace('env: PHIMQ_PSEUDONYM_KEY_ACME', 'env: PHIMQ_PSEUDONYM_KEY_ACME, file: k.txt'),
      /policy\.pseudonymKeys\.0.*exactly one of file or env/,
    ],
    [
      'a site format that is not a regular expression',
      (p) => p.replace("pattern: '\\bAC\\d{8}\\b'", "pattern: 'AC(\\d'"),
      /policy\.detectors\.formats\.0\.pattern/,
    ],
    [
      'a site format with nested repetition (ReDoS risk)',
      (p) => p.replace("pattern: '\\bAC\\d{8}\\b'", "pattern: '(\\d+)+X'"),
      /policy\.detectors\.formats\.0\.pattern.*nested repetition/,
    ],
    [
      'a retain exception without a reason',
      (p) =>
        p.replace('        reason: "care team needs the current care plan on reconnect"\n', ''),
      /retainExceptions\.0\.reason/,
    ],
  ]
  for (const [what, edit, why] of problems) {
    it(`refuses ${what}`, () => {
      const text = configText(edit)
      assert.notEqual(text, configText(), 'the edit must change the config')
      assert.throws(
        () => parseConfig(text),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'PHIMQ_CONFIG_INVALID')
          assert.match(err.message, why)
          assert.doesNotMatch(err.message, /555-12-3456/)
          return true
        },
      )
    })
  }
})

describe('createPolicyGate (for src/server.ts)', () => {
  it('gives allowAllGate in dev without a policy, refuses test/prod without one', () => {
    const loaded = parseConfig(HEAD.replace('policy:\n', ''))
    assert.equal(createPolicyGate(loaded), allowAllGate)
    const prod = { ...loaded, config: { ...loaded.config, environment: 'prod' as const } }
    assert.throws(() => createPolicyGate(prod), { code: 'PHIMQ_POLICY_INVALID' })
  })

  it('builds a PolicyGate from a config with a policy', () => {
    const env = {
      PHIMQ_PSEUDONYM_KEY_ACME: Buffer.alloc(32, 1).toString('base64'),
      PHIMQ_PSEUDONYM_KEY_BETA: Buffer.alloc(32, 2).toString('base64'),
    }
    const gate = createPolicyGate(parseConfig(configText()), { env })
    assert.ok(gate instanceof PolicyGate)
    const v = gate.authorizePublish(device1, message('acme/rpm/dev-2/vitals/hr'))
    assert.equal(v.allow, false)
  })
})

describe('pseudonym keys (C22)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phimq-keys-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('reads a key file relative to the config folder, in base64 or hex', () => {
    writeFileSync(join(dir, 'acme.key'), `${Buffer.alloc(32, 7).toString('base64')}\n`)
    writeFileSync(join(dir, 'beta.key'), Buffer.alloc(40, 9).toString('hex'))
    const keys = loadPseudonymKeys(
      [
        { tenant: 'acme', keyId: 'a1', file: 'acme.key', encoding: 'base64' },
        { tenant: 'beta', keyId: 'b1', file: 'beta.key', encoding: 'hex' },
      ],
      { baseDir: dir, env: {} },
    )
    assert.deepEqual(keys.get('acme')?.key, Buffer.alloc(32, 7))
    assert.equal(keys.get('beta')?.key.length, 40)
  })

  it('refuses a key shorter than 32 bytes and a missing file, without echoing key bytes', () => {
    const short = Buffer.alloc(16, 3).toString('base64')
    writeFileSync(join(dir, 'short.key'), short)
    const load = (file: string) =>
      loadPseudonymKeys([{ tenant: 'acme', keyId: 'a1', file, encoding: 'base64' }], {
        baseDir: dir,
        env: {},
      })
    assert.throws(
      () => load('short.key'),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PHIMQ_PSEUDONYM_KEY')
        assert.ok(!err.message.includes(short))
        return true
      },
    )
    assert.throws(() => load('missing.key'), { code: 'PHIMQ_PSEUDONYM_KEY' })
  })

  it('the gate refuses to start when a configured key is missing', () => {
    assert.throws(() => new PolicyGate({ policy: rpmPolicy(), environment: 'prod', env: {} }), {
      code: 'PHIMQ_PSEUDONYM_KEY',
    })
  })
})
