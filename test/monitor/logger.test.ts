import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  createIdentifierMasker,
  createLogger,
  LOG_MESSAGES,
  maskIdentifier,
  maskTopic,
} from '../../src/monitor/logger.js'
import { collector } from './helpers.js'

describe('operational logger (C26)', () => {
  it('removes payload and password and masks client id and username, also nested', () => {
    const out = collector()
    const log = createLogger({ destination: out, base: { node: 'n1' } })
    log.warn(
      {
        event: 'acl.denied',
        clientId: 'patient-078-05-1120',
        username: 'jane.doe@example.org',
        password: 'hunter2',
        payload: Buffer.from('{"ssn":"078-05-1120"}'),
        actor: { clientId: 'pump-555-867-5309', nested: { payload: 'x' } },
      },
      'acl denied',
    )
    const text = out.lines.join('')
    for (const secret of ['078-05-1120', 'jane.doe', 'hunter2', '867-5309', 'patient']) {
      assert.equal(text.includes(secret), false, `${secret} leaked`)
    }
    const line = JSON.parse(out.lines[0] as string) as Record<string, unknown>
    assert.equal(line.msg, 'acl denied')
    assert.equal(line.level, 'warn')
    assert.equal(line.node, 'n1')
    assert.match(String(line.clientId), /^~[0-9a-f]{12}$/)
    assert.match(String(line.payload), /^\[redacted 21 bytes\]$/)
  })

  it('masks identifier-shaped topic levels in topic and filter fields', () => {
    const out = collector()
    const log = createLogger({ destination: out })
    log.info(
      { topic: 'clinic/patients/078-05-1120/vitals', filter: 'mail/a@b.org/#' },
      'acl denied',
    )
    const line = JSON.parse(out.lines[0] as string) as { topic: string; filter: string }
    assert.match(line.topic, /^clinic\/patients\/~[0-9a-f]{12}\/vitals$/)
    assert.match(line.filter, /^mail\/~[0-9a-f]{12}\/#$/)
  })

  it('a pseudonym is stable for one key and differs across keys', () => {
    const a = createIdentifierMasker(Buffer.alloc(32, 1))
    const b = createIdentifierMasker(Buffer.alloc(32, 2))
    assert.equal(a('pump-1'), a('pump-1'))
    assert.notEqual(a('pump-1'), a('pump-2'))
    assert.notEqual(a('pump-1'), b('pump-1'))
    assert.equal(maskIdentifier('x'), maskIdentifier('x'))
    assert.equal(maskTopic('plain/topic/7'), 'plain/topic/7')
  })

  it('logs errors as type, code and message only', () => {
    const out = collector()
    const log = createLogger({ destination: out })
    const err = Object.assign(new Error('store failed'), { code: 'PHIMQ_STORE_FAILED' })
    log.error({ err }, 'store failed')
    const line = JSON.parse(out.lines[0] as string) as { err: Record<string, unknown> }
    assert.deepEqual(line.err, {
      type: 'Error',
      code: 'PHIMQ_STORE_FAILED',
      message: 'store failed',
    })
  })

  it('every message logged in src/audit and src/monitor is in the fixed vocabulary', () => {
    const vocabulary = new Set<string>(LOG_MESSAGES)
    const root = new URL('../../src/', import.meta.url).pathname
    const used: string[] = []
    for (const dir of ['audit', 'monitor']) {
      for (const file of readdirSync(join(root, dir))) {
        const text = readFileSync(join(root, dir, file), 'utf8')
        // `log.warn({ ... }, 'message')`, possibly across lines.
        for (const m of text.matchAll(
          /\.(?:debug|info|warn|error)\(\s*\{[^)]*?\},\s*'([^']+)'/gs,
        )) {
          used.push(m[1] as string)
        }
      }
    }
    assert.ok(used.length >= 4, 'the scan found too few log calls to be working')
    for (const message of used) {
      assert.ok(vocabulary.has(message), `"${message}" is not in LOG_MESSAGES`)
      assert.equal(message, message.toLowerCase())
    }
  })
})
