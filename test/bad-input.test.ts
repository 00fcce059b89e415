/**
 * Bad input over a raw socket (issue 2, "Bad input"): every malformed or
 * hostile packet closes only its own connection, in 5.0 with DISCONNECT
 * 0x81/0x82 (or the specific code) where the spec allows it, and the broker
 * keeps serving other clients. A broker on 127.0.0.1 port 0, real sockets.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Packet } from 'mqtt-packet'
import { collectFor, nextMessages, startBroker, type TestBroker } from './helpers/broker.js'
import {
  bytes,
  connect,
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
} from './protocol/raw.js'
import { RawSocket } from './protocol/raw-socket.js'

let tb: TestBroker
let clientCount = 0

before(async () => {
  tb = await startBroker()
})

after(async () => {
  await tb.close()
})

function nextClientId(): string {
  clientCount += 1
  return `raw-${clientCount}`
}

function codeOf(packet: Packet | undefined): number | undefined {
  if (packet === undefined) return undefined
  if (packet.cmd === 'connack') return packet.reasonCode ?? packet.returnCode
  if (packet.cmd === 'disconnect') return packet.reasonCode ?? 0
  return undefined
}

function hex(code: number | undefined): string {
  return code === undefined ? 'none' : `0x${code.toString(16)}`
}

/** What the broker sent, for failure messages: `connack 0x0, puback 0x90`. */
function seen(raw: RawSocket): string {
  const sent = raw.received.map((p) => {
    const code = 'reasonCode' in p ? p.reasonCode : 'returnCode' in p ? p.returnCode : undefined
    return code === undefined ? p.cmd : `${p.cmd} ${hex(code)}`
  })
  return sent.length === 0 ? 'nothing' : sent.join(', ')
}

/** A raw connection that has been accepted with CONNACK 0. */
async function openSession(version: 4 | 5): Promise<RawSocket> {
  const raw = await RawSocket.open(tb.port, version)
  raw.send(connect({ version, clientId: nextClientId() }))
  const connack = await raw.next('connack')
  assert.equal(codeOf(connack), 0, 'the valid CONNECT was not accepted')
  return raw
}

/** The broker still accepts a new client and routes a message to it. */
async function assertServes(): Promise<void> {
  const client = await tb.connect({ protocolVersion: 5, clientId: nextClientId() })
  try {
    await client.subscribeAsync('health/check', { qos: 1 })
    const got = nextMessages(client, 1)
    await client.publishAsync('health/check', 'ok', { qos: 1 })
    const [message] = await got
    assert.equal(message?.payload.toString(), 'ok')
  } finally {
    await client.endAsync()
  }
}

/**
 * After CONNACK, `bad` closes the connection; a 5.0 client first gets a
 * DISCONNECT with one of `reasons` [MQTT-4.13.1-1].
 */
async function expectClosedAfterConnect(
  version: 4 | 5,
  bad: Buffer,
  reasons: readonly number[],
): Promise<void> {
  const raw = await openSession(version)
  try {
    raw.send(bad)
    assert.ok(await raw.waitClosed(), `left open; the broker sent ${seen(raw)}`)
    if (version === 5) {
      const disconnect = raw.received.find((p) => p.cmd === 'disconnect')
      const code = codeOf(disconnect)
      assert.ok(
        code !== undefined && reasons.includes(code),
        `DISCONNECT reason ${hex(code)}, expected one of ${reasons.map(hex).join(', ')}`,
      )
    }
  } finally {
    raw.destroy()
  }
  await assertServes()
}

/**
 * `bad` as the first packet: the connection is closed and not accepted;
 * a CONNACK with a refusal code is allowed [MQTT-3.1.4-1], nothing else.
 */
async function expectRefusedFirst(version: 4 | 5, bad: Buffer): Promise<void> {
  const raw = await RawSocket.open(tb.port, version)
  try {
    raw.send(bad)
    assert.ok(await raw.waitClosed(), `left open; the broker sent ${seen(raw)}`)
    const connack = raw.received.find((p) => p.cmd === 'connack')
    if (connack !== undefined) assert.notEqual(codeOf(connack), 0, 'CONNACK accepted it')
    const others = raw.received.filter((p) => p.cmd !== 'connack')
    assert.deepEqual(
      others.map((p) => p.cmd),
      [],
    )
  } finally {
    raw.destroy()
  }
  await assertServes()
}

const MALFORMED = [0x81]
const PROTOCOL = [0x82]
const VERSIONS = [4, 5] as const
const NAME = { 4: '3.1.1', 5: '5.0' } as const

