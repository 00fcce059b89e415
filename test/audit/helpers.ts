/** Shared test helpers for the audit tests: temp dirs and sample events. */
import { mkdtempSync, rmSync } from 'node:fs'
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
