import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Packet } from 'mqtt-packet'
import { checkInboundProperties } from '../../src/protocol/properties.js'
import { checkPacketStrings } from '../../src/protocol/utf8-fields.js'
import type { Violation } from '../../src/protocol/violation.js'
import { mustParse, parseOne } from './parse.js'
import {
  bytes,
  connect,
  type Part,
  packet,
  props,
  publish,
  str,
  subscribe,
  u16,
  u32,
  unsubscribe,
  userProp,
  vbi,
} from './raw.js'

/** Both checks, raw then parsed, as the core runs them. */
function checkBoth(raw: Buffer, version: 4 | 5): { raw?: Violation; parsed?: Violation } {
  const parsed = parseOne(raw, version)
  const out: { raw?: Violation; parsed?: Violation } = {}
  const rawFound = checkPacketStrings(raw, version)
  if (rawFound !== undefined) out.raw = rawFound
  if (!(parsed instanceof Error)) {
    const parsedFound = checkInboundProperties(parsed, version)
    if (parsedFound !== undefined) out.parsed = parsedFound
  }
  return out
}

function expectBoth(raw: Buffer, reasonCode: number, rule: string): void {
  const found = checkBoth(raw, 5)
  assert.equal(found.raw?.reasonCode, reasonCode, `raw: ${found.raw?.message}`)
  assert.equal(found.raw?.rule, rule, `raw: ${found.raw?.message}`)
  assert.equal(found.parsed?.reasonCode, reasonCode, `parsed: ${found.parsed?.message}`)
  assert.equal(found.parsed?.rule, rule, `parsed: ${found.parsed?.message}`)
}

function expectRaw(raw: Buffer, reasonCode: number, rule: string): void {
  const found = checkPacketStrings(raw, 5)
  assert.equal(found?.reasonCode, reasonCode, found?.message)
  assert.equal(found?.rule, rule, found?.message)
}

// One encoded value per property id, for building any section.
const SAMPLE: ReadonlyMap<number, Part> = new Map<number, Part>([
  [0x01, bytes(0x01, 1)],
  [0x02, bytes(0x02, u32(60))],
  [0x03, bytes(0x03, str('text/plain'))],
  [0x08, bytes(0x08, str('reply/here'))],
  [0x09, bytes(0x09, str('corr'))],
  [0x0b, bytes(0x0b, vbi(7))],
  [0x11, bytes(0x11, u32(30))],
  [0x12, bytes(0x12, str('assigned'))],
  [0x13, bytes(0x13, u16(30))],
  [0x15, bytes(0x15, str('SCRAM-SHA-256'))],
  [0x16, bytes(0x16, str('data'))],
  [0x17, bytes(0x17, 1)],
  [0x18, bytes(0x18, u32(5))],
  [0x19, bytes(0x19, 1)],
  [0x1a, bytes(0x1a, str('info'))],
  [0x1c, bytes(0x1c, str('other.example'))],
  [0x1f, bytes(0x1f, str('reason'))],
  [0x21, bytes(0x21, u16(10))],
  [0x22, bytes(0x22, u16(10))],
  [0x23, bytes(0x23, u16(1))],
  [0x24, bytes(0x24, 1)],
  [0x25, bytes(0x25, 1)],
  [0x27, bytes(0x27, u32(1024))],
  [0x28, bytes(0x28, 1)],
  [0x29, bytes(0x29, 1)],
  [0x2a, bytes(0x2a, 1)],
])

function sample(id: number): Part {
  const part = SAMPLE.get(id)
  assert.ok(part, `no sample for 0x${id.toString(16)}`)
  return part
}

/** A 5.0 packet of the given kind with the given property section. */
const BUILD: ReadonlyMap<string, (section: Buffer) => Buffer> = new Map([
  ['connect', (section: Buffer) => connect({ version: 5, properties: section })],
  ['will', (section: Buffer) => connect({ version: 5, will: { topic: 'w', properties: section } })],
  [
    'publish',
    (section: Buffer) => publish({ version: 5, topic: 't', qos: 1, properties: section }),
  ],
  ['puback', (section: Buffer) => packet(0x40, u16(1), 0x00, section)],
  ['pubrec', (section: Buffer) => packet(0x50, u16(1), 0x00, section)],
  ['pubrel', (section: Buffer) => packet(0x62, u16(1), 0x00, section)],
  ['pubcomp', (section: Buffer) => packet(0x70, u16(1), 0x00, section)],
  ['subscribe', (section: Buffer) => subscribe(5, ['a/b'], section)],
  ['unsubscribe', (section: Buffer) => unsubscribe(5, ['a/b'], section)],
  ['disconnect', (section: Buffer) => packet(0xe0, 0x00, section)],
  ['auth', (section: Buffer) => packet(0xf0, 0x18, section)],
])

