/**
 * Crash test: a real `phimq start` child process on the SQLite store is
 * killed with SIGKILL at random points while a publisher sends QoS 1 and
 * QoS 2 messages to an offline persistent session; it is restarted each
 * time and the publisher reconnects and resends what was not acknowledged.
 * In the end the subscriber drains its queue (the second test kills the
 * broker during the drain too) and the sequence numbers are compared: no
 * acknowledged message is lost, no QoS 2 message arrives twice
 * [MQTT-4.3.3-2, MQTT-4.3.3-3] (issue #5).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const MESSAGES = 600
const WINDOW = 16

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

class BrokerProcess {
  #child: ChildProcess | undefined
  readonly #config: string
  readonly #env: NodeJS.ProcessEnv

  constructor(config: string, masterKeyHex: string) {
    this.#config = config
    this.#env = { ...process.env, PHIMQ_CRASH_TEST_KEY: masterKeyHex }
  }

  /** Start `phimq start` and wait for its ready line. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'start', '-c', this.#config], {
      env: this.#env,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    this.#child = child
    await new Promise<void>((resolve, reject) => {
      let out = ''
      const onData = (chunk: Buffer): void => {
        out += chunk.toString()
        if (out.includes('phimq ready')) {
          child.stdout?.off('data', onData)
          child.stdout?.resume()
          resolve()
        }
      }
      child.stdout?.on('data', onData)
      child.once('exit', (code) => reject(new Error(`broker exited with ${code}: ${out}`)))
    })
  }

  /** SIGKILL: no shutdown code runs. */
  async kill(): Promise<void> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  async stop(): Promise<void> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
}

function connect(url: string, clientId: string, extra: mqtt.IClientOptions = {}) {
  return mqtt.connect(url, {
    clientId,
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
    connectTimeout: 3000,
    ...extra,
  })
}

