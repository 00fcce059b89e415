import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ConnectRequest, SubscribeRequest } from '../../src/broker/gate.js'
import type { ClientInfo, Qos } from '../../src/broker/types.js'
import { policySchema } from '../../src/config/policy.js'
import {
  analytics,
  betaClinician,
  client,
  clinician,
  deid,
  device1,
  gateway,
  kiosk,
  makeGate,
  message,
  ops,
  rpmPolicyInput,
} from './helpers.js'

type Expect = { allow: true; qos?: Qos } | { allow: false; code: number; rule: string | RegExp }

function checkVerdict(
  v: { allow: true } | { allow: false; reasonCode: number; rule: string },
  e: Expect,
) {
  if (e.allow) {
    assert.equal(v.allow, true, v.allow ? '' : `refused by ${v.rule}`)
    return
  }
  assert.equal(v.allow, false, 'expected a refusal')
  if (v.allow) return
  assert.equal(v.reasonCode, e.code)
  if (typeof e.rule === 'string') assert.equal(v.rule, e.rule)
  else assert.match(v.rule, e.rule)
}

function subscribe(c: ClientInfo, filter: string, qos: Qos = 1, shareGroup?: string) {
  const request: SubscribeRequest = { filter, qos, shareGroup }
  return makeGate().gate.authorizeSubscribe(c, request)
}

describe('C15 default-deny rules: publish', () => {
  const cases: Array<[string, ClientInfo, string, Expect]> = [
    [
      'a device publishes into its own subtree',
      device1,
      'acme/rpm/dev-1/vitals/hr',
      { allow: true },
    ],
    [
      "a device publishing into another device's subtree is refused",
      device1,
      'acme/rpm/dev-2/vitals/hr',
      { allow: false, code: 0x87, rule: 'policy.default-deny' },
    ],
    [
      'a device may not publish commands',
      device1,
      'acme/rpm/dev-1/cmd/reboot',
      { allow: false, code: 0x87, rule: 'policy.default-deny' },
    ],
    [
      'a gateway relays for any device of its tenant',
      gateway,
      'acme/rpm/dev-2/vitals/hr',
      { allow: true },
    ],
    [
      'analytics may not publish at all',
      analytics,
      'acme/deid/weekly',
      { allow: false, code: 0x87, rule: 'policy.default-deny' },
    ],
    [
      'a client without an identity is refused',
      { ...device1, identity: undefined },
      'acme/rpm/dev-1/vitals/hr',
      { allow: false, code: 0x87, rule: 'policy.no-identity' },
    ],
    [
      'nobody publishes to a $ topic',
      ops,
      '$SYS/broker/uptime',
      { allow: false, code: 0x87, rule: 'guard.dollar-topic' },
    ],
  ]
  for (const [name, c, topic, expected] of cases) {
    it(name, () => {
      const { gate } = makeGate()
      checkVerdict(gate.authorizePublish(c, message(topic)), expected)
    })
  }
})

describe('C15 default-deny rules: subscribe by containment', () => {
  const cases: Array<[string, ClientInfo, string, Expect]> = [
    ['a device reads its own commands', device1, 'acme/rpm/dev-1/cmd/+', { allow: true }],
    [
      "a device reading another device's commands is refused",
      device1,
      'acme/rpm/dev-2/cmd/+',
      { allow: false, code: 0x87, rule: 'policy.default-deny' },
    ],
    [
      'a device filter wider than its own subtree is refused (ward/+/ecg vs ward/{id}/ecg)',
      device1,
      'acme/rpm/+/cmd/+',
      { allow: false, code: 0x87, rule: 'policy.default-deny' },
    ],
    [
      'a multi-level filter is not contained in a single-level rule',
      clinician,
      'acme/rpm/+/vitals/#',
      { allow: false, code: 0x87, rule: 'policy.default-deny' },
    ],
    [
      'the clinical app reads every vitals topic',
      clinician,
      'acme/rpm/+/vitals/+',
      { allow: true },
    ],
    [
      'a narrower filter inside a rule is allowed',
      clinician,
      'acme/rpm/dev-4/vitals/hr',
      { allow: true },
    ],
    [
      'a deny rule overlapping the filter wins over the allow rule',
      kiosk,
      'acme/rpm/+/vitals/+',
      { allow: false, code: 0x87, rule: 'policy.rule.kiosk-no-ecg' },
    ],
    [
      'the kiosk still reads a topic outside the denied area',
      kiosk,
      'acme/rpm/+/vitals/hr',
      { allow: true },
    ],
    [
      'analytics may not read identified vitals',
      analytics,
      'acme/rpm/+/vitals/hr',
      { allow: false, code: 0x87, rule: 'policy.default-deny' },
    ],
  ]
  for (const [name, c, filter, expected] of cases) {
    it(name, () => checkVerdict(subscribe(c, filter), expected))
  }

  it('grants a QoS above the rule maximum as the maximum, not a refusal (MQTT 5 3.9.3)', () => {
    const v = subscribe(clinician, 'acme/rpm/+/vitals/hr', 2)
    assert.deepEqual(v, { allow: true, maxQos: 1 })
  })

  it('delivers only what the subscriber may read, checked per message (C15)', () => {
    const { gate } = makeGate()
    assert.equal(gate.authorizeDelivery(clinician, message('acme/rpm/dev-1/vitals/hr')), true)
    assert.equal(gate.authorizeDelivery(analytics, message('acme/rpm/dev-1/vitals/hr')), false)
    assert.equal(gate.authorizeDelivery(kiosk, message('acme/rpm/dev-1/vitals/ecg')), false)
    assert.equal(gate.authorizeDelivery(analytics, message('acme/deid/weekly')), true)
  })
})

