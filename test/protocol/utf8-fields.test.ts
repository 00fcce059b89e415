import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  checkPacketStrings,
  readPublishUserProperties,
  readWillUserProperties,
} from '../../src/protocol/utf8-fields.js'
import type { Violation } from '../../src/protocol/violation.js'
import { mustParse } from './parse.js'
import {
  bytes,
  connect,
  packet,
  packetDeclaring,
  props,
  publish,
  str,
  subscribe,
  u16,
  unsubscribe,
  userProp,
  vbi,
} from './raw.js'

const ILL_FORMED = [0xff]
const OVERLONG_NUL = [0xc0, 0x80]
const SURROGATE = [0xed, 0xa0, 0x80]
const TRUNCATED_4_BYTE = [0xf0, 0x9f, 0x98]

function expectViolation(
  found: Violation | undefined,
  reasonCode: number,
  rule: string,
  field?: string,
): void {
  assert.ok(found, `expected ${rule}, got no violation`)
  assert.equal(found.reasonCode, reasonCode, found.message)
  assert.equal(found.rule, rule, found.message)
  if (field !== undefined) assert.match(found.message, new RegExp(field))
}

describe('UTF-8 Encoded Strings in 5.0 packets', () => {
  it('[MQTT-1.5.4-1] an ill-formed byte in a Topic Name is 0x81', () => {
    const raw = publish({ version: 5, topic: bytes('a/', ILL_FORMED) })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]', 'topic name')
  })

  it('[MQTT-1.5.4-1] an ill-formed Topic Name would reach the core as U+FFFD without this check', () => {
    const raw = publish({ version: 5, topic: bytes('a/', ILL_FORMED) })
    const parsed = mustParse(raw, 5)
    assert.equal(parsed.cmd, 'publish')
    assert.equal(parsed.cmd === 'publish' && parsed.topic, 'a/\ufffd')
  })

  it('[MQTT-1.5.4-1] an overlong encoding (C0 80) in the Client Identifier is 0x81', () => {
    const raw = connect({ version: 5, clientId: bytes('c', OVERLONG_NUL) })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]', 'client identifier')
  })

  it('[MQTT-1.5.4-1] a surrogate (ED A0 80) in a Topic Name is 0x81', () => {
    const raw = publish({ version: 5, topic: bytes('a/', SURROGATE, '/b'), qos: 1 })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]', 'topic name')
  })

  it('[MQTT-1.5.4-1] a surrogate in a Topic Filter of SUBSCRIBE is 0x81', () => {
    const raw = subscribe(5, ['ok/#', bytes(SURROGATE)])
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]', 'topic filter')
  })

  it('[MQTT-1.5.4-1] a 4-byte sequence cut short at the end of a string is 0x81', () => {
    const raw = publish({ version: 5, topic: bytes('a/', TRUNCATED_4_BYTE), payload: 'x' })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]', 'topic name')
  })

  it('[MQTT-1.5.4-1] a 4-byte sequence cut short at the end of the User Name is 0x81', () => {
    const raw = connect({ version: 5, username: bytes('u', TRUNCATED_4_BYTE) })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]', 'user name')
  })

  it('[MQTT-1.5.4-1] an ill-formed Protocol Name is 0x81', () => {
    const raw = packet(0x10, str('MQ', ILL_FORMED), 5, 0x02, u16(60), props(), str('c'))
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]', 'protocol name')
  })

  it('[MQTT-1.5.4-2] U+0000 in the Client Identifier is 0x81', () => {
    const raw = connect({ version: 5, clientId: bytes('c', 0, '1') })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'client identifier')
  })

  it('[MQTT-1.5.4-2] U+0000 in a Topic Name is 0x81', () => {
    const raw = publish({ version: 5, topic: bytes('a', 0) })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'topic name')
  })

  it('[MQTT-1.5.4-2] U+0000 in a Topic Filter of SUBSCRIBE is 0x81', () => {
    const raw = subscribe(5, ['a/b', bytes('c/', 0)])
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'topic filter')
  })

  it('[MQTT-1.5.4-2] U+0000 in a Topic Filter of UNSUBSCRIBE is 0x81', () => {
    const raw = unsubscribe(5, [bytes(0)])
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'topic filter')
  })

  it('[MQTT-1.5.4-2] U+0000 in the User Name is 0x81', () => {
    const raw = connect({ version: 5, username: bytes('us', 0, 'er'), password: 'pw' })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'user name')
  })

  it('[MQTT-1.5.4-2] U+0000 in the Will Topic is 0x81', () => {
    const raw = connect({ version: 5, will: { topic: bytes('w', 0) } })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'will topic')
  })

  it('[MQTT-1.5.7-1] U+0000 in a User Property name on PUBLISH is 0x81', () => {
    const raw = publish({ version: 5, topic: 't', properties: props(userProp(bytes(0), 'v')) })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'user property name')
  })

  it('[MQTT-1.5.7-1] U+0000 in a User Property value on CONNECT is 0x81', () => {
    const raw = connect({ version: 5, properties: props(userProp('k', bytes('v', 0))) })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'user property value')
  })

  it('[MQTT-1.5.7-1] a surrogate in a User Property of the Will Properties is 0x81', () => {
    const will = { topic: 'w', properties: props(userProp('k', bytes(SURROGATE))) }
    const raw = connect({ version: 5, will })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]', 'user property value')
  })

  it('[MQTT-1.5.7-1] an ill-formed User Property on SUBSCRIBE and UNSUBSCRIBE is 0x81', () => {
    const bad = props(userProp(bytes(ILL_FORMED), 'v'))
    expectViolation(checkPacketStrings(subscribe(5, ['a'], bad), 5), 0x81, '[MQTT-1.5.4-1]')
    expectViolation(checkPacketStrings(unsubscribe(5, ['a'], bad), 5), 0x81, '[MQTT-1.5.4-1]')
  })

  it('[MQTT-1.5.4-2] U+0000 in the Reason String of DISCONNECT, PUBACK and AUTH is 0x81', () => {
    const reason = props(0x1f, str('bye', 0))
    const disconnect = packet(0xe0, 0x00, reason)
    const puback = packet(0x40, u16(1), 0x00, reason)
    const auth = packet(0xf0, 0x18, props(0x15, str('m'), 0x1f, str(0)))
    for (const raw of [disconnect, puback, auth]) {
      expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'reason string')
    }
  })

  it('[MQTT-1.5.4-2] U+0000 in a User Property of PUBREC, PUBREL, PUBCOMP is 0x81', () => {
    for (const first of [0x50, 0x62, 0x70]) {
      const raw = packet(first, u16(1), 0x00, props(userProp('k', bytes(0))))
      expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'user property')
    }
  })

  it('[MQTT-3.3.2-13] an ill-formed Response Topic or Content Type on PUBLISH is 0x81', () => {
    for (const id of [0x08, 0x03]) {
      const raw = publish({ version: 5, topic: 't', properties: props(id, str(ILL_FORMED)) })
      expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]')
    }
  })

  it('[MQTT-1.5.4-2] U+0000 in the Authentication Method of CONNECT is 0x81', () => {
    const raw = connect({ version: 5, properties: props(0x15, str('SCRAM', 0)) })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-2]', 'authentication method')
  })

  it('[MQTT-1.5.4-3] U+FEFF, 4-byte characters and other well-formed text pass untouched', () => {
    const text = '\ufeffdevice/\u{1F600}/caf\u00e9/\u4e2d'
    assert.equal(checkPacketStrings(publish({ version: 5, topic: text }), 5), undefined)
    assert.equal(checkPacketStrings(connect({ version: 5, clientId: text }), 5), undefined)
  })

  it('[MQTT-1.5.4-2] U+0000 is found at either end of short and long strings', () => {
    for (const size of [1, 255, 256, 257, 4000]) {
      const head = publish({ version: 5, topic: bytes(0, 'a'.repeat(size)) })
      const tail = publish({ version: 5, topic: bytes('a'.repeat(size), 0) })
      expectViolation(checkPacketStrings(head, 5), 0x81, '[MQTT-1.5.4-2]')
      expectViolation(checkPacketStrings(tail, 5), 0x81, '[MQTT-1.5.4-2]')
    }
  })

  it('[MQTT-1.5.4-1] ill-formed bytes are found at the end of long strings', () => {
    for (const size of [255, 256, 5000]) {
      const raw = subscribe(5, [bytes('a'.repeat(size), SURROGATE)])
      expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.4-1]')
    }
  })

  it('a Topic Name of 65,535 well-formed bytes passes', () => {
    const raw = publish({ version: 5, topic: 'é'.repeat(32_767).concat('a') })
    assert.equal(checkPacketStrings(raw, 5), undefined)
  })

  it('a binary Password and Will Payload may hold any bytes, including 00 and FF', () => {
    const will = { topic: 'w', payload: bytes(0, 0xff, SURROGATE) }
    const raw = connect({ version: 5, will, username: 'u', password: bytes(0, 0xff) })
    assert.equal(checkPacketStrings(raw, 5), undefined)
  })
})

