/**
 * Certificates for `phimq demo`, issued by the development CA into
 * `<dataDir>/clients/fleet/` the first time (and again once expired):
 * the fleet devices, the home gateway, two clinical app instances, the
 * de-identification service, the analytics consumer, and `lapsed-device`,
 * whose certificate expired long ago on purpose.
 */
import { X509Certificate } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { InitError } from '../errors.js'
import { openCa } from '../pki/ca.js'
import type { CertKind } from '../pki/profiles.js'
import { DEMO_TENANT, DEV_PASSPHRASE_FILE, demoClientPaths } from './init.js'

const DAY_MS = 86_400_000

/** What MQTT.js needs for mutual TLS. */
export interface ClientFiles {
  ca: Buffer
  cert: Buffer
  key: Buffer
}

/** One demo client: its certificate's kind and role, and its files. */
export interface DemoIdentity {
  readonly id: string
  readonly kind: CertKind
  readonly role: string
  /** Issued with a validity that ended in the past. */
  readonly expired: boolean
  readonly files: ClientFiles
}

type Spec = Omit<DemoIdentity, 'files'>

function specs(deviceIds: string[]): Spec[] {
  const device = (id: string, role = 'device', expired = false): Spec => ({
    id,
    kind: 'device',
    role,
    expired,
  })
  const app = (id: string, role: string): Spec => ({ id, kind: 'app', role, expired: false })
  return [
    ...deviceIds.map((id) => device(id)),
    device('gw-001', 'gateway'),
    app('clinical-1', 'app'),
    app('clinical-2', 'app'),
    app('deid-1', 'deid-service'),
    app('analytics-1', 'analytics'),
    device('lapsed-device', 'device', true),
  ]
}

/** Whether the certificate at `path` is missing or (unless wanted) no longer valid. */
function needsIssue(path: string, expired: boolean): boolean {
  if (!existsSync(path)) return true
  if (expired) return false
  return Date.parse(new X509Certificate(readFileSync(path)).validTo) <= Date.now() + DAY_MS
}

/**
 * The demo's identities, by id, with `demo-device` (from `phimq init`)
 * among them. Issues what is missing with the dev CA passphrase file.
 */
export async function issueDemoIdentities(
  dataDir: string,
  deviceIds: string[],
): Promise<Map<string, DemoIdentity>> {
  const out = join(dataDir, 'clients', 'fleet')
  const paths = demoClientPaths(dataDir)
  const ca = readFileSync(paths.ca)
  const wanted = specs(deviceIds)
  const missing = wanted.filter((s) => needsIssue(join(out, `${s.id}.crt`), s.expired))
  if (missing.length > 0) {
    const passFile = join(dataDir, DEV_PASSPHRASE_FILE)
    if (!existsSync(passFile)) {
      throw new InitError(
        `${dataDir} is not a development directory (no ${DEV_PASSPHRASE_FILE}); phimq demo needs one: run npm start`,
      )
    }
    const authority = await openCa(join(dataDir, 'ca'), readFileSync(passFile, 'utf8').trim())
    await mkdir(out, { recursive: true, mode: 0o700 })
    for (const s of missing) {
      const issued = await authority.issueCertificate({
        kind: s.kind,
        role: s.role,
        tenant: DEMO_TENANT,
        id: s.id,
        // Valid for one day, thirty days ago: expired, but signed by the real CA.
        ...(s.expired ? { notBefore: new Date(Date.now() - 30 * DAY_MS), days: 1 } : {}),
      })
      await writeFile(join(out, `${s.id}.crt`), issued.chainPem)
      await writeFile(join(out, `${s.id}.key`), issued.keyPem, { mode: 0o600 })
    }
  }
  const found = new Map<string, DemoIdentity>()
  for (const s of wanted) {
    const files = {
      ca,
      cert: readFileSync(join(out, `${s.id}.crt`)),
      key: readFileSync(join(out, `${s.id}.key`)),
    }
    found.set(s.id, { ...s, files })
  }
  found.set('demo-device', {
    id: 'demo-device',
    kind: 'device',
    role: 'device',
    expired: false,
    files: { ca, cert: readFileSync(paths.device.cert), key: readFileSync(paths.device.key) },
  })
  return found
}