describe('C16 wildcard limits (prod guards)', () => {
  const cases: Array<[string, ClientInfo, string, Expect]> = [
    [
      '"#" alone is refused even for operations',
      ops,
      '#',
      { allow: false, code: 0x87, rule: 'guard.wildcard-root' },
    ],
    [
      '"{tenant}/#" is refused',
      clinician,
      'acme/#',
      { allow: false, code: 0x87, rule: 'guard.wildcard-root' },
    ],
    [
      '"+/#" is refused',
      clinician,
      '+/#',
      { allow: false, code: 0x87, rule: 'guard.wildcard-root' },
    ],
    [
      'a device may not use a multi-level wildcard, even inside its subtree',
      device1,
      'acme/rpm/dev-1/cmd/#',
      { allow: false, code: 0x87, rule: 'guard.device-multilevel' },
    ],
    [
      '$SYS is refused to a non-operations role',
      clinician,
      '$SYS/broker/clients',
      { allow: false, code: 0x87, rule: 'guard.sys-operations-only' },
    ],
    ['$SYS is readable by the operations role', ops, '$SYS/broker/+', { allow: true }],
    [
      'a single-level wildcard is allowed only where a rule allows it',
      deid,
      'acme/deid/+',
      { allow: false, code: 0x87, rule: 'policy.default-deny' },
    ],
  ]
  for (const [name, c, filter, expected] of cases) {
    it(name, () => checkVerdict(subscribe(c, filter), expected))
  }

  it('refuses to build a prod policy with the guards turned off', () => {
    const input = { ...rpmPolicyInput(), guards: { enabled: false } }
    const policy = policySchema.parse(input)
    assert.throws(() => makeGate({ policy }), { code: 'PHIMQ_POLICY_INVALID' })
    // Outside prod the guards may be off; the tenant prefix still holds.
    const { gate } = makeGate({ policy, environment: 'test' })
    const v = gate.authorizeSubscribe(ops, { filter: '#', qos: 0 })
    assert.deepEqual(v, { allow: false, reasonCode: 0x87, rule: 'tenant.wildcard-prefix' })
  })
})

describe('C16 identities and client ids that look like wildcards', () => {
  function connect(c: ClientInfo, extra: Partial<ConnectRequest> = {}) {
    const request: ConnectRequest = {
      ...c,
      cleanStart: true,
      keepAliveSeconds: 60,
      sessionExpirySeconds: 0,
      ...extra,
    }
    return makeGate().gate.authorizeConnect(request)
  }

  it('refuses a client named "#" with 0x85', () => {
    const v = connect({ ...device1, clientId: '#' })
    assert.deepEqual(v, { allow: false, reasonCode: 0x85, rule: 'connect.client-id-chars' })
  })

  const unsafe = ['#', '+', 'dev-1/vitals', '$SYS', 'a\u0000b', '']
  for (const id of unsafe) {
    it(`refuses an identity id ${JSON.stringify(id)} everywhere: it never fills a placeholder`, () => {
      const c = client({ id, role: 'device' }, { clientId: 'dev-x' })
      const v = connect(c)
      assert.deepEqual(v, { allow: false, reasonCode: 0x87, rule: 'policy.identity-invalid' })
      const { gate } = makeGate()
      const sub = gate.authorizeSubscribe(c, { filter: 'acme/rpm/+/cmd/+', qos: 0 })
      assert.equal(sub.allow, false)
      assert.equal(gate.authorizeDelivery(c, message('acme/rpm/x/cmd/y')), false)
    })
  }

  it('refuses a tenant value that could act as a wildcard', () => {
    const c = client({ id: 'app-1', role: 'clinical-app', tenant: '+' })
    const v = makeGate().gate.authorizeSubscribe(c, { filter: '+/rpm/+/vitals/+', qos: 0 })
    assert.deepEqual(v, { allow: false, reasonCode: 0x87, rule: 'policy.identity-invalid' })
  })
})

