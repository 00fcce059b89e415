/**
 * Interop (issue #8; `npm run test:interop`): clients no one here wrote,
 * against a broker started the way a user starts it (`phimq start` in an
 * empty directory, so `.phimq` with the demo identities is made first):
 * Mosquitto's command-line clients (3.1.1 and 5.0, QoS 0/1/2, a refused
 * subscription, retained where the policy allows it and refused where it
 * does not), Paho Python from Debian (3.1.1 and 5.0, a will message, a
 * persistent session resumed after a broker restart), MQTT.js over wss with
 * a client certificate. Mutual TLS everywhere (C05, C09).
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
const HERE = fileURLToPath(new URL('.', import.meta.url))
const PAHO_SCRIPT = join(HERE, 'paho_exchange.py')
const PAHO_SESSION = join(HERE, 'paho_session.py')
const BROKER_ARGS = ['--mqtts-port', '0', '--wss-port', '0', '--metrics-port', '0']

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
    broker = await startPhimq(BROKER_ARGS, tmp.dir)
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

  for (const version of ['mqttv311', 'mqttv5']) {
    it(`mosquitto ${version}: a retained device status (not PHI) reaches a later subscriber with the retain flag`, {
      skip: HAVE_MOSQUITTO ? false : 'mosquitto-clients not installed',
    }, async () => {
      const topic = 'demo/rpm/demo-device/status'
      const status = `{"state":"online","battery":${version === 'mqttv5' ? 85 : 84}}`
      const pub = await run(
        'mosquitto_pub',
        [...tls('demo-device'), '-V', version, '-q', '1', '-r', '-t', topic, '-m', status],
        tmp.dir,
      )
      assert.equal(pub.code, 0, `mosquitto_pub -r: ${pub.out}`)
      try {
        const sub = await run(
          'mosquitto_sub',
          [
            ...tls('demo-app'),
            '-V',
            version,
            '-t',
            'demo/rpm/+/status',
            '-C',
            '1',
            '-W',
            '10',
            '-F',
            '%r %t %p',
          ],
          tmp.dir,
        )
        assert.equal(sub.code, 0, `mosquitto_sub: ${sub.out}`)
        assert.equal(sub.out.trim(), `1 ${topic} ${status}`)
      } finally {
        // An empty retained message clears it (always allowed to its publisher).
        await run(
          'mosquitto_pub',
          [...tls('demo-device'), '-V', version, '-q', '1', '-r', '-n', '-t', topic],
          tmp.dir,
        )
      }
    })
  }

  it('mosquitto 5.0: a retained message on a PHI vitals topic is refused with 0x87 (C23)', {
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
        '-r',
        '-t',
        'demo/rpm/demo-device/vitals/hr',
        '-m',
        '{"hr":70}',
      ],
      tmp.dir,
    )
    assert.match(pub.out, /Publish 1 failed: Not authorized/)
  })

  it('Paho Python 5.0: a device that dies without DISCONNECT has its will delivered to a subscriber', {
    skip:
      HAVE_PAHO && HAVE_MOSQUITTO ? false : 'python3-paho-mqtt or mosquitto-clients not installed',
  }, async () => {
    const sub = run(
      'mosquitto_sub',
      [...tls('demo-app'), '-V', 'mqttv5', '-q', '1', '-t', 'demo/rpm/+/status', '-R', '-C', '1'],
      tmp.dir,
    )
    sub.then(undefined, () => undefined)
    await pause(1500)
    const will = await run(
      '/usr/bin/python3',
      [
        PAHO_SESSION,
        '127.0.0.1',
        String(port),
        join(tmp.dir, '.phimq'),
        'will',
        'demo/rpm/demo-device/status',
        '{"state":"offline"}',
      ],
      tmp.dir,
    )
    assert.match(will.out, /^connected$/m, will.out)
    assert.equal(will.code, null, 'the Paho process was killed (no DISCONNECT)')
    const got = await sub
    assert.equal(got.code, 0, `mosquitto_sub: ${got.out}`)
    assert.equal(got.out.trim(), '{"state":"offline"}')
  })

  // Last: it restarts the broker.
  it('Paho Python 5.0: a persistent session gets the messages queued while it was away, after a broker restart (SQLite store)', {
    skip:
      HAVE_PAHO && HAVE_MOSQUITTO ? false : 'python3-paho-mqtt or mosquitto-clients not installed',
  }, async () => {
    const topic = 'demo/rpm/demo-device/vitals/queued'
    const paho = (...args: string[]) =>
      run(
        '/usr/bin/python3',
        [PAHO_SESSION, '127.0.0.1', String(port), join(tmp.dir, '.phimq'), ...args],
        tmp.dir,
        30_000,
      )
    const sub = await paho('subscribe', topic)
    assert.equal(sub.code, 0, sub.out)
    assert.match(sub.out, /subscribed/)

    for (const hr of [81, 82, 83]) {
      const pub = await run(
        'mosquitto_pub',
        [...tls('demo-device'), '-V', 'mqttv5', '-q', '1', '-t', topic, '-m', `{"hr":${hr}}`],
        tmp.dir,
      )
      assert.equal(pub.code, 0, pub.out)
    }

    assert.equal(await broker.stop(), 0, 'SIGTERM stops the broker cleanly')
    broker = await startPhimq(BROKER_ARGS, tmp.dir)
    port = broker.port('mqtts')

    const resumed = await paho('resume', '3')
    assert.equal(resumed.code, 0, resumed.out)
    assert.match(resumed.out, /connect 0 session present 1/)
    const got = [...resumed.out.matchAll(/^received (\S+) (.*)$/gm)].map((m) => `${m[1]} ${m[2]}`)
    assert.deepEqual(
      got,
      [81, 82, 83].map((hr) => `${topic} {"hr":${hr}}`),
    )
  })
})
