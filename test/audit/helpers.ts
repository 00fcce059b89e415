/** Shared test helpers for the audit tests: temp dirs and sample events. */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Actor, AuditEvent } from '../../src/audit/events.js'

/** A fresh temp dir and its cleanup. */
export function tempDir(prefix = 'phimq-audit-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export function actor(clientId = 'sensor-1', tenant = 'clinic-a'): Actor {
  return {
    clientId,
    identity: { id: clientId, tenant, role: 'device' },
    listener: 'mqtts',
    remoteAddress: '127.0.0.1',
  }
}

/** A denial event, numbered so tests can tell records apart. */
export function denied(n: number, clientId = 'sensor-1'): AuditEvent {
  return {
    type: 'publish.denied',
    actor: actor(clientId),
    topic: `clinic-a/ward/${n}`,
    qos: 1,
    retain: false,
    reasonCode: 0x87,
    rule: 'policy.default-deny',
  }
}

/** Synthetic identifiers (Appendix A shapes); none belongs to a person. */
export const PHI_SAMPLES = {
  ssn: '078-05-1120',
  phone: '(555) 867-5309',
  email: 'jane.doe@example.org',
  dob: '04/12/1961',
}

/** The scan's detectors: the same shapes as the samples, found anywhere. */
const SCAN_DETECTORS: Array<[string, RegExp]> = [
  ['ssn', /\b\d{3}-\d{2}-\d{4}\b/],
  ['phone', /\(?\b\d{3}\)?[ .-]\d{3}-\d{4}\b/],
  ['email', /[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}/i],
  ['dob', /\b\d{2}\/\d{2}\/\d{4}\b/],
]

/** Which sample shapes `text` holds. */
export function phiHits(text: string): string[] {
  return SCAN_DETECTORS.filter(([, re]) => re.test(text)).map(([name]) => name)
}

/** Every file below `dir`. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}
