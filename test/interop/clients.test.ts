/**
 * Interop (issue #8; `npm run test:interop`): clients no one here wrote,
 * against a broker started the way a user starts it (`phimq start` in an
 * empty directory, so `.phimq` with the demo identities is made first):
 * Mosquitto's command-line clients (3.1.1 and 5.0, QoS 0/1/2, a refused
 * subscription), Paho Python from Debian (3.1.1 and 5.0), MQTT.js over wss
 * with a client certificate. Mutual TLS everywhere (C05, C09).
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { type StartedPhimq, startPhimq } from '../helpers/phimq-process.js'
import { makeTempDir } from '../helpers/tmp.js'

const HAVE_MOSQUITTO = spawnSync('mosquitto_sub', ['--help']).error === undefined
const HAVE_PAHO = spawnSync('/usr/bin/python3', ['-c', 'import paho.mqtt.client']).status === 0
const PAHO_SCRIPT = join(fileURLToPath(new URL('.', import.meta.url)), 'paho_exchange.py')

function run(
  cmd: string,
  args: string[],
  cwd: string,
  ms = 15_000,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString()
    })
    const timer = setTimeout(() => child.kill('SIGTERM'), ms)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('real clients against phimq start', () => {
  const tmp = makeTempDir('phimq-interop-')
  let broker: StartedPhimq
  let port = 0
  const tls = (who: 'demo-device' | 'demo-app'): string[] => [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '--cafile',
    '.phimq/clients/ca.crt',
    '--cert',
    `.phimq/clients/${who}.crt`,
    '--key',
    `.phimq/clients/${who}.key`,
    '-i',
    who,
  ]

  before(async () => {
    broker = await startPhimq(
      ['--mqtts-port', '0', '--wss-port', '0', '--metrics-port', '0'],
      tmp.dir,
    )
    port = broker.port('mqtts')
  })
  after(async () => {
    await broker?.stop()
    tmp.remove()
  })

  for (const version of ['mqttv311', 'mqttv5']) {
    for (const qos of ['0', '1', '2']) {
      it(`mosquitto ${version} QoS ${qos}: the device publishes, the app receives at QoS ${qos}`, {
        skip: HAVE_MOSQUITTO ? false : 'mosquitto-clients not installed',
      }, async () => {
        const topic = `demo/rpm/demo-device/vitals/q${qos}`
        const sub = run(
          'mosquitto_sub',
          [
            ...tls('demo-app'),
            '-V',
            version,
            '-q',
            qos,
            '-t',
            'demo/rpm/+/vitals/+',
            '-C',
            '1',
            '-v',
            '-F',
            '%q %t %p',
          ],
          tmp.dir,
        )
        await pause(1500)
        const pub = await run(
          'mosquitto_pub',
          [
            ...tls('demo-device'),
            '-V',
            version,
            '-q',
            qos,
            '-t',
            topic,
            '-m',
            `{"hr":${60 + Number(qos)}}`,
          ],
          tmp.dir,
        )
        assert.equal(pub.code, 0, `mosquitto_pub: ${pub.out}`)
        const got = await sub
        assert.equal(got.code, 0, `mosquitto_sub: ${got.out}`)
        assert.equal(got.out.trim(), `${qos} ${topic} {"hr":${60 + Number(qos)}}`)
      })
    }
    it(`mosquitto ${version}: a subscription to # is refused (C16)`, {
      skip: HAVE_MOSQUITTO ? false : 'mosquitto-clients not installed',
    }, async () => {
      const sub = await run(
        'mosquitto_sub',
        [...tls('demo-app'), '-V', version, '-t', '#', '-W', '5'],
        tmp.dir,
      )
      assert.match(sub.out, /All subscription requests were denied/)
    })
  }

  it('mosquitto: the device may not publish into another device subtree (0x87 on 5.0)', {
    skip: HAVE_MOSQUITTO ? false : 'mosquitto-clients not installed',
  }, async () => {
    const pub = await run(
      'mosquitto_pub',
      [
        ...tls('demo-device'),
        '-V',
        'mqttv5',
        '-q',
        '1',
        '-t',
        'demo/rpm/other-device/vitals/hr',
        '-m',
        '{"hr":1}',
      ],
      tmp.dir,
    )
    // mosquitto_pub exits 0 but reports the PUBACK reason code 0x87.
    assert.match(pub.out, /Publish 1 failed: Not authorized/)
  })

  for (const version of ['311', '5']) {
    it(`Paho Python MQTT ${version === '5' ? '5.0' : '3.1.1'} exchanges a message over mqtts with certificates`, {
      skip: HAVE_PAHO ? false : 'python3-paho-mqtt not installed (apt python3-paho-mqtt)',
    }, async () => {
      const topic = `demo/rpm/demo-device/vitals/paho${version}`
      const r = await run(
        '/usr/bin/python3',
        [
          PAHO_SCRIPT,
          '127.0.0.1',
          String(port),
          join(tmp.dir, '.phimq'),
          version,
          topic,
          '{"spo2":97}',
        ],
        tmp.dir,
        30_000,
      )
      assert.equal(r.code, 0, r.out)
      assert.match(r.out, /granted \[1\]/)
      assert.match(r.out, new RegExp(`received ${topic} \\{"spo2":97\\}`))
    })
  }

  it('MQTT.js 5.0 over wss with a client certificate receives what a device publishes', async () => {
    const files = (id: string) => ({
      ca: readFileSync(join(tmp.dir, '.phimq', 'clients', 'ca.crt')),
      cert: readFileSync(join(tmp.dir, '.phimq', 'clients', `${id}.crt`)),
      key: readFileSync(join(tmp.dir, '.phimq', 'clients', `${id}.key`)),
    })
    const wssUrl = broker.urls.find((u) => u.startsWith('wss://'))
    assert.ok(wssUrl, 'a wss listener')
    const app = await mqtt.connectAsync(wssUrl, {
      ...files('demo-app'),
      clientId: 'demo-app',
      protocolVersion: 5,
      reconnectPeriod: 0,
    })
    const device = await mqtt.connectAsync(wssUrl, {
      ...files('demo-device'),
      clientId: 'demo-device',
      protocolVersion: 5,
      reconnectPeriod: 0,
    })
    try {
      const received = new Promise<{ topic: string; payload: string }>((resolve) =>
        app.on('message', (topic, payload) => resolve({ topic, payload: payload.toString() })),
      )
      const granted = await app.subscribeAsync('demo/rpm/+/vitals/+', { qos: 1 })
      assert.equal(granted[0]?.qos, 1)
      await device.publishAsync('demo/rpm/demo-device/vitals/wss', '{"sys":120,"dia":80}', {
        qos: 1,
      })
      const got = await received
      assert.equal(got.topic, 'demo/rpm/demo-device/vitals/wss')
      assert.deepEqual(JSON.parse(got.payload), { sys: 120, dia: 80 })
    } finally {
      await device.endAsync()
      await app.endAsync()
    }
  })
})
