/**
 * `phimq init`: one data directory with everything a broker needs to start
 * with mutual TLS, a policy, the encrypted store and the audit trail.
 *
 *   phimq init [--dir .phimq] [--prod] [--host H] [--mqtts-port N] [--wss-port N]
 *
 * Development layout (default), in `--dir`:
 *
 *   phimq.yaml            the config (commented; written last: its presence means "initialised")
 *   ca/                   one CA (root + intermediate) for devices, apps and the server
 *   ca-passphrase.dev     the CA passphrase, mode 0600: DEVELOPMENT ONLY
 *   tls/                  server.crt (chain), server.key, clients-ca.crt (trust anchor)
 *   clients/              demo-device.{crt,key}, demo-app.{crt,key}, ca.crt (for clients)
 *   keys/master.key       store master key, mode 0600 (dev: beside the data)
 *
 * `--prod`: separate CAs `ca/devices`, `ca/apps`, `ca/admins` and `ca/server`
 * with the passphrase from `PHIMQ_CA_PASSPHRASE` (never written to disk),
 * `environment: prod`, the master key read from `PHIMQ_MASTER_KEY`, and no
 * demo identities.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { type Command, InvalidArgumentError } from 'commander'
import { InitError } from '../errors.js'
import { type CertificateAuthority, type IssuedCertificate, initCa, openCa } from '../pki/ca.js'
import { generateMasterKey } from '../store/crypto.js'
import { PASSPHRASE_ENV } from './pki.js'

export const DEFAULT_DATA_DIR = '.phimq'
export const CONFIG_FILE = 'phimq.yaml'
export const DEV_PASSPHRASE_FILE = 'ca-passphrase.dev'
export const DEMO_TENANT = 'demo'
export const DEMO_DEVICE_ID = 'demo-device'
export const DEMO_APP_ID = 'demo-app'
export const MASTER_KEY_ENV = 'PHIMQ_MASTER_KEY'

export interface InitOptions {
  /** Data directory; created when missing. */
  dir: string
  prod?: boolean
  host?: string
  mqttsPort?: number
  wssPort?: number
  metricsPort?: number
  /** CA passphrase for `--prod` (else `PHIMQ_CA_PASSPHRASE`). */
  passphrase?: string
}

export interface InitResult {
  /** Absolute data directory. */
  dir: string
  configPath: string
  prod: boolean
  /** Lines to show the user (what was made, what to keep safe). */
  notes: string[]
}

/** Where the demo client files live in a development data directory. */
export function demoClientPaths(dir: string): {
  ca: string
  device: { cert: string; key: string }
  app: { cert: string; key: string }
} {
  const c = join(dir, 'clients')
  return {
    ca: join(c, 'ca.crt'),
    device: { cert: join(c, `${DEMO_DEVICE_ID}.crt`), key: join(c, `${DEMO_DEVICE_ID}.key`) },
    app: { cert: join(c, `${DEMO_APP_ID}.crt`), key: join(c, `${DEMO_APP_ID}.key`) },
  }
}

/** True when `dir` holds a finished `phimq init` (its config file). */
export function isInitialised(dir: string): boolean {
  return existsSync(join(dir, CONFIG_FILE))
}