describe('remaining length that disagrees with the fields', () => {
  for (const version of VERSIONS) {
    it(`${NAME[version]} [MQTT-3.1.4-1] a CONNECT longer than its fields is refused`, async () => {
      await expectRefusedFirst(version, connect({ version, clientId: 'x1', trailing: 'xyz' }))
    })

    it(`${NAME[version]} a CONNECT shorter than its fields (user name flag, no user name) is refused`, async () => {
      const flags = 0x82
      const parts = [str('MQTT'), version, flags, u16(60)]
      const raw = packet(0x10, ...parts, ...(version === 5 ? [props()] : []), str('x2'))
      await expectRefusedFirst(version, raw)
    })

    it(`${NAME[version]} a PUBLISH whose Topic Name runs past the Remaining Length closes with 0x81`, async () => {
      await expectClosedAfterConnect(version, packet(0x30, u16(100), 'a/b'), MALFORMED)
    })

    it(`${NAME[version]} a SUBSCRIBE whose last filter has no options byte closes with 0x81`, async () => {
      const raw = packet(0x82, u16(1), ...(version === 5 ? [props()] : []), str('a/b'))
      await expectClosedAfterConnect(version, raw, MALFORMED)
    })
  }

  it('3.1.1 a PUBACK with a Remaining Length of 3 is closed', async () => {
    await expectClosedAfterConnect(4, packet(0x40, u16(1), 0x00), MALFORMED)
  })

  it('5.0 a PUBACK with bytes after its properties closes with 0x81', async () => {
    await expectClosedAfterConnect(5, packet(0x40, u16(1), 0x00, props(), 'junk'), MALFORMED)
  })

  it('5.0 a PINGREQ with a body closes with 0x81', async () => {
    await expectClosedAfterConnect(5, packet(0xc0, 0x00), MALFORMED)
  })
})

describe('ill-formed UTF-8 and U+0000 in strings', () => {
  it('5.0 [MQTT-1.5.4-1] an ill-formed byte in a Topic Name closes with 0x81', async () => {
    await expectClosedAfterConnect(5, publish({ version: 5, topic: bytes('a/', 0xff) }), MALFORMED)
  })

  it('5.0 [MQTT-1.5.4-1] an overlong encoding (C0 80) in a Topic Name closes with 0x81', async () => {
    const raw = publish({ version: 5, topic: bytes('a/', 0xc0, 0x80) })
    await expectClosedAfterConnect(5, raw, MALFORMED)
  })

  it('5.0 [MQTT-1.5.4-1] a surrogate in a Topic Filter closes with 0x81', async () => {
    await expectClosedAfterConnect(5, subscribe(5, [bytes(0xed, 0xa0, 0x80)]), MALFORMED)
  })

  it('5.0 [MQTT-1.5.4-2] U+0000 in a Topic Name closes with 0x81', async () => {
    await expectClosedAfterConnect(5, publish({ version: 5, topic: bytes('a', 0) }), MALFORMED)
  })

  it('5.0 [MQTT-1.5.4-2] U+0000 in an UNSUBSCRIBE filter closes with 0x81', async () => {
    await expectClosedAfterConnect(5, unsubscribe(5, [bytes('a', 0)]), MALFORMED)
  })

  it('5.0 [MQTT-1.5.7-1] U+0000 in a User Property closes with 0x81', async () => {
    const raw = publish({ version: 5, topic: 't', properties: props(userProp('k', bytes(0))) })
    await expectClosedAfterConnect(5, raw, MALFORMED)
  })

  it('5.0 [MQTT-1.5.4-2] U+0000 in the Client Identifier refuses the CONNECT', async () => {
    await expectRefusedFirst(5, connect({ version: 5, clientId: bytes('c', 0) }))
  })

  it('5.0 [MQTT-1.5.4-1] a surrogate in the User Name refuses the CONNECT', async () => {
    const raw = connect({ version: 5, username: bytes(0xed, 0xb0, 0x80), password: 'p' })
    await expectRefusedFirst(5, raw)
  })

  it('3.1.1 [MQTT-1.5.3-2] U+0000 in the Client Identifier refuses the CONNECT', async () => {
    await expectRefusedFirst(4, connect({ version: 4, clientId: bytes('c', 0) }))
  })

  it('3.1.1 [MQTT-1.5.3-1] a 4-byte sequence cut short in a Topic Name is closed', async () => {
    const raw = publish({ version: 4, topic: bytes('a/', 0xf0, 0x9f, 0x98) })
    await expectClosedAfterConnect(4, raw, MALFORMED)
  })
})

