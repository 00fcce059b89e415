import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  checkTopicFilter,
  checkTopicName,
  parseSubscriptionFilter,
  topicMatches,
} from '../../src/protocol/topic.js'

const limits = { maxTopicLengthBytes: 64, maxTopicLevels: 8 }

describe('Topic Names', () => {
  it('refuses an empty Topic Name [MQTT-4.7.3-1]', () => {
    assert.equal(checkTopicName('', limits), 'empty')
  })
  it('refuses wildcards in a Topic Name [MQTT-3.3.2-2]', () => {
    assert.equal(checkTopicName('a/+/b', limits), 'wildcard-in-name')
    assert.equal(checkTopicName('a/#', limits), 'wildcard-in-name')
  })
  it('refuses U+0000 in a Topic Name [MQTT-4.7.3-2]', () => {
    assert.equal(checkTopicName('a/\u0000', limits), 'null-character')
  })
  it('refuses names over the length and level limits', () => {
    assert.equal(checkTopicName('x'.repeat(65), limits), 'too-long')
    assert.equal(checkTopicName('a/b/c/d/e/f/g/h/i', limits), 'too-many-levels')
  })
  it('counts length in UTF-8 bytes, not characters', () => {
    assert.equal(checkTopicName('é'.repeat(33), limits), 'too-long')
  })
  it('measures UTF-8 exactly at the limit: 3-byte characters, surrogate pairs, lone surrogates', () => {
    // limit 64: 21 × 3 = 63 fits, 22 × 3 = 66 does not
    assert.equal(checkTopicName('€'.repeat(21), limits), undefined)
    assert.equal(checkTopicName('€'.repeat(22), limits), 'too-long')
    // a surrogate pair is two UTF-16 units and four bytes
    assert.equal(checkTopicName('\u{1F600}'.repeat(16), limits), undefined)
    assert.equal(checkTopicName('\u{1F600}'.repeat(17), limits), 'too-long')
    // 21 × 3 bytes and one more byte: 64 fits, one more does not
    assert.equal(checkTopicName(`${'€'.repeat(21)}a`, limits), undefined)
    assert.equal(checkTopicName(`${'€'.repeat(21)}ab`, limits), 'too-long')
    assert.equal(checkTopicFilter(`${'€'.repeat(21)}ab`, limits), 'too-long')
  })
  it('accepts names that look like JavaScript object keys', () => {
    for (const t of ['__proto__', 'constructor', 'toString', 'a/__proto__/b']) {
      assert.equal(checkTopicName(t, limits), undefined)
    }
  })
})

describe('Topic Filters', () => {
  it('accepts well-placed wildcards [MQTT-4.7.1-1, MQTT-4.7.1-2]', () => {
    for (const f of ['#', '+', 'a/#', '+/+', 'a/+/b/#', '/+', '+/']) {
      assert.equal(checkTopicFilter(f, limits), undefined, f)
    }
  })
  it('refuses misplaced wildcards [MQTT-4.7.1-1, MQTT-4.7.1-2]', () => {
    for (const f of ['a#', 'a/#/b', 'a+', 'a/b+', '+a', '#/a', 'a/##']) {
      assert.equal(checkTopicFilter(f, limits), 'misplaced-wildcard', f)
    }
  })
  it('refuses a filter with tens of thousands of levels by counting, not splitting', () => {
    const huge = '+/'.repeat(50_000)
    assert.equal(
      checkTopicFilter(huge, { maxTopicLengthBytes: 65_535, maxTopicLevels: 32 }),
      'too-long',
    )
    const deep = 'a/'.repeat(20_000)
    assert.equal(
      checkTopicFilter(deep, { maxTopicLengthBytes: 65_535, maxTopicLevels: 32 }),
      'too-many-levels',
    )
  })
})

describe('shared subscriptions', () => {
  it('splits $share/{ShareName}/{filter} [MQTT-4.8.2-1]', () => {
    assert.deepEqual(parseSubscriptionFilter('$share/g1/a/+/c'), {
      shareGroup: 'g1',
      filter: 'a/+/c',
    })
    assert.deepEqual(parseSubscriptionFilter('a/b'), { filter: 'a/b' })
  })
  it('refuses an empty or wildcard ShareName and an empty filter [MQTT-4.8.2-2]', () => {
    assert.equal(parseSubscriptionFilter('$share//a'), 'bad-share-name')
    assert.equal(parseSubscriptionFilter('$share/g+/a'), 'bad-share-name')
    assert.equal(parseSubscriptionFilter('$share/g#/a'), 'bad-share-name')
    assert.equal(parseSubscriptionFilter('$share/g'), 'bad-share-name')
    assert.equal(parseSubscriptionFilter('$share/g/'), 'empty')
  })
})

describe('matching', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['+/+', '/x', true],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
  ]
  for (const [filter, topic, expected] of cases) {
    it(`"${filter}" ${expected ? 'matches' : 'does not match'} "${topic}" [MQTT-4.7.2-1]`, () => {
      assert.equal(topicMatches(filter, topic), expected)
    })
  }
})
