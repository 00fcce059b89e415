/**
 * `phimq demo`: a remote patient monitoring fleet against a running
 * development broker (`npm start`), every client with its own certificate
 * from the development CA (tenant `demo`):
 *
 *   devices (bp, spo2, glucose, weight) --FHIR Observation--> demo/home/<id>/obs/<kind>
 *   home gateway gw-001: strips the serial and note, averages oximeter
 *     samples, forwards --> demo/rpm/<id>/vitals/<kind>
 *   clinical app clinical-1 + clinical-2 <-- $share/clinical/demo/rpm/+/vitals/+
 *   de-identification deid-1 <-- $share/deid/...; cohort means --> demo/deid/<metric>
 *   analytics analytics-1 <-- demo/deid/+ (and refused on vitals)
 *   demo-device, misbehaving: subscribes #, puts an MRN in a topic, retains
 *     PHI, publishes into another tenant and another device; lapsed-device
 *     connects with an expired certificate.
 *
 * It ends with a summary: delivered, refusals, and, read back from the audit
 * trail, refusals by rule, alerts raised and the trail verification.
 *
 *   phimq demo [--dir .phimq] [--devices 4] [--seconds 10] [--url mqtts://127.0.0.1:8883]
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type Command, InvalidArgumentError } from 'commander'
import type { MqttClient } from 'mqtt'
import { searchTrail } from '../audit/search.js'
import { verifyTrail } from '../audit/verify.js'
import { loadConfigFile } from '../config/load.js'
import { InitError } from '../errors.js'
import {
  CohortAggregator,
  DEVICE_KINDS,
  deviceObservation,
  fleetIds,
  kindOf,
  leakedFields,
  meanObservation,
  metricsOf,
  patientReference,
  stripForForward,
} from './demo-fleet.js'
import { type ClientFiles, type DemoIdentity, issueDemoIdentities } from './demo-identities.js'
import { CONFIG_FILE, DEFAULT_DATA_DIR, DEMO_DEVICE_ID, DEMO_TENANT } from './init.js'

/** The gateway forwards one mean per oximeter per window. */
const GATEWAY_WINDOW_MS = 2000
/** The de-identification service publishes cohort means this often. */
const DEID_WINDOW_MS = 3000
const SETTLE_MS = 5000

interface DemoOptions {
  dir: string
  devices: number
  seconds: number
  url?: string
}

/** Add `demo` to the `phimq` program. */
export function registerDemoCommands(program: Command): Command {
  return program
    .command('demo')
    .description('run a simulated remote-monitoring fleet against the running dev broker')
    .option('--dir <dir>', 'data directory of the running broker', DEFAULT_DATA_DIR)
    .option('--devices <n>', 'simulated devices (kinds cycle bp, spo2, glucose, weight)', count, 4)
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

/** MQTT.js is a dev dependency: loaded only when the demo runs (npm install brings it). */
async function connect(url: string, id: string, f: ClientFiles): Promise<MqttClient> {
  const { default: mqtt } = await import('mqtt')
  const client = mqtt.connect(url, {
    ...f,
    clientId: id,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  })
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      client.end(true)
      reject(err)
    }
    client.once('connect', () => resolve(client))
    client.once('error', fail)
    client.once('close', () => fail(new Error('connection closed before CONNACK')))
  })
}

/** What the client saw, short: `Not authorized`, `certificate expired`. */
function refusalText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  if (/certificate expired/i.test(text)) return 'TLS handshake refused: certificate expired'
  // TLS 1.3: the broker checks the client certificate after the client's
  // side of the handshake is done, so the client only sees the close.
  if (/closed before CONNACK/.test(text)) return 'closed by the broker before CONNACK'
  return text.replace(/^.*error: /i, '')
}

/** Resolves when `done()` holds or `ms` pass. */
async function settle(done: () => boolean, ms = SETTLE_MS): Promise<void> {
  const end = Date.now() + ms
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 100))
}

class Counters {
  devicePublished = 0
  byKind = new Map<string, number>()
  gatewayReceived = 0
  forwarded = 0
  stripped = 0
  averaged = 0
  clinicalReceived = new Map<string, number>()
  leaks = 0
  deidReceived = 0
  deidPublished = 0
  analyticsReceived = 0

