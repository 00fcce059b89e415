/**
 * `phimq demo`: a small remote-monitoring fleet against a running
 * development broker (`npm start`). Simulated devices, each with its own
 * certificate from the development CA, publish synthetic vitals; the demo
 * app receives them; one misbehaving device tries what the policy forbids.
 * Ends with a summary: delivered, refusals by reason, audit-trail check.
 *
 *   phimq demo [--dir .phimq] [--devices 4] [--seconds 10] [--url mqtts://127.0.0.1:8883]
 *
 * TODO(#8): FHIR R4 Observation-shaped payloads, the home gateway, the shared
 * subscription, the analytics consumer and the expired certificate of the
 * issue are not built; payloads are flat JSON vitals the demo policy lists.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Command, InvalidArgumentError } from 'commander'
import type { MqttClient } from 'mqtt'
import { verifyTrail } from '../audit/verify.js'
import { loadConfigFile } from '../config/load.js'
import { InitError } from '../errors.js'
import { openCa } from '../pki/ca.js'
import {
  CONFIG_FILE,
  DEFAULT_DATA_DIR,
  DEMO_APP_ID,
  DEMO_DEVICE_ID,
  DEMO_TENANT,
  DEV_PASSPHRASE_FILE,
  demoClientPaths,
} from './init.js'

const KINDS = [
  {
    kind: 'bp',
    every: 1500,
    reading: () => ({ sys: rand(110, 140), dia: rand(70, 90), unit: 'mmHg' }),
  },
  {
    kind: 'spo2',
    every: 1000,
    reading: () => ({ spo2: rand(94, 99), hr: rand(60, 90), unit: '%' }),
  },
  { kind: 'glucose', every: 2000, reading: () => ({ glucose: rand(80, 140), unit: 'mg/dL' }) },
  { kind: 'weight', every: 3000, reading: () => ({ weight: rand(60, 90), unit: 'kg' }) },
] as const

function rand(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1))
}

interface DemoOptions {
  dir: string
  devices: number
  seconds: number
  url?: string
}

interface Files {
  ca: Buffer
  cert: Buffer
  key: Buffer
}

/** Add `demo` to the `phimq` program. */
export function registerDemoCommands(program: Command): Command {
  return program
    .command('demo')
    .description('run a simulated remote-monitoring fleet against the running dev broker')
    .option('--dir <dir>', 'data directory of the running broker', DEFAULT_DATA_DIR)
    .option('--devices <n>', 'simulated devices', count, 4)
    .option('--seconds <n>', 'how long the fleet publishes', count, 10)
    .option('--url <url>', 'mqtts URL (default: from the config)')
    .action(async (opts: DemoOptions) => {
      await runDemo(opts)
    })
}

function count(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0 || n > 1000) throw new InvalidArgumentError('1-1000')
  return n
}

async function fleetFiles(dir: string, ids: string[]): Promise<Map<string, Files>> {
  const out = join(dir, 'clients', 'fleet')
  const ca = readFileSync(demoClientPaths(dir).ca)
  const files = new Map<string, Files>()
  const missing = ids.filter((id) => !existsSync(join(out, `${id}.crt`)))
  if (missing.length > 0) {
    const passFile = join(dir, DEV_PASSPHRASE_FILE)
    if (!existsSync(passFile)) {
      throw new InitError(
        `${dir} is not a development directory (no ${DEV_PASSPHRASE_FILE}); phimq demo needs one: run npm start`,
      )
    }
    const authority = await openCa(join(dir, 'ca'), readFileSync(passFile, 'utf8').trim())
    await mkdir(out, { recursive: true, mode: 0o700 })
    for (const id of missing) {
      const issued = await authority.issueCertificate({ kind: 'device', tenant: DEMO_TENANT, id })
      await writeFile(join(out, `${id}.crt`), issued.chainPem)
      await writeFile(join(out, `${id}.key`), issued.keyPem, { mode: 0o600 })
    }
  }
  for (const id of ids) {
    files.set(id, {
      ca,
      cert: readFileSync(join(out, `${id}.crt`)),
      key: readFileSync(join(out, `${id}.key`)),
    })
  }
  return files
}

/** MQTT.js is a dev dependency: loaded only when the demo runs (npm install brings it). */
async function connect(url: string, id: string, f: Files): Promise<MqttClient> {
  const { default: mqtt } = await import('mqtt')
  return mqtt.connectAsync(url, {
    ...f,
    clientId: id,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  })
}

