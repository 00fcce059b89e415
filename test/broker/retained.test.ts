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

describe('retained limits', () => {
  it('a new retained topic past maxRetainedMessages is refused with 0x97; replacing one is not', async () => {
    const { startBroker } = await import('../helpers/broker.js')
    const tb = await startBroker({ limits: { maxRetainedMessages: 2 } })
    try {
      const pub = await tb.connect({ protocolVersion: 5 })
      const codes: number[] = []
      pub.on('packetreceive', (p) => {
        if (p.cmd === 'puback') codes.push(p.reasonCode ?? 0)
      })
      for (const t of ['r/1', 'r/2', 'r/3', 'r/1']) {
        await pub.publishAsync(t, 'x', { qos: 1, retain: true }).catch(() => {})
      }
      assert.deepEqual(
        codes.map((c) => (c >= 0x80 ? c : 0)),
        [0, 0, 0x97, 0],
      )
      assert.equal(tb.broker.retained.size, 2)
      assert.equal(tb.audit.ofType('publish.denied').at(-1)?.rule, 'phimq.retained-quota')
    } finally {
      await tb.close()
    }
  })
})
