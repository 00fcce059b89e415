/** Shared set-up for the policy tests: the RPM example policy, clients, messages. */
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { ManualClock } from '../../src/broker/clock.js'
import type { ClientInfo, Identity, Message, ProtocolVersion, Qos } from '../../src/broker/types.js'
import { type PolicyConfig, policySchema } from '../../src/config/policy.js'
import type { Environment } from '../../src/policy/compile.js'
import { PolicyGate } from '../../src/policy/policy-gate.js'

export const RPM_POLICY_PATH = new URL('../fixtures/rpm-policy.yaml', import.meta.url)
export const RPM_POLICY_TEXT = readFileSync(RPM_POLICY_PATH, 'utf8')

/** Synthetic keys: 32 bytes each, different per tenant. */
export const TEST_ENV = {
  PHIMQ_PSEUDONYM_KEY_ACME: Buffer.alloc(32, 0xa1).toString('base64'),
  PHIMQ_PSEUDONYM_KEY_BETA: Buffer.alloc(32, 0xb2).toString('base64'),
}

/** The RPM policy as raw YAML data (before the schema). */
export function rpmPolicyInput(): Record<string, unknown> {
  return parse(RPM_POLICY_TEXT) as Record<string, unknown>
}

export function rpmPolicy(): PolicyConfig {
  return policySchema.parse(rpmPolicyInput())
}

export interface Harness {
  gate: PolicyGate
  clock: ManualClock
  audit: MemoryAuditSink
}

export function makeGate(
  options: { environment?: Environment; policy?: PolicyConfig } = {},
): Harness {
  const clock = new ManualClock()
  const audit = new MemoryAuditSink('test', clock)
  const gate = new PolicyGate({
    policy: options.policy ?? rpmPolicy(),
    environment: options.environment ?? 'prod',
    clock,
    audit,
    env: TEST_ENV,
  })
  return { gate, clock, audit }
}

/** A client of tenant `acme` unless the identity says otherwise. */
export function client(
  identity: Partial<Identity> & { id: string },
  options: { clientId?: string; protocolVersion?: ProtocolVersion } = {},
): ClientInfo {
  const full: Identity = { tenant: 'acme', ...identity }
  return {
    clientId: options.clientId ?? identity.id,
    identity: full,
    listener: 'devices',
    remoteAddress: '127.0.0.1',
    protocolVersion: options.protocolVersion ?? 5,
  }
}

export const device1 = client({ id: 'dev-1', role: 'device' })
export const gateway = client({ id: 'gw-7', role: 'gateway' })
export const clinician = client({ id: 'app-1', role: 'clinical-app' })
export const kiosk = client({ id: 'kiosk-3', role: 'clinical-app' })
export const analytics = client({ id: 'stats-1', role: 'analytics' })
export const deid = client({ id: 'deid-1', role: 'deid-service' })
export const ops = client({ id: 'ops-1', role: 'operations' })
export const betaClinician = client({ id: 'app-9', role: 'clinical-app', tenant: 'beta' })
export const betaDevice = client({ id: 'dev-1', role: 'device', tenant: 'beta' })

/** A JSON vitals message (synthetic values). */
export function message(
  topic: string,
  body: unknown = { hr: 72, unit: 'bpm' },
  options: Partial<Omit<Message, 'topic' | 'payload'>> & { qos?: Qos } = {},
): Message {
  const payload = Buffer.isBuffer(body)
    ? body
    : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  return {
    topic,
    payload,
    qos: 1,
    retain: false,
    properties: { contentType: 'application/json' },
    ...options,
  }
}
