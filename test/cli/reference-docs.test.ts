/**
 * Issue #8, documentation: the configuration and command-line references are
 * generated (npm run schema) and must match what the code says today.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { renderCliReference, renderConfigReference } from '../../src/cli/reference-docs.js'

const docs = (name: string): string =>
  readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8')

describe('generated reference pages', () => {
  it('docs/configuration.md matches the zod schema (run npm run schema)', () => {
    assert.equal(docs('configuration.md'), renderConfigReference())
  })

  it('docs/cli.md matches the help of every command (run npm run schema)', () => {
    assert.equal(docs('cli.md'), renderCliReference())
  })

  it('the configuration reference lists every key of the demo policy, nested ones included', () => {
    const page = docs('configuration.md')
    for (const key of [
      'policy.rules[].shareGroups',
      'policy.classes[].retain',
      'policy.classes[].payload(format=json).unknownFields',
      'store(type=sqlite).masterKeyFile',
      'listeners[](type=mqtts).clientIdBinding',
    ]) {
      assert.ok(page.includes(`\`${key}\``), key)
    }
  })

  it('the CLI reference shows every command with its options', () => {
    const page = docs('cli.md')
    for (const heading of [
      '## phimq init',
      '## phimq start',
      '## phimq demo',
      '## phimq audit verify',
    ]) {
      assert.ok(page.includes(`${heading}\n`), heading)
    }
    assert.match(page, /--seconds <n>/)
  })
})