describe('UTF-8 Encoded Strings in 3.1.1 packets', () => {
  it('[MQTT-1.5.3-1] an ill-formed Topic Name is a malformed packet', () => {
    const raw = publish({ version: 4, topic: bytes('a/', ILL_FORMED) })
    expectViolation(checkPacketStrings(raw, 4), 0x81, '[MQTT-1.5.3-1]', 'topic name')
  })

  it('[MQTT-1.5.3-1] an overlong encoding in the Client Identifier is a malformed packet', () => {
    const raw = connect({ version: 4, clientId: bytes(OVERLONG_NUL) })
    expectViolation(checkPacketStrings(raw, 4), 0x81, '[MQTT-1.5.3-1]', 'client identifier')
  })

  it('[MQTT-1.5.3-1] a surrogate in a Topic Filter is a malformed packet', () => {
    const raw = subscribe(4, [bytes('a/', SURROGATE)])
    expectViolation(checkPacketStrings(raw, 4), 0x81, '[MQTT-1.5.3-1]', 'topic filter')
  })

  it('[MQTT-1.5.3-2] U+0000 in the Client Identifier, User Name, Topic Name, filters', () => {
    const cases = [
      connect({ version: 4, clientId: bytes('a', 0) }),
      connect({ version: 4, username: bytes(0) }),
      connect({ version: 4, will: { topic: bytes(0) } }),
      publish({ version: 4, topic: bytes('t', 0), qos: 2 }),
      subscribe(4, [bytes(0)]),
      unsubscribe(4, ['a', bytes('b', 0)]),
    ]
    for (const raw of cases) expectViolation(checkPacketStrings(raw, 4), 0x81, '[MQTT-1.5.3-2]')
  })

  it('[MQTT-1.5.3-1] the CONNECT Protocol Level decides the edition, not the argument', () => {
    const raw = connect({ version: 4, clientId: bytes(ILL_FORMED) })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.3-1]')
  })
})