  get clinicalTotal(): number {
    return [...this.clinicalReceived.values()].reduce((a, b) => a + b, 0)
  }
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
  const startedAt = Date.now()
  const ids = fleetIds(opts.devices)
  const who = await issueDemoIdentities(loaded.dataDir, ids)
  const files = (id: string): ClientFiles => (who.get(id) as DemoIdentity).files
  const c = new Counters()
  const refusals: Array<[string, string]> = []

  // 1. Consumers first, so nothing published is missed.
  let clinical: MqttClient[]
  try {
    clinical = [
      await connect(url, 'clinical-1', files('clinical-1')),
      await connect(url, 'clinical-2', files('clinical-2')),
    ]
  } catch (err) {
    throw new InitError(
      `cannot reach the broker at ${url} (${refusalText(err)}): is npm start running?`,
    )
  }
  for (const [i, app] of clinical.entries()) {
    const name = `clinical-${i + 1}`
    c.clinicalReceived.set(name, 0)
    app.on('message', (_topic, payload) => {
      c.clinicalReceived.set(name, (c.clinicalReceived.get(name) ?? 0) + 1)
      if (leakedFields(JSON.parse(payload.toString())).length > 0) c.leaks++
    })
    await app.subscribeAsync(`$share/clinical/${DEMO_TENANT}/rpm/+/vitals/+`, { qos: 1 })
  }

  const cohort = new CohortAggregator()
  const deid = await connect(url, 'deid-1', files('deid-1'))
  deid.on('message', (topic, payload) => {
    c.deidReceived++
    const kind = kindOf(topic.split('/')[2] ?? '')
    for (const [metric, value, unit] of metricsOf(JSON.parse(payload.toString()), kind)) {
      cohort.add(metric, value, unit)
    }
  })
  await deid.subscribeAsync(`$share/deid/${DEMO_TENANT}/rpm/+/vitals/+`, { qos: 1 })
  // Resolves once every mean is acknowledged (or refused), so the wind-down
  // can wait for the last window before it counts.
  const publishDeid = async (): Promise<void> => {
    const sends = cohort.take(`${DEMO_TENANT}-all`).map(({ metric, payload }) =>
      deid.publishAsync(`${DEMO_TENANT}/deid/${metric}`, JSON.stringify(payload), { qos: 1 }).then(
        () => {
          c.deidPublished++
        },
        () => undefined,
      ),
    )
    await Promise.all(sends)
  }

  const analytics = await connect(url, 'analytics-1', files('analytics-1'))
  analytics.on('message', () => c.analyticsReceived++)
  await analytics.subscribeAsync(`${DEMO_TENANT}/deid/+`, { qos: 1 })
  try {
    await analytics.subscribeAsync(`${DEMO_TENANT}/rpm/+/vitals/+`, { qos: 1 })
    refusals.push(['analytics-1 subscribes to PHI vitals', 'NOT refused'])
  } catch (err) {
    refusals.push(['analytics-1 subscribes to PHI vitals', refusalText(err)])
  }

  // 2. The home gateway: strip, aggregate, forward.
  const gateway = await connect(url, 'gw-001', files('gw-001'))
  const samples = new Map<string, Array<Record<string, unknown>>>()
  const forward = (device: string, obs: Record<string, unknown>): void => {
    const topic = `${DEMO_TENANT}/rpm/${device}/vitals/${kindOf(device).kind}`
    gateway.publishAsync(topic, JSON.stringify(obs), { qos: 1 }).then(
      () => c.forwarded++,
      () => undefined,
    )
  }
  const flushSamples = (): void => {
    for (const [device, list] of samples) {
      if (list.length === 0) continue
      c.averaged += list.length
      forward(device, meanObservation(list))
      samples.set(device, [])
    }
  }
  gateway.on('message', (topic, payload) => {
    c.gatewayReceived++
    const device = topic.split('/')[2] ?? ''
    const { obs, stripped } = stripForForward(JSON.parse(payload.toString()))
    c.stripped += stripped
    if (kindOf(device).aggregate) samples.set(device, [...(samples.get(device) ?? []), obs])
    else forward(device, obs)
  })
  await gateway.subscribeAsync(`${DEMO_TENANT}/home/+/obs/+`, { qos: 1 })

