import type { IClientOptions, MqttClient } from 'mqtt'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import type { Broker } from '../../src/broker/broker.js'
import type { Identity } from '../../src/broker/types.js'
import { PolicyGate } from '../../src/policy/policy-gate.js'
import { startBroker } from '../helpers/broker.js'
import { rpmPolicy, TEST_ENV } from './helpers.js'

export interface PolicyHarness {
  broker: Broker
  gate: PolicyGate
  audit: MemoryAuditSink
  /** Connect with an identity; resolves on CONNACK, rejects with its reason code. */
  connect(identity: Identity, options?: IClientOptions, binding?: 'free'): Promise<MqttClient>
  close(): Promise<void>
}

export async function startPolicyBroker(): Promise<PolicyHarness> {
  const audit = new MemoryAuditSink('test')
  const gate = new PolicyGate({ policy: rpmPolicy(), environment: 'prod', audit, env: TEST_ENV })
  const tb = await startBroker({ gate, audit })
  return {
    broker: tb.broker,
    gate,
    audit,
    connect: (identity, options = {}, binding) =>
      tb.connect(
        { clientId: identity.id, protocolVersion: 5, ...options },
        { identity, clientIdBinding: binding },
      ),
    close: () => tb.close(),
  }
}