describe('lengths inside the packet', () => {
  it('a string length past the packet end is 0x81', () => {
    // Topic length says 100, but only three bytes follow.
    const raw = packet(0x30, u16(100), 'a/b')
    expectViolation(checkPacketStrings(raw, 5), 0x81, 'MQTT-5.0 1.5', 'topic name past')
  })

  it('a Client Identifier length past the packet end is 0x81 in 3.1.1 too', () => {
    const raw = packet(0x10, str('MQTT'), 4, 0x02, u16(60), u16(30), 'c1')
    expectViolation(checkPacketStrings(raw, 4), 0x81, 'MQTT-5.0 1.5', 'client identifier')
  })

  it('a flag for a User Name with no User Name field is 0x81', () => {
    const raw = packet(0x10, str('MQTT'), 5, 0x82, u16(60), props(), str('c1'))
    expectViolation(checkPacketStrings(raw, 5), 0x81, 'MQTT-5.0 1.5', 'user name length')
  })

  it('[MQTT-2.2.2-1] a 5.0 PUBLISH, SUBSCRIBE or CONNECT without a Property Length is 0x81', () => {
    const cases = [
      packet(0x30, str('t')),
      packet(0x32, str('t'), u16(1)),
      packet(0x82, u16(1)),
      packet(0x10, str('MQTT'), 5, 0x02, u16(60)),
    ]
    for (const raw of cases) expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-2.2.2-1]')
  })

  it('a Property Length past the packet end is 0x81', () => {
    const raw = packet(0x30, str('t'), vbi(50), 0x23, u16(1))
    expectViolation(checkPacketStrings(raw, 5), 0x81, 'MQTT-5.0 2.2.2.1', 'property length')
  })

  it('a Property Length past the end of CONNECT is 0x81', () => {
    const raw = packet(0x10, str('MQTT'), 5, 0x02, u16(60), vbi(200), 0x11, [0, 0, 0, 1])
    expectViolation(checkPacketStrings(raw, 5), 0x81, 'MQTT-5.0 2.2.2.1')
  })

  it('a property value that runs past its Property Length is 0x81', () => {
    // The section says 3 bytes; the Reason String inside claims 10.
    const raw = packet(0x40, u16(1), 0x00, vbi(3), 0x1f, u16(10), 'abcdefghij')
    expectViolation(checkPacketStrings(raw, 5), 0x81, 'MQTT-5.0 1.5', 'reason string')
  })

  it('a Four Byte property cut by the end of its section is 0x81', () => {
    const raw = packet(0xe0, 0x00, vbi(3), 0x11, 0, 0)
    expectViolation(checkPacketStrings(raw, 5), 0x81, 'MQTT-5.0 1.5', 'session expiry')
  })

  it('[MQTT-1.5.5-1] a Property Length not in the fewest bytes is 0x81', () => {
    const raw = packet(0x30, str('t'), [0x80, 0x00], 'payload')
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.5-1]', 'property length')
  })

  it('[MQTT-1.5.5-1] a Remaining Length of five bytes is 0x81', () => {
    const raw = bytes(0x30, [0xff, 0xff, 0xff, 0xff, 0x7f], str('t'))
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-1.5.5-1]', 'remaining length')
  })

  it('a Remaining Length larger than the bytes handed over is 0x81', () => {
    const raw = packetDeclaring(0x30, 40, str('t'), 'x')
    expectViolation(checkPacketStrings(raw, 4), 0x81, 'MQTT-5.0 1.5', 'remaining length')
  })

  it('[MQTT-3.1.4-1] a CONNECT longer than its fields is 0x81', () => {
    const raw = connect({ version: 5, trailing: bytes(0, 1, 2) })
    expectViolation(checkPacketStrings(raw, 5), 0x81, '[MQTT-3.1.4-1]')
    const v4 = connect({ version: 4, username: 'u', trailing: 'x' })
    expectViolation(checkPacketStrings(v4, 4), 0x81, '[MQTT-3.1.4-1]')
  })

  it('a 3.1.1 PUBACK whose Remaining Length is not 2 is 0x81', () => {
    const raw = packet(0x40, u16(1), 0x00)
    expectViolation(checkPacketStrings(raw, 4), 0x81, 'MQTT-3.1.1 3.4.1')
  })

  it('a 5.0 PUBACK with bytes after its properties is 0x81', () => {
    const raw = packet(0x40, u16(1), 0x10, props(), 'junk')
    expectViolation(checkPacketStrings(raw, 5), 0x81, 'MQTT-5.0 2.2.2')
  })

  it('a PINGREQ with a Remaining Length is 0x81', () => {
    expectViolation(checkPacketStrings(packet(0xc0, 0), 5), 0x81, 'MQTT-5.0 3.12')
  })

  it('a 3.1.1 DISCONNECT with a Remaining Length is 0x81', () => {
    expectViolation(checkPacketStrings(packet(0xe0, 0), 4), 0x81, 'MQTT-3.1.1 3.14')
  })

  it('a Topic Filter with no Subscription Options byte is 0x81', () => {
    const raw = packet(0x82, u16(1), props(), str('a/b'))
    expectViolation(checkPacketStrings(raw, 5), 0x81, 'MQTT-5.0 1.5', 'subscription options')
  })

  it('[MQTT-3.8.3-2] a SUBSCRIBE with no Topic Filter is 0x82', () => {
    expectViolation(checkPacketStrings(subscribe(5, []), 5), 0x82, '[MQTT-3.8.3-2]')
  })

  it('[MQTT-3.8.3-3] a 3.1.1 SUBSCRIBE with no Topic Filter is a protocol violation', () => {
    expectViolation(checkPacketStrings(subscribe(4, []), 4), 0x82, '[MQTT-3.8.3-3]')
  })

  it('[MQTT-3.10.3-2] an UNSUBSCRIBE with no Topic Filter is 0x82 in 5.0 and 3.1.1', () => {
    expectViolation(checkPacketStrings(unsubscribe(5, []), 5), 0x82, '[MQTT-3.10.3-2]')
    expectViolation(checkPacketStrings(unsubscribe(4, []), 4), 0x82, '[MQTT-3.10.3-2]')
  })

  it('a QoS 1 PUBLISH cut before its Packet Identifier is 0x81', () => {
    const raw = packet(0x32, str('t'), 0x00)
    expectViolation(checkPacketStrings(raw, 4), 0x81, 'MQTT-5.0 1.5', 'packet identifier')
  })

  it('short 5.0 acknowledgements, DISCONNECT and AUTH are well-formed', () => {
    const ok = [
      packet(0x40, u16(1)),
      packet(0x50, u16(1), 0x10),
      packet(0x62, u16(1), 0x92),
      packet(0xe0),
      packet(0xe0, 0x04),
      packet(0xf0),
    ]
    for (const raw of ok) assert.equal(checkPacketStrings(raw, 5), undefined)
  })

  it('packets only a server sends pass: the core refuses them by type', () => {
    assert.equal(checkPacketStrings(packet(0x20, 0, 0), 5), undefined)
    assert.equal(checkPacketStrings(packet(0xd0), 5), undefined)
  })
})

