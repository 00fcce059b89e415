import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  filterContains,
  filtersIntersect,
  isValidFilter,
  topicMatches,
} from '../../src/policy/topic-filter.js'

describe('topicMatches (MQTT 5.0 section 4.7)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a', false],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['+/+', '/x', true],
    ['+', '', true],
    ['#', '$SYS/x', false], // [MQTT-4.7.2-1]
    ['+/x', '$SYS/x', false], // [MQTT-4.7.2-1]
    ['$SYS/#', '$SYS/x', true],
    ['a/b', 'a/b/', false],
  ]
  for (const [filter, topic, expected] of cases) {
    it(`"${filter}" ${expected ? 'matches' : 'does not match'} "${topic}"`, () => {
      assert.equal(topicMatches(filter, topic), expected)
    })
  }
})

describe('filterContains (C15: a filter is allowed only if every topic it matches is)', () => {
  const cases: Array<[string, string, boolean, string]> = [
    ['ward/dev-1/ecg', 'ward/+/ecg', false, 'a wildcard is wider than one literal'],
    ['ward/+/ecg', 'ward/dev-1/ecg', true, 'a literal sits inside a wildcard'],
    ['ward/+/ecg', 'ward/+/ecg', true, 'a filter contains itself'],
    ['a/#', 'a', true, '# also matches the parent level'],
    ['a/#', 'a/+/c', true, 'multi-level contains single-level'],
    ['a/#', 'a/#', true, 'identical multi-level'],
    ['a/+', 'a/#', false, '# is wider than +'],
    ['a/+/#', 'a/#', false, 'a/# matches a, a/+/# does not'],
    ['a/+/#', 'a/b/#', true, 'deeper multi-level inside'],
    ['a/b', 'a/b/#', false, 'inner reaches deeper'],
    ['a/b/#', 'a/b', true, 'parent of #'],
    ['a/b', 'a', false, 'fewer levels'],
    ['a', 'a/b', false, 'more levels'],
    ['#', 'a/+/#', true, '# contains everything without $'],
    ['#', '$SYS/#', false, '# does not reach $ topics [MQTT-4.7.2-1]'],
    ['+/x', '$SYS/x', false, '+ does not reach $ topics [MQTT-4.7.2-1]'],
    ['$SYS/#', '$SYS/broker/+', true, '$SYS subtree'],
    ['+/+', '+/+', true, 'same shape'],
    ['+/+', '+', false, 'different depth'],
    ['a//b', 'a/+/b', false, 'empty level is a literal'],
    ['a/+/b', 'a//b', true, '+ matches an empty level'],
    ['acme/#', 'beta/#', false, 'different tenants'],
    ['acme/rpm/+/vitals/#', 'acme/rpm/dev-1/vitals/hr', true, 'device subtree'],
    ['acme/rpm/dev-1/#', 'acme/rpm/dev-2/hr', false, 'another device subtree'],
  ]
  for (const [outer, inner, expected, why] of cases) {
    it(`"${outer}" ${expected ? 'contains' : 'does not contain'} "${inner}" (${why})`, () => {
      assert.equal(filterContains(outer, inner), expected)
    })
  }

  it('agrees with topicMatches on sampled topics (containment implies matching)', () => {
    const filters = ['a/#', 'a/+', 'a/+/c', '+/b/#', '#', 'a/b', 'a/b/c', '+', '+/+/+', 'a/+/#']
    const topics = ['a', 'a/b', 'a/b/c', 'a/x/c', 'z/b/c', 'a/b/c/d', 'b', '$SYS/b']
    for (const outer of filters) {
      for (const inner of filters) {
        if (!filterContains(outer, inner)) continue
        for (const t of topics) {
          if (topicMatches(inner, t)) {
            assert.ok(topicMatches(outer, t), `${outer} ⊇ ${inner} but misses ${t}`)
          }
        }
      }
    }
  })
})

describe('filtersIntersect (deny rules refuse overlapping subscriptions)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a/+', 'a/b', true],
    ['a/+', '+/b', true],
    ['a/b', 'a/c', false],
    ['a/#', 'a', true],
    ['a/+', 'a', false],
    ['#', '$SYS/x', false],
    ['$SYS/#', '+/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['a/b/c', 'a/+', false],
    ['+/+/c', 'a/b/#', true],
  ]
  for (const [a, b, expected] of cases) {
    it(`"${a}" and "${b}" ${expected ? 'overlap' : 'do not overlap'}`, () => {
      assert.equal(filtersIntersect(a, b), expected)
      assert.equal(filtersIntersect(b, a), expected)
    })
  }
})

describe('isValidFilter', () => {
  it('accepts well-formed filters and refuses misplaced wildcards [MQTT-4.7.1-1] [MQTT-4.7.1-2]', () => {
    for (const f of ['a/+/b', '#', 'a/#', '+', '/', 'a//b']) assert.ok(isValidFilter(f), f)
    for (const f of ['a/#/b', 'a+/b', 'a/b#', '', 'a\u0000']) assert.ok(!isValidFilter(f), f)
  })
})