describe('Topic Names', () => {
  for (const version of VERSIONS) {
    it(`${NAME[version]} [MQTT-3.3.2-1] a zero-length Topic Name without an alias is closed`, async () => {
      await expectClosedAfterConnect(version, publish({ version, topic: '' }), PROTOCOL)
    })

    for (const topic of ['a/+/b', 'a/#', '#', 'x+']) {
      it(`${NAME[version]} [MQTT-3.3.2-2] the wildcard Topic Name "${topic}" is closed`, async () => {
        const raw = publish({ version, topic, qos: 1 })
        await expectClosedAfterConnect(version, raw, [0x90, ...PROTOCOL, ...MALFORMED])
      })
    }
  }
})

describe('fixed header', () => {
  for (const version of VERSIONS) {
    it(`${NAME[version]} [MQTT-3.3.1-4] a PUBLISH with QoS 3 is closed`, async () => {
      await expectClosedAfterConnect(version, packet(0x36, str('t'), u16(1), 'x'), MALFORMED)
    })

    const reserved: ReadonlyArray<[string, Buffer]> = [
      ['[MQTT-3.8.1-1] SUBSCRIBE flags 0000', packet(0x80, u16(1), props(), str('a'), 0)],
      ['[MQTT-3.10.1-1] UNSUBSCRIBE flags 0000', packet(0xa0, u16(1), props(), str('a'))],
      ['[MQTT-3.6.1-1] PUBREL flags 0000', packet(0x60, u16(1))],
      ['[MQTT-2.2.2-2] PINGREQ flags 0001', packet(0xc1)],
      ['[MQTT-2.2.2-2] DISCONNECT flags 1000', packet(0xe8)],
    ]
    for (const [what, raw5] of reserved) {
      it(`${NAME[version]} ${what} (reserved bits) is closed`, async () => {
        // 3.1.1 has no property section: drop the empty one.
        const raw = version === 5 ? raw5 : dropEmptyProperties(raw5)
        await expectClosedAfterConnect(version, raw, MALFORMED)
      })
    }

    it(`${NAME[version]} [MQTT-3.1.2-3] a CONNECT with the reserved flag set is refused`, async () => {
      const raw = connect({ version })
      raw[raw.indexOf(0x02, 8)] = 0x03 // Connect Flags: Clean Start | reserved
      await expectRefusedFirst(version, raw)
    })

    const forbidden: ReadonlyArray<[string, Buffer]> = [
      ['reserved type 0', packet(0x00)],
      ['CONNACK', packet(0x20, 0x00, 0x00)],
      ['SUBACK', packet(0x90, u16(1), 0x00)],
      ['UNSUBACK', packet(0xb0, u16(1))],
      ['PINGRESP', packet(0xd0)],
    ]
    for (const [what, raw] of forbidden) {
      it(`${NAME[version]} [MQTT-2.1.2] a client sending ${what} is closed`, async () => {
        await expectClosedAfterConnect(version, raw, [...MALFORMED, ...PROTOCOL])
      })
    }
  }

  it('3.1.1 a client sending type 15 (AUTH, reserved in 3.1.1) is closed', async () => {
    await expectClosedAfterConnect(4, packet(0xf0), MALFORMED)
  })
})

describe('connection order', () => {
  for (const version of VERSIONS) {
    it(`${NAME[version]} [MQTT-3.1.0-2] a second CONNECT is a protocol error`, async () => {
      const second = connect({ version, clientId: nextClientId() })
      await expectClosedAfterConnect(version, second, PROTOCOL)
    })

    const early: ReadonlyArray<[string, Buffer]> = [
      ['PUBLISH', publish({ version, topic: 't' })],
      ['SUBSCRIBE', subscribe(version, ['#'])],
      ['PINGREQ', packet(0xc0)],
      ['DISCONNECT', packet(0xe0)],
    ]
    for (const [what, raw] of early) {
      it(`${NAME[version]} [MQTT-3.1.0-1] ${what} before CONNECT is closed unanswered`, async () => {
        await expectRefusedFirst(version, raw)
      })
    }
  }
})

