import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type FrameProblem, Framer } from '../../src/protocol/framer.js'

function collect(max: number): {
  framer: Framer
  packets: Buffer[]
  problems: Array<[FrameProblem, number]>
} {
  const packets: Buffer[] = []
  const problems: Array<[FrameProblem, number]> = []
  const framer = new Framer(max, {
    onPacket: (p) => packets.push(Buffer.from(p)),
    onProblem: (problem, size) => problems.push([problem, size]),
  })
  return { framer, packets, problems }
}

describe('framer', () => {
  it('splits several packets delivered in one chunk', () => {
    const { framer, packets } = collect(1024)
    framer.push(Buffer.from([0xc0, 0x00, 0x40, 0x02, 0x00, 0x01, 0xe0, 0x00]))
    assert.deepEqual(
      packets.map((p) => p.toString('hex')),
      ['c000', '40020001', 'e000'],
    )
  })

  it('joins a packet split across chunks, even inside the length bytes', () => {
    const { framer, packets } = collect(1024)
    const body = Buffer.alloc(200, 1)
    const whole = Buffer.concat([Buffer.from([0x30, 0xc8, 0x01]), body])
    framer.push(whole.subarray(0, 2))
    framer.push(whole.subarray(2, 50))
    assert.equal(packets.length, 0)
    framer.push(whole.subarray(50))
    assert.equal(packets.length, 1)
    assert.deepEqual(packets[0], whole)
  })

  it('refuses a declared size above the limit before buffering the body [MQTT-3.1.2-24]', () => {
    const { framer, packets, problems } = collect(1024)
    // 0x10 then Remaining Length 268,435,455 (the largest), with no body sent
    framer.push(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]))
    assert.deepEqual(problems, [['too-large', 268_435_460]])
    assert.equal(packets.length, 0)
    assert.equal(framer.bufferedBytes, 0)
  })

  it('refuses a Remaining Length of more than four bytes [MQTT-1.5.5-1]', () => {
    const { framer, problems } = collect(1 << 30)
    framer.push(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))
    assert.deepEqual(problems, [['malformed-length', 0]])
  })

  it('delivers nothing after stop()', () => {
    const { framer, packets } = collect(1024)
    framer.stop()
    framer.push(Buffer.from([0xc0, 0x00]))
    assert.equal(packets.length, 0)
  })
})