  // 3. The devices: one reading at once, then at their kind's interval.
  const devices = await Promise.all(ids.map((id) => connect(url, id, files(id))))
  const timers: NodeJS.Timeout[] = [
    setInterval(flushSamples, GATEWAY_WINDOW_MS),
    setInterval(() => void publishDeid(), DEID_WINDOW_MS),
  ]
  devices.forEach((client, i) => {
    const id = ids[i] as string
    const kind = kindOf(id)
    const subject = patientReference(DEMO_TENANT, i)
    const serial = `SN-SYNTH-${String(i + 1).padStart(4, '0')}`
    const publish = (): void => {
      const obs = JSON.stringify(deviceObservation(kind, subject, serial))
      client.publishAsync(`${DEMO_TENANT}/home/${id}/obs/${kind.kind}`, obs, { qos: 1 }).then(
        () => {
          c.devicePublished++
          c.byKind.set(kind.kind, (c.byKind.get(kind.kind) ?? 0) + 1)
        },
        () => undefined,
      )
    }
    publish()
    timers.push(setInterval(publish, kind.everyMs))
  })

  // 4. What the policy forbids.
  await misbehave(url, who, ids, refusals)

  const end = startedAt + opts.seconds * 1000
  const progress = (left: number): void => {
    const refused = refusals.filter(([, r]) => r !== 'NOT refused').length
    process.stdout.write(
      `\rdemo ${left}s left | devices ${c.devicePublished} > gateway ${c.gatewayReceived}` +
        ` > clinical ${c.clinicalTotal}, deid ${c.deidReceived} > analytics ${c.analyticsReceived}` +
        ` | refused ${refused}   `,
    )
  }
  while (Date.now() < end) {
    progress(Math.ceil((end - Date.now()) / 1000))
    await new Promise((r) => setTimeout(r, 250))
  }

  // 5. Wind down in data-path order so every count can settle.
  for (const t of timers) clearInterval(t)
  await settle(() => c.gatewayReceived >= c.devicePublished)
  flushSamples()
  await settle(() => c.clinicalTotal >= c.forwarded && c.deidReceived >= c.forwarded)
  await publishDeid()
  await settle(() => c.analyticsReceived >= c.deidPublished)
  progress(0)
  process.stdout.write('\n')
  await Promise.all(
    [...devices, gateway, ...clinical, deid, analytics].map((m) => m.endAsync().catch(() => {})),
  )
  // The trail writes in batches (every 200 ms by default).
  await new Promise((r) => setTimeout(r, 1000))

  const ok = printSummary({ c, refusals, ids, dataDir: loaded.dataDir, dir: opts.dir, startedAt })
  if (!ok) process.exitCode = 1
}

/** The misbehaving device, and a device whose certificate has expired. */
async function misbehave(
  url: string,
  who: Map<string, DemoIdentity>,
  ids: string[],
  refusals: Array<[string, string]>,
): Promise<void> {
  const bad = await connect(url, DEMO_DEVICE_ID, (who.get(DEMO_DEVICE_ID) as DemoIdentity).files)
  const vitals = (device: string, tenant = DEMO_TENANT): string =>
    `${tenant}/rpm/${device}/vitals/hr`
  const reading = '{"hr":71,"unit":"bpm"}'
  const tries: Array<[string, () => Promise<unknown>]> = [
    [
      'subscribe #',
      async () => {
        const granted = await bad.subscribeAsync('#', { qos: 0 })
        if ((granted[0]?.qos ?? 0) >= 128) throw new Error('refused in SUBACK')
      },
    ],
    // A synthetic medical record number where a device id belongs.
    ['PHI in a topic', () => bad.publishAsync(vitals('mrn-00012345'), reading, { qos: 1 })],
    [
      'retained PHI',
      () => bad.publishAsync(vitals(DEMO_DEVICE_ID), reading, { qos: 1, retain: true }),
    ],
    [
      'cross-tenant publish',
      () => bad.publishAsync(vitals(DEMO_DEVICE_ID, 'other'), reading, { qos: 1 }),
    ],
    [
      'publish to another device',
      () => bad.publishAsync(vitals(ids[0] ?? 'bp-001'), reading, { qos: 1 }),
    ],
  ]
  for (const [what, attempt] of tries) {
    try {
      await attempt()
      refusals.push([`${DEMO_DEVICE_ID} ${what}`, 'NOT refused'])
    } catch (err) {
      refusals.push([`${DEMO_DEVICE_ID} ${what}`, refusalText(err)])
    }
  }
  await bad.endAsync(true).catch(() => undefined)

  const lapsed = who.get('lapsed-device') as DemoIdentity
  try {
    const client = await Promise.race([
      connect(url, 'lapsed-device', lapsed.files),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('no answer in 10 s')), 10_000),
      ),
    ])
    await client.endAsync(true)
    refusals.push(['lapsed-device connects with an expired certificate', 'NOT refused'])
  } catch (err) {
    refusals.push(['lapsed-device connects with an expired certificate', refusalText(err)])
  }
}