/** Create the data directory. Refuses a directory that is (even partly) initialised. */
export async function initDataDir(options: InitOptions): Promise<InitResult> {
  const dir = resolve(options.dir)
  const prod = options.prod === true
  if (isInitialised(dir)) {
    throw new InitError(
      `${dir} is already initialised (${CONFIG_FILE} exists); ` +
        'start it with phimq start, or pick another --dir',
    )
  }
  const leftovers = ['ca', 'tls', 'clients', 'keys/master.key'].filter((p) =>
    existsSync(join(dir, p)),
  )
  if (leftovers.length > 0) {
    throw new InitError(
      `${dir} holds ${leftovers.join(', ')} but no ${CONFIG_FILE}: an earlier init did not finish; ` +
        `remove ${leftovers.map((p) => join(dir, p)).join(' ')} and run phimq init again`,
    )
  }
  let passphrase: string
  if (prod) {
    const given = options.passphrase ?? process.env[PASSPHRASE_ENV]
    if (given === undefined || given === '') {
      throw new InitError(
        `--prod needs the CA passphrase: set ${PASSPHRASE_ENV} (at least 12 characters); ` +
          'it is never written to disk',
      )
    }
    passphrase = given
  } else {
    passphrase = randomBytes(24).toString('base64url')
  }
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await mkdir(join(dir, 'tls'), { recursive: true, mode: 0o700 })
  await mkdir(join(dir, 'keys'), { recursive: true, mode: 0o700 })
  const notes: string[] = []

  if (!prod) {
    await writeSecret(join(dir, DEV_PASSPHRASE_FILE), `${passphrase}\n`)
    const ca = await initCa(join(dir, 'ca'), passphrase, { organization: 'phimq dev' })
    await writeServer(dir, ca, 'dev')
    await writeFile(join(dir, 'tls', 'clients-ca.crt'), ca.rootPem)
    const clients = join(dir, 'clients')
    await mkdir(clients, { recursive: true, mode: 0o700 })
    await writeClient(
      clients,
      await ca.issueCertificate({
        kind: 'device',
        tenant: DEMO_TENANT,
        id: DEMO_DEVICE_ID,
        env: 'dev',
      }),
    )
    await writeClient(
      clients,
      await ca.issueCertificate({ kind: 'app', tenant: DEMO_TENANT, id: DEMO_APP_ID, env: 'dev' }),
    )
    await writeSecret(join(dir, 'keys', 'master.key'), `${generateMasterKey()}\n`)
    notes.push(
      `development CA in ${join(dir, 'ca')}; its passphrase is in ${join(dir, DEV_PASSPHRASE_FILE)} ` +
        '(mode 0600) for development only: never use this layout for real PHI (phimq init --prod)',
      `store master key in ${join(dir, 'keys', 'master.key')} (mode 0600), beside the data: development only`,
      `demo certificates for ${DEMO_TENANT}/${DEMO_DEVICE_ID} (device) and ${DEMO_TENANT}/${DEMO_APP_ID} (app) in ${clients}`,
    )
  } else {
    const cas = new Map<string, CertificateAuthority>()
    for (const name of ['devices', 'apps', 'admins', 'server']) {
      cas.set(
        name,
        await initCa(join(dir, 'ca', name), passphrase, { organization: `phimq ${name}` }),
      )
    }
    await writeServer(dir, cas.get('server') as CertificateAuthority, 'prod')
    await writeFile(
      join(dir, 'tls', 'devices-ca.crt'),
      (cas.get('devices') as CertificateAuthority).rootPem,
    )
    await writeFile(
      join(dir, 'tls', 'apps-ca.crt'),
      (cas.get('apps') as CertificateAuthority).rootPem,
    )
    await writeFile(
      join(dir, 'tls', 'server-ca.crt'),
      (cas.get('server') as CertificateAuthority).rootPem,
    )
    notes.push(
      `four CAs in ${join(dir, 'ca')} (devices, apps, admins, server), keys encrypted with $${PASSPHRASE_ENV}`,
      `give clients ${join(dir, 'tls', 'server-ca.crt')} to trust the broker`,
      `issue devices with: phimq pki issue --dir ${join(dir, 'ca', 'devices')} --kind device --tenant T --id ID --env prod --out certs/ (listeners refuse certificates without env prod, C18)`,
      `the store needs a master key in $${MASTER_KEY_ENV}: make one with phimq store init-master-key --out FILE, kept off this disk`,
      `CRLs live 7 days: run phimq pki crl --dir ${join(dir, 'ca', 'devices')} (and apps) weekly`,
    )
  }
  const configPath = join(dir, CONFIG_FILE)
  // Written last, through a rename: its presence means the directory is complete.
  const tmp = `${configPath}.tmp`
  await writeFile(tmp, renderConfig({ prod, host: options.host, ...ports(options) }))
  await rename(tmp, configPath)
  notes.push(`config ${configPath}`)
  return { dir, configPath, prod, notes }
}

/**
 * Before a development start: sign a fresh CRL with the dev passphrase file,
 * so a reused directory never trips over a CRL past its nextUpdate.
 */
export async function refreshDevCrl(dir: string): Promise<void> {
  const file = join(dir, DEV_PASSPHRASE_FILE)
  if (!existsSync(file) || !existsSync(join(dir, 'ca', 'ca.json'))) return
  const passphrase = (await readFile(file, 'utf8')).trim()
  const ca = await openCa(join(dir, 'ca'), passphrase)
  await ca.writeCrl()
}

function ports(o: InitOptions): { mqttsPort: number; wssPort: number; metricsPort: number } {
  return {
    mqttsPort: o.mqttsPort ?? 8883,
    wssPort: o.wssPort ?? 8884,
    metricsPort: o.metricsPort ?? 9464,
  }
}

async function writeServer(
  dir: string,
  ca: CertificateAuthority,
  env: 'dev' | 'prod',
): Promise<void> {
  const issued = await ca.issueCertificate({ kind: 'server', tenant: 'phimq', id: 'broker', env })
  await writeFile(join(dir, 'tls', 'server.crt'), issued.chainPem)
  await writeSecret(join(dir, 'tls', 'server.key'), issued.keyPem)
}