describe('MQTT 5.0 properties', () => {
  const onPublish = (...properties: Parameters<typeof props>) =>
    publish({ version: 5, topic: 'p/t', qos: 1, properties: props(...properties) })

  it('[MQTT-3.3.4-6] a Subscription Identifier on PUBLISH closes with 0x82', async () => {
    await expectClosedAfterConnect(5, onPublish(0x0b, vbi(3)), PROTOCOL)
  })

  it('MQTT-5.0 2.2.2.2 a Topic Alias Maximum on PUBLISH closes with 0x81', async () => {
    await expectClosedAfterConnect(5, onPublish(0x22, u16(5)), MALFORMED)
  })

  it('MQTT-5.0 3.3.2.3.3 a Message Expiry Interval twice closes with 0x82', async () => {
    await expectClosedAfterConnect(5, onPublish(0x02, u32(9), 0x02, u32(10)), PROTOCOL)
  })

  it('MQTT-5.0 3.3.2.3.2 a Payload Format Indicator 0 then 1 closes with 0x82', async () => {
    await expectClosedAfterConnect(5, onPublish(0x01, 0, 0x01, 1), PROTOCOL)
  })

  it('MQTT-5.0 3.8.2.1.2 a Subscription Identifier twice on SUBSCRIBE closes with 0x82', async () => {
    const raw = subscribe(5, ['a/b'], props(0x0b, vbi(1), 0x0b, vbi(2)))
    await expectClosedAfterConnect(5, raw, PROTOCOL)
  })

  it('MQTT-5.0 3.1.2.11.3 a Receive Maximum twice on CONNECT is refused', async () => {
    const raw = connect({ version: 5, properties: props(0x21, u16(5), 0x21, u16(6)) })
    await expectRefusedFirst(5, raw)
  })

  it('MQTT-5.0 3.1.2.11.3 a Receive Maximum of 0 on CONNECT is refused', async () => {
    await expectRefusedFirst(5, connect({ version: 5, properties: props(0x21, u16(0)) }))
  })

  it('MQTT-5.0 2.2.2.1 a Property Length past the packet end closes with 0x81', async () => {
    const raw = packet(0x30, str('t'), vbi(60), 0x02, u32(5))
    await expectClosedAfterConnect(5, raw, MALFORMED)
  })

  it('MQTT-5.0 2.2.2.1 a Property Length past the end of CONNECT is refused', async () => {
    const raw = packet(0x10, str('MQTT'), 5, 0x02, u16(60), vbi(90), 0x11, u32(1))
    await expectRefusedFirst(5, raw)
  })

  it('[MQTT-3.3.2-8] a Topic Alias of 0 closes with 0x94', async () => {
    await expectClosedAfterConnect(5, onPublish(0x23, u16(0)), [0x94])
  })

  it('[MQTT-3.3.2-9] a Topic Alias above the maximum closes with 0x94', async () => {
    await expectClosedAfterConnect(5, onPublish(0x23, u16(0xffff)), [0x94])
  })
})

describe('client input that equals JavaScript object keys', () => {
  const KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']

  it('client ids, topics and filters such as __proto__ work as plain strings', async () => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort()
    const subscriber = await tb.connect({ protocolVersion: 5, clientId: '__proto__' })
    const publisher = await tb.connect({ protocolVersion: 4, clientId: 'constructor' })
    try {
      for (const key of KEYS) await subscriber.subscribeAsync([key, `${key}/#`], { qos: 1 })
      const got = nextMessages(subscriber, KEYS.length * 2)
      for (const key of KEYS) {
        await publisher.publishAsync(key, `m-${key}`, { qos: 1, retain: true })
        await publisher.publishAsync(`${key}/${key}`, `n-${key}`, { qos: 1 })
      }
      const topics = (await got).map((m) => m.topic).sort()
      assert.deepEqual(topics, KEYS.flatMap((k) => [k, `${k}/${k}`]).sort())

      // A later subscriber named toString gets the retained messages.
      const late = await tb.connect({ protocolVersion: 5, clientId: 'toString' })
      const retained = nextMessages(late, KEYS.length)
      await late.subscribeAsync(KEYS, { qos: 1 })
      assert.deepEqual((await retained).map((m) => m.topic).sort(), [...KEYS].sort())
      await late.endAsync()
    } finally {
      await subscriber.endAsync()
      await publisher.endAsync()
    }
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    await assertServes()
  })

  it('User Properties named __proto__ and constructor are forwarded as pairs', async () => {
    const subscriber = await tb.connect({ protocolVersion: 5, clientId: nextClientId() })
    try {
      await subscriber.subscribeAsync('up/t', { qos: 1 })
      const got = nextMessages(subscriber, 1)
      const raw = await openSession(5)
      raw.send(
        publish({
          version: 5,
          topic: 'up/t',
          properties: props(userProp('__proto__', 'a'), userProp('constructor', 'b')),
        }),
      )
      const [message] = await got
      raw.destroy()
      const users = message?.packet.properties?.userProperties
      assert.deepEqual(Object.entries(users ?? {}), [
        ['__proto__', 'a'],
        ['constructor', 'b'],
      ])
    } finally {
      await subscriber.endAsync()
    }
  })
})