function build(kind: string, ...properties: Part[]): Buffer {
  const make = BUILD.get(kind)
  assert.ok(make, kind)
  return make(props(...properties))
}

// What each section may carry, from table 2-4 (client to server).
const ALLOWED: ReadonlyMap<string, readonly number[]> = new Map([
  ['connect', [0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x27]],
  ['will', [0x01, 0x02, 0x03, 0x08, 0x09, 0x18]],
  ['publish', [0x01, 0x02, 0x03, 0x08, 0x09, 0x23]],
  ['puback', [0x1f]],
  ['pubrec', [0x1f]],
  ['pubrel', [0x1f]],
  ['pubcomp', [0x1f]],
  ['subscribe', [0x0b]],
  ['unsubscribe', []],
  ['disconnect', [0x11, 0x1c, 0x1f]],
  ['auth', [0x15, 0x16, 0x1f]],
])

/** Properties that a section needs beside the one under test. */
function companions(kind: string, id: number): Part[] {
  if (kind === 'auth' && id !== 0x15) return [sample(0x15)]
  if (kind === 'connect' && id === 0x16) return [sample(0x15)]
  return []
}

describe('properties allowed on each packet a client sends (table 2-4)', () => {
  for (const [kind, allowed] of ALLOWED) {
    it(`MQTT-5.0 2.2.2.2 ${kind}: each allowed property, once, and repeated User Properties pass`, () => {
      for (const id of allowed) {
        const raw = build(kind, sample(id), ...companions(kind, id))
        assert.deepEqual(checkBoth(raw, 5), {}, `0x${id.toString(16)} on ${kind}`)
      }
      const users = build(kind, ...companions(kind, 0), userProp('k', '1'), userProp('k', '2'))
      assert.deepEqual(checkBoth(users, 5), {}, `user properties on ${kind}`)
    })

    it(`MQTT-5.0 2.2.2.2 ${kind}: every other property is a malformed packet (0x81)`, () => {
      for (const id of SAMPLE.keys()) {
        if (allowed.includes(id)) continue
        if (kind === 'publish' && id === 0x0b) continue // its own rule, below
        const raw = build(kind, ...companions(kind, id), sample(id))
        const found = checkPacketStrings(raw, 5)
        const label = `0x${id.toString(16)} on ${kind}`
        assert.equal(found?.reasonCode, 0x81, label)
        assert.equal(found?.rule, 'MQTT-5.0 2.2.2.2', label)

        const parsed = parseOne(raw, 5)
        if (parsed instanceof Error) continue
        assert.equal(checkInboundProperties(parsed, 5)?.reasonCode, 0x81, `parsed ${label}`)
      }
    })
  }

  it('[MQTT-3.3.4-6] a Subscription Identifier on PUBLISH from a client is 0x82', () => {
    expectBoth(build('publish', sample(0x0b)), 0x82, '[MQTT-3.3.4-6]')
  })

  it('MQTT-5.0 2.2.2.2 Topic Alias Maximum on PUBLISH is 0x81', () => {
    expectBoth(build('publish', sample(0x22)), 0x81, 'MQTT-5.0 2.2.2.2')
  })

  it('MQTT-5.0 2.2.2.2 an unknown property identifier is 0x81', () => {
    expectRaw(build('publish', bytes(0x7f, 0)), 0x81, 'MQTT-5.0 2.2.2.2')
    expectRaw(build('connect', bytes(0x00)), 0x81, 'MQTT-5.0 2.2.2.2')
    expectRaw(build('subscribe', bytes(0x80, 0x01)), 0x81, 'MQTT-5.0 2.2.2.2')
  })
})

