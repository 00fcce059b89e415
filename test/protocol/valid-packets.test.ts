import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { checkInboundProperties } from '../../src/protocol/properties.js'
import { checkPacketStrings } from '../../src/protocol/utf8-fields.js'
import { mustParse } from './parse.js'

// Synthetic data only: no real names, no real health data.
const users = { site: 'lab-7', 'trace-id': ['a1', 'b2'], '🙂': 'ok' }

const V5_PACKETS: ReadonlyArray<[string, Packet]> = [
  [
    'connect with will, user name, password and every client property',
    {
      cmd: 'connect',
      protocolVersion: 5,
      clientId: 'device-0042',
      clean: true,
      keepalive: 30,
      username: 'svc-user',
      password: Buffer.from([0, 1, 0xff]),
      properties: {
        sessionExpiryInterval: 3600,
        receiveMaximum: 20,
        maximumPacketSize: 65_536,
        topicAliasMaximum: 10,
        requestResponseInformation: true,
        requestProblemInformation: false,
        userProperties: users,
        authenticationMethod: 'SCRAM-SHA-256',
        authenticationData: Buffer.from('client-first'),
      },
      will: {
        topic: 'status/device-0042',
        payload: Buffer.from('offline'),
        qos: 1,
        retain: true,
        properties: {
          willDelayInterval: 5,
          payloadFormatIndicator: true,
          messageExpiryInterval: 60,
          contentType: 'text/plain',
          responseTopic: 'reply/device-0042',
          correlationData: Buffer.from([9, 9]),
          userProperties: users,
        },
      },
    },
  ],
  ['connect with an empty client id', { cmd: 'connect', protocolVersion: 5, clientId: '' }],
  [
    'publish QoS 0 without properties',
    { cmd: 'publish', topic: 'a/b', payload: 'x', qos: 0, dup: false, retain: false },
  ],
  [
    'publish QoS 1 with every client property',
    {
      cmd: 'publish',
      topic: 'ward/ß/温度',
      payload: Buffer.from('{"v":1}'),
      qos: 1,
      messageId: 7,
      dup: true,
      retain: true,
      properties: {
        payloadFormatIndicator: true,
        messageExpiryInterval: 120,
        topicAlias: 3,
        responseTopic: 'reply/x',
        correlationData: Buffer.from('c'),
        userProperties: users,
        contentType: 'application/json',
      },
    },
  ],
  [
    'publish QoS 2 with an alias and empty topic',
    {
      cmd: 'publish',
      topic: '',
      payload: '',
      qos: 2,
      messageId: 65_535,
      dup: false,
      retain: false,
      properties: { topicAlias: 3 },
    },
  ],
  ['puback', { cmd: 'puback', messageId: 1, reasonCode: 0 }],
  [
    'puback with reason string and user properties',
    {
      cmd: 'puback',
      messageId: 2,
      reasonCode: 0x10,
      properties: { reasonString: 'no subscribers', userProperties: users },
    },
  ],
  ['pubrec', { cmd: 'pubrec', messageId: 3, reasonCode: 0x80, properties: { reasonString: 'r' } }],
  ['pubrel', { cmd: 'pubrel', messageId: 3, reasonCode: 0 }],
  [
    'pubcomp',
    { cmd: 'pubcomp', messageId: 3, reasonCode: 0x92, properties: { userProperties: users } },
  ],
  [
    'subscribe with subscription identifier and options',
    {
      cmd: 'subscribe',
      messageId: 5,
      subscriptions: [
        { topic: 'a/+/c', qos: 1, nl: true, rap: true, rh: 2 },
        { topic: '$share/g/#', qos: 2, nl: false, rap: false, rh: 0 },
      ],
      properties: { subscriptionIdentifier: 268_435_455, userProperties: users },
    },
  ],
  [
    'unsubscribe with user properties',
    {
      cmd: 'unsubscribe',
      messageId: 6,
      unsubscriptions: ['a/+/c', '#'],
      properties: { userProperties: users },
    },
  ],
  ['pingreq', { cmd: 'pingreq' }],
  ['disconnect', { cmd: 'disconnect', reasonCode: 0 }],
  [
    'disconnect with properties',
    {
      cmd: 'disconnect',
      reasonCode: 0x04,
      properties: { sessionExpiryInterval: 0, reasonString: 'bye', userProperties: users },
    },
  ],
  [
    'auth',
    {
      cmd: 'auth',
      reasonCode: 0x18,
      properties: {
        authenticationMethod: 'SCRAM-SHA-256',
        authenticationData: Buffer.from('client-final'),
        reasonString: 'continue',
        userProperties: users,
      },
    },
  ],
]

const V4_PACKETS: ReadonlyArray<[string, Packet]> = [
  [
    'connect with will, user name and password',
    {
      cmd: 'connect',
      protocolVersion: 4,
      clientId: 'device-0042',
      clean: false,
      keepalive: 0,
      username: 'svc-user',
      password: Buffer.from('pw'),
      will: { topic: 'status/x', payload: Buffer.from('gone'), qos: 2, retain: false },
    },
  ],
  [
    'publish QoS 0',
    { cmd: 'publish', topic: 'a/ü/b', payload: 'x', qos: 0, dup: false, retain: true },
  ],
  [
    'publish QoS 2',
    { cmd: 'publish', topic: 'a', payload: '', qos: 2, messageId: 9, dup: false, retain: false },
  ],
  ['puback', { cmd: 'puback', messageId: 1 }],
  ['pubrec', { cmd: 'pubrec', messageId: 1 }],
  ['pubrel', { cmd: 'pubrel', messageId: 1 }],
  ['pubcomp', { cmd: 'pubcomp', messageId: 1 }],
  [
    'subscribe',
    {
      cmd: 'subscribe',
      messageId: 2,
      subscriptions: [
        { topic: 'a/#', qos: 0 },
        { topic: '+/b', qos: 2 },
      ],
    },
  ],
  ['unsubscribe', { cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['a/#'] }],
  ['pingreq', { cmd: 'pingreq' }],
  ['disconnect', { cmd: 'disconnect' }],
]

function roundTrip(name: string, packet: Packet, version: 4 | 5): void {
  const raw = mqttPacket.generate(packet, { protocolVersion: version })
  assert.equal(checkPacketStrings(raw, version), undefined, `${name}: raw`)
  assert.equal(checkInboundProperties(mustParse(raw, version), version), undefined, name)
}

describe('valid packets produced by mqtt-packet pass both checks', () => {
  for (const [name, packet] of V5_PACKETS) {
    it(`5.0 ${name}`, () => roundTrip(name, packet, 5))
  }
  for (const [name, packet] of V4_PACKETS) {
    it(`3.1.1 ${name}`, () => roundTrip(name, packet, 4))
  }
})