async function writeClient(out: string, issued: IssuedCertificate): Promise<void> {
  await writeFile(join(out, `${issued.record.id}.crt`), issued.chainPem)
  await writeSecret(join(out, `${issued.record.id}.key`), issued.keyPem)
  await writeFile(join(out, 'ca.crt'), issued.caPem)
}

async function writeSecret(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600 })
  await chmod(path, 0o600)
}

interface RenderOptions {
  prod: boolean
  host?: string | undefined
  mqttsPort: number
  wssPort: number
  metricsPort: number
}

/** The commented config. Paths are relative to this file, which sits in the data directory. */
export function renderConfig(o: RenderOptions): string {
  const host = o.host ?? '127.0.0.1'
  const env = o.prod ? 'prod' : 'dev'
  const devicesCa = o.prod ? 'tls/devices-ca.crt' : 'tls/clients-ca.crt'
  const appsCa = o.prod ? 'tls/apps-ca.crt' : 'tls/clients-ca.crt'
  const crlDevices = o.prod ? 'ca/devices/crl.pem' : 'ca/crl.pem'
  const crlApps = o.prod ? 'ca/apps/crl.pem' : 'ca/crl.pem'
  const header = o.prod
    ? `# phimq configuration written by \`phimq init --prod\`.
# Before real PHI flows: set host to the address clients reach, keep the CA
# passphrase and the master key off this machine's disk, and renew CRLs weekly.`
    : `# phimq configuration written by \`phimq init\` for DEVELOPMENT.
# The CA passphrase (ca-passphrase.dev) and the store master key (keys/master.key)
# sit beside the data: fine on a laptop, never for real PHI (use \`phimq init --prod\`).`
  return `${header}
# Reference: docs/*.md; JSON Schema: schema/phimq.schema.json.
# Relative paths are taken from this file's folder (the data directory).

# dev | test | prod. prod forbids plaintext listeners and disabling guards.
environment: ${env}
nodeId: phimq-1
dataDir: .

listeners:
  # MQTT over TLS. Client certificates must chain to tls.ca (mutual TLS, C05/C09);
  # the MQTT Client Identifier must equal the certificate's id (clientIdBinding: equal).
  - name: mqtts
    type: mqtts
    host: ${host}
    port: ${o.mqttsPort}
    tls:
      cert: tls/server.crt
      key: tls/server.key
      ca: ${devicesCa}
      crl: [${crlDevices}]
    clientIdBinding: equal
  # MQTT over WebSocket over TLS, path /mqtt, also with client certificates.
  - name: wss
    type: wss
    host: ${host}
    port: ${o.wssPort}
    tls:
      cert: tls/server.crt
      key: tls/server.key
      ca: ${appsCa}
      crl: [${crlApps}]
    clientIdBinding: equal
${
  o.prod
    ? `    # Web origins allowed to open this socket (required in prod); [] = no browsers.
    allowedOrigins: []
`
    : ''
}
# Durable, encrypted at rest (docs/store.md).
store:
  type: sqlite
  path: store.db
${o.prod ? `  masterKeyEnv: ${MASTER_KEY_ENV}` : '  masterKeyFile: keys/master.key # dev only: keep the key off the data disk'}

# Hash-chained, signed audit trail in ./audit (docs/audit.md).
# Check it: ${o.prod ? 'phimq audit verify --dir <dataDir>/audit --auditor NAME' : 'phimq audit verify --dir .phimq/audit --no-auditor'}
# ${o.prod ? 'Readers need an auditor with a one-time code: phimq auditor add NAME' : '(--no-auditor: dev only; elsewhere an auditor with a one-time code reads it)'}
audit:
  sink: trail

# Topic policy (docs/policy.md). Every topic starts with the tenant from the
# client certificate; no rule, no access; root wildcards such as # are refused.
# Roles come from the certificate (urn:phimq:<tenant>:<role>:<id>). The data
# path of a remote-monitoring home (phimq demo runs it):
#   device -> {tenant}/home/<device>/obs/<kind> -> home gateway (strips, aggregates)
#   gateway -> {tenant}/rpm/<device>/vitals/<kind> -> clinical apps ($share/clinical)
#                                                 -> de-identification ($share/deid)
#   deid-service -> {tenant}/deid/<metric> -> analytics (de-identified only)
policy:
  rules:
    # A device publishes only under its own id: observations for its home
    # gateway, vitals, and its status. The rule lets RETAIN through; the topic
    # class decides: status may be retained, PHI never.
    - name: device-telemetry
      who: { role: device }
      actions: [publish]
      topics: ["{tenant}/home/{id}/obs/+", "{tenant}/rpm/{id}/vitals/+", "{tenant}/rpm/{id}/status"]
      maxQos: 2
      retain: true
    # A home gateway reads its devices' observations and forwards vitals.
    - name: gateway-read
      who: { role: gateway }
      actions: [subscribe]
      topics: ["{tenant}/home/+/obs/+"]
      maxQos: 1
    - name: gateway-forward
      who: { role: gateway }
      actions: [publish]
      topics: ["{tenant}/rpm/+/vitals/+"]
      maxQos: 1
    # An app reads vitals and device status of its tenant, alone or in the
    # shared group "clinical" (C17: no other group is granted).
    - name: app-read-vitals
      who: { role: app }
      actions: [subscribe]
      topics: ["{tenant}/rpm/+/vitals/+", "{tenant}/rpm/+/status"]
      maxQos: 2
      shareGroups: [clinical]
    # The de-identification service reads vitals in its group and writes the
    # de-identified feed; analytics reads that feed and nothing else.
    - name: deid-read
      who: { role: deid-service }
      actions: [subscribe]
      topics: ["{tenant}/rpm/+/vitals/+"]
      maxQos: 1
      shareGroups: [deid]
    - name: deid-publish
      who: { role: deid-service }
      actions: [publish]
      topics: ["{tenant}/deid/+"]
      maxQos: 1
    - name: analytics-read
      who: { role: analytics }
      actions: [subscribe]
      topics: ["{tenant}/deid/+"]
      maxQos: 1
  classes:
    # Observations inside a home (FHIR R4 Observation JSON): PHI, never retained.
    - name: home-obs
      phi: true
      topics: ["{tenant}/home/+/obs/+"]
      maxPayloadBytes: 4096
      messageExpiry: { defaultSeconds: 3600, maxSeconds: 86400 }
      payload:
        format: json
        fields: [resourceType, status, category, code, subject, effectiveDateTime, valueQuantity, component, device, note]
        unknownFields: drop
    # Vitals are PHI: never retained, expire within a day, only listed JSON
    # fields pass (a device serial or a free-text note is dropped here too).
    - name: vitals
      phi: true
      topics: ["{tenant}/rpm/+/vitals/+"]
      maxPayloadBytes: 4096
      messageExpiry: { defaultSeconds: 3600, maxSeconds: 86400 }
      payload:
        format: json
        fields: [resourceType, status, category, code, subject, effectiveDateTime, effectivePeriod, valueQuantity, component, hr, spo2, sys, dia, glucose, weight, unit, ts]
        unknownFields: drop
    # Device status (online, battery) is not PHI: it may be retained.
    - name: status
      phi: false
      topics: ["{tenant}/rpm/+/status"]
      retain: true
      maxQos: 1
      messageExpiry: { defaultSeconds: 86400, maxSeconds: 604800 }
      payload:
        format: json
        fields: [state, battery, ts]
        unknownFields: refuse
    # De-identified aggregates: not PHI, only these fields, anything else refused.
    - name: deidentified
      phi: false
      topics: ["{tenant}/deid/+"]
      messageExpiry: { defaultSeconds: 86400, maxSeconds: 2592000 }
      payload:
        format: json
        fields: [cohort, metric, value, unit, n]
        unknownFields: refuse

# Prometheus metrics at http://127.0.0.1:${o.metricsPort}/metrics (loopback only).
metrics:
  enabled: true
  host: 127.0.0.1
  port: ${o.metricsPort}

log:
  level: info
`
}