function connected(client: MqttClient): Promise<void> {
  if (client.connected) return Promise.resolve()
  return new Promise((resolve) => client.once('connect', () => resolve()))
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function writeConfig(dir: string, port: number): Promise<string> {
  const config = join(dir, 'phimq.yaml')
  await writeFile(
    config,
    [
      'environment: dev',
      'dataDir: data',
      'listeners:',
      `  - { name: dev, type: tcp, host: 127.0.0.1, port: ${port} }`,
      'limits: { maxQueuedMessages: 100000, maxQueuedBytes: 100000000 }',
      'store: { type: sqlite, masterKeyEnv: PHIMQ_CRASH_TEST_KEY }',
      'audit: { sink: memory }',
      'metrics: { enabled: false }',
      'log: { level: error }',
      '',
    ].join('\n'),
  )
  return config
}

/** Where the broker was killed: acknowledgements seen, or (negative) deliveries seen. */
type KillPoints = number[]

/**
 * Publish MESSAGES sequence numbers, odd ones QoS 1 and even ones QoS 2,
 * killing and restarting the broker `times` times at random points.
 * Returns the sequence numbers acknowledged.
 */
async function publishUnderKills(
  pub: MqttClient,
  broker: BrokerProcess,
  times: number,
  killPoints: KillPoints,
): Promise<Set<number>> {
  const acked = new Set<number>()
  const failed = new Set<number>()
  let next = 1
  let inflight = 0
  const publishMore = (): void => {
    while (inflight < WINDOW && next <= MESSAGES) {
      const seq = next++
      const qos = seq % 2 === 0 ? 2 : 1
      inflight++
      pub.publish(`load/q${qos}`, String(seq), { qos }, (err) => {
        inflight--
        // PUBCOMP 0x92 answers a PUBREL resent after a restart: the
        // broker had released the id, so PUBREC had come and the
        // message was taken over. It counts as acknowledged.
        if (!err || (qos === 2 && (err as { code?: number }).code === 0x92)) acked.add(seq)
        else failed.add(seq)
        publishMore()
      })
    }
  }
  publishMore()

  for (let k = 0; k < times; k++) {
    const step = Math.floor(Math.random() * (MESSAGES / (times + 1)))
    const target = Math.min(MESSAGES - 1, acked.size + 20 + step)
    while (acked.size < target) await sleep(2)
    await sleep(Math.floor(Math.random() * 15))
    killPoints.push(acked.size)
    await broker.kill()
    await broker.start()
    await connected(pub)
  }

  const deadline = Date.now() + 30_000
  while (acked.size + failed.size < MESSAGES && Date.now() < deadline) await sleep(20)
  const where = `kills at ${killPoints.join(', ')}`
  assert.equal(failed.size, 0, `publishes that failed: ${[...failed]} (${where})`)
  assert.equal(acked.size, MESSAGES, `acknowledged ${acked.size} (${where})`)
  return acked
}

/** Drain the subscriber's queue, killing the broker `times` times; count each sequence number. */
async function drainUnderKills(
  url: string,
  broker: BrokerProcess,
  times: number,
  killPoints: KillPoints,
  clients: MqttClient[],
): Promise<Map<number, number>> {
  const counts = new Map<number, number>()
  const drain = connect(url, 'crash-sub', { reconnectPeriod: 100 })
  clients.push(drain)
  drain.on('error', () => {})
  drain.on('message', (_topic, payload) => {
    const seq = Number(payload.toString())
    counts.set(seq, (counts.get(seq) ?? 0) + 1)
  })
  await connected(drain)

  for (let k = 0; k < times; k++) {
    const target = counts.size + 1 + Math.floor(Math.random() * (MESSAGES / 4))
    while (counts.size < Math.min(target, MESSAGES - 1)) await sleep(1)
    killPoints.push(-counts.size)
    await broker.kill()
    await broker.start()
    await connected(drain)
  }
  // Done when nothing more arrives for a while.
  let seen = -1
  while (seen !== counts.size) {
    seen = counts.size
    await sleep(700)
  }
  return counts
}

/** The whole run; `kills` says how often to kill the broker while publishing and while draining. */
async function crashScenario(kills: { publish: number; drain: number }): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'phimq-crash-'))
  const port = await freePort()
  const url = `mqtt://127.0.0.1:${port}`
  const broker = new BrokerProcess(await writeConfig(dir, port), randomBytes(32).toString('hex'))
  const clients: MqttClient[] = []
  const killPoints: KillPoints = []
  try {
    await broker.start()

    // 1. An offline persistent subscriber.
    const sub = connect(url, 'crash-sub', { reconnectPeriod: 0 })
    await connected(sub)
    await sub.subscribeAsync({ 'load/q1': { qos: 1 }, 'load/q2': { qos: 2 } })
    await sub.endAsync()

    // 2. A publisher that reconnects on its own and resends what is unacknowledged.
    const pub = connect(url, 'crash-pub', { reconnectPeriod: 100 })
    clients.push(pub)
    pub.on('error', () => {})
    await connected(pub)
    const acked = await publishUnderKills(pub, broker, kills.publish, killPoints)
    await pub.endAsync()

    // 3. The subscriber comes back and drains; compare sequence numbers.
    const counts = await drainUnderKills(url, broker, kills.drain, killPoints, clients)
    const where = `kills at ${killPoints.join(', ')} (acks; negative: deliveries)`
    const lost = [...acked].filter((seq) => !counts.has(seq))
    const twice = [...counts].filter(([seq, n]) => seq % 2 === 0 && n > 1).map(([seq]) => seq)
    assert.deepEqual(lost, [], `acknowledged but lost (${where})`)
    assert.deepEqual(twice, [], `QoS 2 delivered twice (${where})`)
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    await broker.stop()
    await broker.kill()
    await rm(dir, { recursive: true, force: true })
  }
}

describe('SQLite store under SIGKILL', () => {
  it('kills while QoS 1/2 messages flow to an offline session lose no acknowledged message and duplicate no QoS 2 message', async () => {
    await crashScenario({ publish: 3, drain: 0 })
  })

  it('kills while an offline session drains its queue duplicate no QoS 2 message [MQTT-4.3.3-2]', async () => {
    await crashScenario({ publish: 0, drain: 2 })
  })
})
