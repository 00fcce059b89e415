import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { nextMessages, startBroker, type TestBroker } from '../helpers/broker.js'

for (const protocolVersion of [4, 5] as const) {
  describe(`publish and subscribe, MQTT ${protocolVersion === 4 ? '3.1.1' : '5.0'}`, () => {
    let tb: TestBroker
    before(async () => {
      tb = await startBroker()
    })
    after(() => tb.close())

    for (const qos of [0, 1, 2] as const) {
      it(`delivers a QoS ${qos} message to a matching wildcard subscriber`, async () => {
        const sub = await tb.connect({
          protocolVersion,
          clientId: `sub-q${qos}-v${protocolVersion}`,
        })
        const pub = await tb.connect({
          protocolVersion,
          clientId: `pub-q${qos}-v${protocolVersion}`,
        })
        await sub.subscribeAsync(`ward/+/hr/q${qos}`, { qos })
        const got = nextMessages(sub, 3)
        for (let i = 0; i < 3; i++) await pub.publishAsync(`ward/${i}/hr/q${qos}`, `m${i}`, { qos })
        const messages = await got
        assert.deepEqual(
          messages.map((m) => [m.topic, m.payload.toString(), m.packet.qos]),
          [0, 1, 2].map((i) => [`ward/${i}/hr/q${qos}`, `m${i}`, qos]),
        )
      })
    }

    it('delivers at the lower of the published and the granted QoS', async () => {
      const sub = await tb.connect({ protocolVersion })
      const pub = await tb.connect({ protocolVersion })
      await sub.subscribeAsync('qos/down', { qos: 1 })
      const got = nextMessages(sub, 1)
      await pub.publishAsync('qos/down', 'x', { qos: 2 })
      assert.equal((await got)[0]?.packet.qos, 1)
    })

    it('does not deliver to a subscriber whose filter does not match', async () => {
      const sub = await tb.connect({ protocolVersion })
      const pub = await tb.connect({ protocolVersion })
      await sub.subscribeAsync(['a/+/c', 'a/b/c/#'])
      const got = nextMessages(sub, 2)
      await pub.publishAsync('a/x/y', 'no')
      await pub.publishAsync('a/b/c', 'yes-1')
      await pub.publishAsync('a/b/c/d/e', 'yes-2')
      const topics = (await got).map((m) => m.topic)
      assert.deepEqual(topics, ['a/b/c', 'a/b/c/d/e'])
    })
  })
}