// Once-only properties per section, with the section whose sentence they break.
const ONCE: ReadonlyArray<[string, number, string]> = [
  ['connect', 0x11, '3.1.2.11.2'],
  ['connect', 0x21, '3.1.2.11.3'],
  ['connect', 0x27, '3.1.2.11.4'],
  ['connect', 0x22, '3.1.2.11.5'],
  ['connect', 0x19, '3.1.2.11.6'],
  ['connect', 0x17, '3.1.2.11.7'],
  ['connect', 0x15, '3.1.2.11.9'],
  ['connect', 0x16, '3.1.2.11.10'],
  ['will', 0x18, '3.1.3.2.2'],
  ['will', 0x01, '3.1.3.2.3'],
  ['will', 0x02, '3.1.3.2.4'],
  ['will', 0x03, '3.3.2.3.9'],
  ['will', 0x08, '3.3.2.3.5'],
  ['will', 0x09, '3.3.2.3.6'],
  ['publish', 0x01, '3.1.3.2.3'],
  ['publish', 0x02, '3.1.3.2.4'],
  ['publish', 0x03, '3.3.2.3.9'],
  ['publish', 0x08, '3.3.2.3.5'],
  ['publish', 0x09, '3.3.2.3.6'],
  ['publish', 0x23, '3.3.2.3.4'],
  ['puback', 0x1f, '3.4.2.2.2'],
  ['pubrec', 0x1f, '3.4.2.2.2'],
  ['pubrel', 0x1f, '3.4.2.2.2'],
  ['pubcomp', 0x1f, '3.4.2.2.2'],
  ['subscribe', 0x0b, '3.8.2.1.2'],
  ['disconnect', 0x11, '3.1.2.11.2'],
  ['disconnect', 0x1f, '3.4.2.2.2'],
  ['disconnect', 0x1c, '3.14.2.2.5'],
  ['auth', 0x15, '3.1.2.11.9'],
  ['auth', 0x16, '3.1.2.11.10'],
  ['auth', 0x1f, '3.4.2.2.2'],
]

describe('a property included more than once', () => {
  for (const [kind, id, section] of ONCE) {
    const name = `0x${id.toString(16).padStart(2, '0')}`
    it(`MQTT-5.0 ${section} ${name} twice on ${kind} is 0x82, raw and parsed`, () => {
      const raw = build(kind, ...companions(kind, id), sample(id), sample(id))
      expectBoth(raw, 0x82, `MQTT-5.0 ${section}`)
    })
  }

  it('MQTT-5.0 3.1.3.2.3 a repeat after a falsy first value, which mqtt-packet hides, is 0x82', () => {
    // Payload Format Indicator 0 then 1: mqtt-packet keeps only the last value.
    const raw = build('publish', bytes(0x01, 0), bytes(0x01, 1))
    const parsed = mustParse(raw, 5)
    assert.equal(checkInboundProperties(parsed, 5), undefined)
    expectRaw(raw, 0x82, 'MQTT-5.0 3.1.3.2.3')

    const aliases = build('publish', bytes(0x02, u32(0)), bytes(0x02, u32(5)))
    expectRaw(aliases, 0x82, 'MQTT-5.0 3.1.3.2.4')
  })

  it('MQTT-5.0 3.3.2.3.7 User Properties may repeat, with the same name, on every packet', () => {
    for (const kind of BUILD.keys()) {
      const users = [userProp('k', 'a'), userProp('k', 'a'), userProp('k', 'b')]
      const raw = build(kind, ...companions(kind, 0), ...users)
      assert.deepEqual(checkBoth(raw, 5), {}, kind)
    }
  })
})