describe('User Properties read from the raw PUBLISH', () => {
  it('[MQTT-3.3.2-18] keeps the received order, integer-like and repeated names included', () => {
    const raw = publish({
      version: 5,
      topic: 't',
      qos: 1,
      properties: props(
        userProp('b', '1'),
        0x02,
        [0, 0, 0, 9],
        userProp('10', 'x'),
        userProp('b', ''),
        userProp('a', '2'),
        userProp('b', '3'),
      ),
    })
    assert.equal(checkPacketStrings(raw, 5), undefined)
    assert.deepEqual(readPublishUserProperties(raw), [
      ['b', '1'],
      ['10', 'x'],
      ['b', ''],
      ['a', '2'],
      ['b', '3'],
    ])
  })

  it('a PUBLISH without properties has no User Properties', () => {
    assert.deepEqual(readPublishUserProperties(publish({ version: 5, topic: 't' })), [])
  })

  it('[MQTT-3.1.3-10] Will User Properties keep the received order', () => {
    const will = {
      topic: 'w',
      properties: props(
        userProp('2', 'a'),
        bytes(0x18, [0, 0, 0, 1]),
        userProp('z', 'b'),
        userProp('2', 'c'),
      ),
    }
    const raw = connect({
      version: 5,
      properties: props(userProp('conn', 'x'), 0x11, [0, 0, 0, 9]),
      will,
      username: 'u',
    })
    assert.equal(checkPacketStrings(raw, 5), undefined)
    assert.deepEqual(readWillUserProperties(raw), [
      ['2', 'a'],
      ['z', 'b'],
      ['2', 'c'],
    ])
  })

  it('a CONNECT without a will, or a 3.1.1 one, has no Will User Properties', () => {
    assert.deepEqual(readWillUserProperties(connect({ version: 5 })), [])
    assert.deepEqual(readWillUserProperties(connect({ version: 4, will: { topic: 'w' } })), [])
  })
})