describe('resource exhaustion', () => {
  for (const version of VERSIONS) {
    it(`${NAME[version]} a Topic Filter of 30,000 levels is refused quickly and the broker serves on`, async () => {
      const raw = await openSession(version)
      const started = Date.now()
      raw.send(subscribe(version, [`${'+/'.repeat(30_000)}#`]))
      const suback = await raw.next('suback', 3000)
      const elapsed = Date.now() - started
      if (suback?.cmd === 'suback') {
        const [code] = suback.granted as number[]
        assert.ok(code !== undefined && code >= 0x80, `granted ${hex(code)}`)
      } else {
        assert.ok(await raw.waitClosed(), 'neither SUBACK nor close')
      }
      assert.ok(elapsed < 2000, `took ${elapsed} ms`)
      raw.destroy()
      await assertServes()
    })

    it(`${NAME[version]} a Topic Name of 30,000 levels is refused quickly, not delivered`, async () => {
      const watcher = await tb.connect({ protocolVersion: 5, clientId: nextClientId() })
      const raw = await openSession(version)
      try {
        await watcher.subscribeAsync('a/#', { qos: 1 })
        const delivered = collectFor(watcher, 500)
        const started = Date.now()
        raw.send(publish({ version, topic: 'a/'.repeat(30_000), qos: 1 }))
        // Over our limits, not against the spec: a 5.0 client may get PUBACK
        // 0x90 and keep its connection; otherwise the connection is closed.
        const puback = await raw.next('puback', 1000)
        const code = codeOf(puback) ?? (puback?.cmd === 'puback' ? puback.reasonCode : undefined)
        // 3.1.1 has no negative PUBACK: acknowledge and drop is allowed [MQTT-3.3.5-2].
        const refusedV5 = version === 5 && code !== undefined && code >= 0x80
        const refused = raw.closed || refusedV5 || (version === 4 && puback !== undefined)
        assert.ok(refused || (await raw.waitClosed()), `not refused; sent ${seen(raw)}`)
        assert.ok(Date.now() - started < 2000, 'took more than 2 s')
        assert.deepEqual((await delivered).length, 0)
      } finally {
        raw.destroy()
        await watcher.endAsync()
      }
      await assertServes()
    })
  }

  it('a huge declared length before CONNECT is refused from the header alone', async () => {
    const raw = await RawSocket.open(tb.port, 5)
    try {
      // CONNECT declaring 268,435,455 bytes; no body follows.
      raw.send(bytes(0x10, 0xff, 0xff, 0xff, 0x7f))
      assert.ok(await raw.waitClosed(1500), 'the broker waited for the body')
      assert.deepEqual(raw.received, [])
    } finally {
      raw.destroy()
    }
    await assertServes()
  })

  it('bytes streamed after a huge declared length are not buffered', async () => {
    const before = process.memoryUsage().arrayBuffers
    const raw = await RawSocket.open(tb.port, 5)
    const chunk = Buffer.alloc(64 * 1024, 0x41)
    try {
      raw.send(bytes(0x10, 0xff, 0xff, 0xff, 0x7f))
      // Up to 32 MiB, stopping as soon as the broker hangs up.
      for (let i = 0; i < 512 && !raw.closed; i++) await raw.sendAll(chunk)
      assert.ok(await raw.waitClosed(), 'the connection stayed open')
    } finally {
      raw.destroy()
    }
    const grown = process.memoryUsage().arrayBuffers - before
    assert.ok(grown < 8 * 1024 * 1024, `array buffers grew by ${grown} bytes`)
    await assertServes()
  })
})

/** Remove the `props()` byte (a single 0x00 after the Packet Identifier) for 3.1.1. */
function dropEmptyProperties(raw5: Buffer): Buffer {
  const type = raw5[0]! >> 4
  if (type !== 8 && type !== 10) return raw5
  const body = raw5.subarray(2)
  return packet(raw5[0]!, body.subarray(0, 2), body.subarray(3))
}