describe('property values', () => {
  it('MQTT-5.0 3.1.2.11.3 a Receive Maximum of 0 is 0x82', () => {
    expectBoth(build('connect', bytes(0x21, u16(0))), 0x82, 'MQTT-5.0 3.1.2.11.3')
  })

  it('MQTT-5.0 3.1.2.11.4 a Maximum Packet Size of 0 is 0x82', () => {
    expectBoth(build('connect', bytes(0x27, u32(0))), 0x82, 'MQTT-5.0 3.1.2.11.4')
  })

  it('[MQTT-3.3.2-8] a Topic Alias of 0 is 0x94 (3.3.4)', () => {
    expectBoth(build('publish', bytes(0x23, u16(0))), 0x94, '[MQTT-3.3.2-8]')
  })

  it('MQTT-5.0 3.8.2.1.2 a Subscription Identifier of 0 is 0x82', () => {
    expectBoth(build('subscribe', bytes(0x0b, 0)), 0x82, 'MQTT-5.0 3.8.2.1.2')
  })

  it('MQTT-5.0 3.8.2.1.2 the largest Subscription Identifier, 268,435,455, passes', () => {
    assert.deepEqual(checkBoth(build('subscribe', bytes(0x0b, vbi(268_435_455))), 5), {})
  })

  it('MQTT-5.0 3.8.2.1.2 a Subscription Identifier above 268,435,455 is 0x82 (parsed form)', () => {
    const packet = { cmd: 'subscribe', messageId: 1, subscriptions: [] } as const
    const tooBig = { ...packet, properties: { subscriptionIdentifier: 268_435_456 } }
    const found = checkInboundProperties(tooBig as unknown as Packet, 5)
    assert.equal(found?.reasonCode, 0x82)
  })

  it('[MQTT-1.5.5-1] a Subscription Identifier of five bytes is 0x81', () => {
    const raw = build('subscribe', bytes(0x0b, [0xff, 0xff, 0xff, 0xff, 0x01]))
    expectRaw(raw, 0x81, '[MQTT-1.5.5-1]')
  })

  it('[MQTT-1.5.5-1] a Subscription Identifier not in the fewest bytes is 0x81', () => {
    expectRaw(build('subscribe', bytes(0x0b, [0x81, 0x00])), 0x81, '[MQTT-1.5.5-1]')
  })

  it('MQTT-5.0 3.3.2.3.2 a Payload Format Indicator of 2, which mqtt-packet reads as true, is 0x82', () => {
    const raw = build('publish', bytes(0x01, 2))
    const parsed = mustParse(raw, 5)
    assert.equal(parsed.cmd === 'publish' && parsed.properties?.payloadFormatIndicator, true)
    expectRaw(raw, 0x82, 'MQTT-5.0 3.3.2.3.2')
    expectRaw(build('will', bytes(0x01, 0xff)), 0x82, 'MQTT-5.0 3.3.2.3.2')
  })

  it('MQTT-5.0 3.1.2.11.6 a Request Response Information of 2 is 0x82', () => {
    expectRaw(build('connect', bytes(0x19, 2)), 0x82, 'MQTT-5.0 3.1.2.11.6')
  })

  it('MQTT-5.0 3.1.2.11.7 a Request Problem Information of 7 is 0x82', () => {
    expectRaw(build('connect', bytes(0x17, 7)), 0x82, 'MQTT-5.0 3.1.2.11.7')
  })

  it('MQTT-5.0 3.1.2.11.7 numeric 0/1 flags given as numbers are checked in parsed form too', () => {
    const bad = { cmd: 'connect', clientId: 'c', properties: { requestProblemInformation: 2 } }
    assert.equal(checkInboundProperties(bad as unknown as Packet, 5)?.reasonCode, 0x82)
  })

  it('MQTT-5.0 3.1.2.11.10 Authentication Data without an Authentication Method is 0x82', () => {
    const found = checkBoth(build('connect', sample(0x16)), 5)
    assert.equal(found.raw, undefined)
    assert.equal(found.parsed?.reasonCode, 0x82)
    assert.equal(found.parsed?.rule, 'MQTT-5.0 3.1.2.11.10')
  })

  it('MQTT-5.0 3.15.2.2.2 an AUTH without an Authentication Method is 0x82', () => {
    const found = checkBoth(packet(0xf0, 0x18, props(sample(0x16))), 5)
    assert.equal(found.parsed?.rule, 'MQTT-5.0 3.15.2.2.2')
    assert.equal(found.parsed?.reasonCode, 0x82)
  })

  it('MQTT-5.0 3.15.2.1 an AUTH with Reason Code 0 and no properties needs no method', () => {
    const auth = { cmd: 'auth', reasonCode: 0 } as const
    assert.equal(checkInboundProperties(auth, 5), undefined)
  })

  it('a zero Session Expiry, Message Expiry or Will Delay Interval is allowed', () => {
    assert.deepEqual(checkBoth(build('connect', bytes(0x11, u32(0))), 5), {})
    assert.deepEqual(checkBoth(build('publish', bytes(0x02, u32(0))), 5), {})
    assert.deepEqual(checkBoth(build('will', bytes(0x18, u32(0))), 5), {})
  })

  it('3.1.1 packets carry no properties and always pass the property check', () => {
    const parsed = mustParse(connect({ version: 4, username: 'u' }), 4)
    assert.equal(checkInboundProperties(parsed, 4), undefined)
  })
})