describe('C17 shared subscriptions', () => {
  const cases: Array<[string, ClientInfo, string, string, Expect]> = [
    [
      'a listed client joins its granted group',
      clinician,
      'clinical',
      'acme/rpm/+/vitals/+',
      { allow: true },
    ],
    [
      'an ungranted group is refused',
      clinician,
      'night-shift',
      'acme/rpm/+/vitals/+',
      { allow: false, code: 0x87, rule: 'policy.share-group' },
    ],
    [
      'a glob grant admits a matching group',
      analytics,
      'analytics-eu',
      'acme/deid/+',
      { allow: true },
    ],
    [
      'a shared subscription to a forbidden filter is refused',
      clinician,
      'clinical',
      'acme/rpm/+/cmd/+',
      { allow: false, code: 0x87, rule: 'policy.default-deny' },
    ],
    [
      'a device has no group grants',
      device1,
      'clinical',
      'acme/rpm/dev-1/cmd/+',
      { allow: false, code: 0x87, rule: 'policy.share-group' },
    ],
    [
      'a group name with PHI is refused with 0x8F',
      clinician,
      'jane.roe@example.org',
      'acme/rpm/+/vitals/+',
      { allow: false, code: 0x8f, rule: 'phi.share-group.email' },
    ],
  ]
  for (const [name, c, group, filter, expected] of cases) {
    it(name, () => checkVerdict(subscribe(c, filter, 1, group), expected))
  }
})

describe('C18 tenant segmentation (enforced prefix)', () => {
  it('refuses a cross-tenant subscribe and raises a high-severity event', () => {
    const { gate, audit } = makeGate()
    const v = gate.authorizeSubscribe(clinician, { filter: 'beta/rpm/+/vitals/+', qos: 1 })
    assert.deepEqual(v, { allow: false, reasonCode: 0x87, rule: 'tenant.cross-tenant' })
    const [event] = audit.ofType('tenant.cross-tenant')
    assert.equal(event?.severity, 'high')
    assert.equal(event?.op, 'subscribe')
    assert.equal(event?.actor.identity?.tenant, 'acme')
  })

  it('refuses a cross-tenant publish and a wildcard in the tenant level', () => {
    const { gate, audit } = makeGate()
    const pub = gate.authorizePublish(betaClinician, message('acme/rpm/dev-1/cmd/stop'))
    assert.deepEqual(pub, { allow: false, reasonCode: 0x87, rule: 'tenant.cross-tenant' })
    const sub = gate.authorizeSubscribe(clinician, { filter: '+/rpm/+/vitals/hr', qos: 1 })
    assert.deepEqual(sub, { allow: false, reasonCode: 0x87, rule: 'tenant.wildcard-prefix' })
    assert.equal(audit.ofType('tenant.cross-tenant').length, 2)
  })

  it('never delivers a message of tenant B to a client of tenant A', () => {
    const { gate } = makeGate()
    assert.equal(gate.authorizeDelivery(clinician, message('beta/rpm/dev-1/vitals/hr')), false)
    assert.equal(gate.authorizeDelivery(betaClinician, message('beta/rpm/dev-1/vitals/hr')), true)
  })

  it('the same rule gives each tenant only its own subtree', () => {
    const { gate } = makeGate()
    const own = gate.authorizeSubscribe(betaClinician, { filter: 'beta/rpm/+/vitals/+', qos: 1 })
    assert.equal(own.allow, true)
  })

  it('refuses an identity without a tenant at CONNECT', () => {
    const c = { ...clinician, identity: { id: 'app-1', role: 'clinical-app' } }
    const v = makeGate().gate.authorizeConnect({
      ...c,
      cleanStart: true,
      keepAliveSeconds: 60,
      sessionExpirySeconds: 0,
    })
    assert.deepEqual(v, { allow: false, reasonCode: 0x87, rule: 'tenant.missing' })
  })
})