interface SummaryInput {
  c: Counters
  refusals: Array<[string, string]>
  ids: string[]
  dataDir: string
  dir: string
  startedAt: number
}

/** Print the summary; false when something the demo shows did not hold. */
function printSummary({ c, refusals, ids, dataDir, dir, startedAt }: SummaryInput): boolean {
  const kinds = DEVICE_KINDS.filter((k) => c.byKind.has(k.kind))
    .map((k) => `${k.label} ${c.byKind.get(k.kind)}`)
    .join(', ')
  const members = [...c.clinicalReceived].map(([n, v]) => `${n} ${v}`).join(', ')
  const delivered = c.gatewayReceived + c.clinicalTotal + c.deidReceived + c.analyticsReceived
  // Each forwarded message goes to both groups, clinical and deid.
  const expected = c.devicePublished + 2 * c.forwarded + c.deidPublished
  console.log(`${ids.length} devices published ${c.devicePublished} FHIR Observations (${kinds})`)
  console.log(
    `gateway gw-001 received ${c.gatewayReceived}, forwarded ${c.forwarded}` +
      ` (${c.averaged} oximeter samples averaged), stripped ${c.stripped} fields (serial, note)`,
  )
  console.log(
    `clinical app received ${c.clinicalTotal} of ${c.forwarded} via $share/clinical (${members});` +
      ` serials or notes seen: ${c.leaks}`,
  )
  console.log(
    `analytics-1 received ${c.analyticsReceived} of ${c.deidPublished} de-identified cohort means`,
  )
  console.log(`delivered ${delivered} of ${expected} expected deliveries`)

  console.log('refused, as the clients saw it:')
  for (const [what, result] of refusals) console.log(`  ${what}: ${result}`)

  const trail = join(dataDir, 'audit')
  const byRule = new Map<string, number>()
  const alerts = new Map<string, number>()
  for (const { record } of searchTrail(trail, {
    from: startedAt - 1000,
    types: ['publish.denied', 'subscribe.denied', 'connect.refused', 'tls.handshake', 'alert.*'],
  })) {
    if (record.type === 'alert.raised') {
      const key = `${record.rule} (${record.severity})`
      alerts.set(key, (alerts.get(key) ?? 0) + 1)
    } else if (record.type !== 'tls.handshake' || record.result === 'refused') {
      const key = `${record.type} ${String(record.rule ?? record.reason)}`
      byRule.set(key, (byRule.get(key) ?? 0) + 1)
    }
  }
  console.log('refusals in the audit trail, by rule:')
  for (const [rule, n] of byRule) console.log(`  ${rule}: ${n}`)
  // A rule fires once per subject per alerts.cooldownSeconds (60 s by default).
  const raised = [...alerts].map(([k, n]) => `${k} ${n}`).join(', ')
  console.log(
    `alerts raised: ${raised || 'none (a second run within a minute: each alert fires once per subject per alerts.cooldownSeconds)'}`,
  )
  // The demo runs against a running broker: the last segment is its open one.
  const report = verifyTrail({ dir: trail, live: true })
  console.log(
    `audit trail ${report.ok ? 'ok' : 'BROKEN'}: ${report.records} records, ${report.checkpoints} checkpoints` +
      ` (see them: npx phimq audit search --no-auditor --dir ${join(dir, 'audit')} --type publish.denied,subscribe.denied,alert.raised)`,
  )
  const flowed =
    c.gatewayReceived === c.devicePublished &&
    c.clinicalTotal === c.forwarded &&
    c.analyticsReceived === c.deidPublished &&
    c.leaks === 0
  return report.ok && flowed && !refusals.some(([, r]) => r === 'NOT refused')
}
