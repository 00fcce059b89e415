import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type RouteEntry, SubscriptionTree } from '../../src/broker/subscription-tree.js'

function entry(clientId: string, filter: string, shareGroup?: string): RouteEntry {
  return {
    clientId,
    qos: 1,
    shareGroup,
    record: { filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
  }
}

describe('subscription tree', () => {
  it('matches exact, + and # filters and skips $ topics for leading wildcards [MQTT-4.7.2-1]', () => {
    const tree = new SubscriptionTree()
    tree.add('a/b', entry('c1', 'a/b'))
    tree.add('a/+', entry('c2', 'a/+'))
    tree.add('#', entry('c3', '#'))
    tree.add('a/b/#', entry('c4', 'a/b/#'))
    const ids = (t: string): string[] =>
      tree
        .match(t)
        .subscribers.map((e) => e.clientId)
        .sort()
    assert.deepEqual(ids('a/b'), ['c1', 'c2', 'c3', 'c4'])
    assert.deepEqual(ids('a/c'), ['c2', 'c3'])
    assert.deepEqual(ids('$SYS/a'), [])
  })

  it('keys clients by Map, so ids like __proto__ are ordinary', () => {
    const tree = new SubscriptionTree()
    tree.add('__proto__/constructor', entry('__proto__', '__proto__/constructor'))
    tree.add('toString', entry('constructor', 'toString'))
    assert.equal(tree.match('__proto__/constructor').subscribers[0]?.clientId, '__proto__')
    assert.equal(tree.match('toString').subscribers[0]?.clientId, 'constructor')
    assert.equal(tree.match('hasOwnProperty').subscribers.length, 0)
  })

  it('replaces a client subscription to the same filter and prunes on remove', () => {
    const tree = new SubscriptionTree()
    assert.equal(tree.add('a/b', entry('c1', 'a/b')), false)
    assert.equal(tree.add('a/b', entry('c1', 'a/b')), true)
    assert.equal(tree.size, 1)
    assert.equal(tree.remove('a/b', 'c1'), true)
    assert.equal(tree.remove('a/b', 'c1'), false)
    assert.equal(tree.size, 0)
    assert.equal(tree.match('a/b').subscribers.length, 0)
  })

  it('groups shared subscriptions by share name', () => {
    const tree = new SubscriptionTree()
    tree.add('a/+', entry('c1', '$share/g/a/+', 'g'))
    tree.add('a/+', entry('c2', '$share/g/a/+', 'g'))
    tree.add('a/+', entry('c3', '$share/h/a/+', 'h'))
    const { subscribers, groups } = tree.match('a/x')
    assert.equal(subscribers.length, 0)
    assert.deepEqual(
      groups.map((g) => [g.name, [...g.members.keys()]]),
      [
        ['g', ['c1', 'c2']],
        ['h', ['c3']],
      ],
    )
  })

  it('forgets a cached match when a subscription changes', () => {
    const tree = new SubscriptionTree()
    tree.add('a/+', entry('c1', 'a/+'))
    assert.equal(tree.match('a/x').subscribers.length, 1)
    tree.add('a/x', entry('c2', 'a/x'))
    assert.equal(tree.match('a/x').subscribers.length, 2)
    tree.remove('a/+', 'c1')
    assert.equal(tree.match('a/x').subscribers.length, 1)
  })
})
