import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import * as errors from '../src/errors.js'

function codesInSource(): Set<string> {
  const codes = new Set<string>()
  for (const value of Object.values(errors)) {
    if (typeof value !== 'function') continue
    const proto = value.prototype as unknown
    if (!(proto instanceof Error) && value !== errors.PhimqError) continue
    // Instance fields need an instance; every error takes a message first.
    const Ctor = value as unknown as new (m: string, r: number) => errors.PhimqError
    codes.add(new Ctor('probe', 0x80).code)
  }
  return codes
}

function codesInDocs(): Set<string> {
  const text = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')
  return new Set([...text.matchAll(/^\| `(PHIMQ_[A-Z0-9_]+)`/gm)].map((m) => m[1] as string))
}

describe('error codes', () => {
  it('every code in src/errors.ts is documented in docs/errors.md', () => {
    const documented = codesInDocs()
    for (const code of codesInSource()) assert.ok(documented.has(code), `${code} not in docs`)
  })

  it('docs/errors.md names no code that does not exist', () => {
    const real = codesInSource()
    for (const code of codesInDocs()) assert.ok(real.has(code), `${code} documented but unknown`)
  })
})