export async function runDemo(opts: DemoOptions): Promise<void> {
  const configPath = join(opts.dir, CONFIG_FILE)
  if (!existsSync(configPath)) {
    throw new InitError(
      `no ${configPath}: start the broker first with npm start (or phimq start --dir ${opts.dir})`,
    )
  }
  const loaded = loadConfigFile(configPath)
  const listener = loaded.config.listeners.find((l) => l.type === 'mqtts')
  const url = opts.url ?? (listener ? `mqtts://${listener.host}:${listener.port}` : undefined)
  if (url === undefined || url.endsWith(':0')) {
    throw new InitError(
      'cannot tell the broker address from the config (port 0): pass --url mqtts://HOST:PORT from the phimq ready line',
    )
  }
  const demo = demoClientPaths(loaded.dataDir)
  const ca = readFileSync(demo.ca)
  const ids = Array.from(
    { length: opts.devices },
    (_, i) => `${KINDS[i % KINDS.length]?.kind}-${String(i + 1).padStart(3, '0')}`,
  )
  const files = await fleetFiles(loaded.dataDir, ids)

  let app: MqttClient
  try {
    app = await connect(url, DEMO_APP_ID, {
      ca,
      cert: readFileSync(demo.app.cert),
      key: readFileSync(demo.app.key),
    })
  } catch (err) {
    throw new InitError(
      `cannot reach the broker at ${url} (${err instanceof Error ? err.message : 'error'}): is npm start running?`,
    )
  }
  let delivered = 0
  let published = 0
  app.on('message', () => {
    delivered++
  })
  await app.subscribeAsync(`${DEMO_TENANT}/rpm/+/vitals/+`, { qos: 1 })

  const devices = await Promise.all(ids.map((id) => connect(url, id, files.get(id) as Files)))
  const timers: NodeJS.Timeout[] = []
  devices.forEach((client, i) => {
    const kind = KINDS[i % KINDS.length] ?? KINDS[0]
    const id = ids[i] as string
    timers.push(
      setInterval(() => {
        const payload = JSON.stringify({ ...kind.reading(), ts: new Date().toISOString() })
        client
          .publishAsync(`${DEMO_TENANT}/rpm/${id}/vitals/${kind.kind}`, payload, { qos: 1 })
          .then(
            () => {
              published++
            },
            () => undefined,
          )
      }, kind.every),
    )
  })

  // The misbehaving device: what the policy forbids.
  const refusals = new Map<string, string>()
  const bad = await connect(url, DEMO_DEVICE_ID, {
    ca,
    cert: readFileSync(demo.device.cert),
    key: readFileSync(demo.device.key),
  })
  const tries: Array<[string, () => Promise<unknown>]> = [
    [
      'subscribe #',
      async () => {
        const granted = await bad.subscribeAsync('#', { qos: 0 })
        if ((granted[0]?.qos ?? 0) < 128) throw new Error('granted')
      },
    ],
    [
      'publish to another device',
      () => bad.publishAsync(`${DEMO_TENANT}/rpm/${ids[0]}/vitals/hr`, '{"hr":1}', { qos: 1 }),
    ],
    [
      'cross-tenant publish',
      () => bad.publishAsync(`other/rpm/${DEMO_DEVICE_ID}/vitals/hr`, '{"hr":1}', { qos: 1 }),
    ],
    [
      'retained PHI',
      () =>
        bad.publishAsync(`${DEMO_TENANT}/rpm/${DEMO_DEVICE_ID}/vitals/hr`, '{"hr":1}', {
          qos: 1,
          retain: true,
        }),
    ],
  ]
  for (const [what, attempt] of tries) {
    try {
      await attempt()
      refusals.set(what, 'NOT refused')
    } catch (err) {
      refusals.set(what, err instanceof Error ? err.message.replace(/^.*error: /i, '') : 'refused')
    }
  }
  await bad.endAsync(true).catch(() => undefined)

  const end = Date.now() + opts.seconds * 1000
  while (Date.now() < end) {
    const left = Math.ceil((end - Date.now()) / 1000)
    process.stdout.write(
      `\rdemo: ${devices.length} devices, ${published} published, ${delivered} delivered, ${left}s left   `,
    )
    await new Promise((r) => setTimeout(r, 250))
  }
  for (const t of timers) clearInterval(t)
  await new Promise((r) => setTimeout(r, 500))
  await Promise.all(devices.map((d) => d.endAsync()))
  await app.endAsync()
  process.stdout.write('\n')

  console.log(`delivered ${delivered} of ${published} published messages to ${DEMO_APP_ID}`)
  console.log('refusals by the misbehaving device (demo-device):')
  for (const [what, result] of refusals) console.log(`  ${what}: ${result}`)
  const report = verifyTrail({ dir: join(loaded.dataDir, 'audit') })
  console.log(
    `audit trail ${report.ok ? 'ok' : 'BROKEN'}: ${report.records} records, ${report.checkpoints} checkpoints` +
      ` (see them: phimq audit search --dir ${join(opts.dir, 'audit')} --type publish.denied,subscribe.denied)`,
  )
  if (!report.ok || [...refusals.values()].includes('NOT refused')) process.exitCode = 1
}
