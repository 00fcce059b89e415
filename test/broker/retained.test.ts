import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RetainedMessages } from '../../src/broker/retained.js'
import type { Message } from '../../src/broker/types.js'

const msg = (topic: string): Message => ({
  topic,
  payload: Buffer.from(topic),
  qos: 0,
  retain: true,
})

describe('retained messages', () => {
  it('finds matches for exact, + and # filters, and not $ topics under leading wildcards', () => {
    const r = new RetainedMessages()
    for (const t of ['a', 'a/b', 'a/b/c', 'x/b', '$SYS/up']) r.set(t, msg(t))
    const topics = (f: string): string[] =>
      r
        .match(f)
        .map((m) => m.topic)
        .sort()
    assert.deepEqual(topics('a/#'), ['a', 'a/b', 'a/b/c'])
    assert.deepEqual(topics('+/b'), ['a/b', 'x/b'])
    assert.deepEqual(topics('#'), ['a', 'a/b', 'a/b/c', 'x/b'])
    assert.deepEqual(topics('+'), ['a'])
    assert.deepEqual(topics('$SYS/#'), ['$SYS/up'])
  })

  it('replaces and clears, keeping the count right', () => {
    const r = new RetainedMessages()
    r.set('a/b', msg('a/b'))
    r.set('a/b', { ...msg('a/b'), payload: Buffer.from('new') })
    assert.equal(r.size, 1)
    assert.equal(r.get('a/b')?.payload.toString(), 'new')
    r.set('a/b', undefined)
    assert.equal(r.size, 0)
    assert.deepEqual(r.match('#'), [])
  })
})