function port(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port 0-65535')
  return n
}

/** Options shared by `init` and `start` (the latter uses them only when it initialises). */
export function addInitOptions(cmd: Command): Command {
  return cmd
    .option('--dir <dir>', 'data directory', DEFAULT_DATA_DIR)
    .option('--prod', 'production layout: separate CAs, environment prod, no demo identities')
    .option('--host <host>', 'listener address written into the config', '127.0.0.1')
    .option('--mqtts-port <port>', 'mqtts port written into the config (0: any free port)', port)
    .option('--wss-port <port>', 'wss port written into the config (0: any free port)', port)
    .option(
      '--metrics-port <port>',
      'metrics port written into the config (0: any free port)',
      port,
    )
}

/** Add `init` to the `phimq` program. */
export function registerInitCommands(program: Command): Command {
  return addInitOptions(
    program.command('init').description('create a data directory: PKI, policy, store, audit'),
  ).action(async (opts: InitOptions) => {
    const result = await initDataDir(opts)
    for (const line of result.notes) console.log(line)
    const rel = relative(process.cwd(), result.dir) || '.'
    console.log(
      result.prod
        ? `next: export ${MASTER_KEY_ENV}=... and run phimq start --config ${join(rel, CONFIG_FILE)}`
        : `next: phimq start${rel === DEFAULT_DATA_DIR ? '' : ` --dir ${rel}`}`,
    )
  })
}
