/**
 * The brokers of the comparison and how to start each one: Mosquitto with a
 * config the bench writes, Aedes (exact-pinned dev dependency), and phimq
 * twice: bare (plain TCP, nothing the config lets us turn off) and as shipped
 * (mTLS identity, policy, PHI guards, audit trail). Each check says what is
 * missing instead of installing it.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/** Where a run lives: the temp dir, the PKI and the two ports. */
export interface BenchContext {
  readonly root: string
  readonly tmp: string
  readonly pki: string
  readonly port: number
  readonly tlsPort: number
  /** Write a V8 CPU profile of each phimq run here (`node --cpu-prof`). */
  readonly cpuProfDir?: string
}

/**
 * Client ids over mTLS start with this: the CN of the test client certificate
 * (`make-pki.sh`), which phimq's default identity rules map to the id.
 */
export const CERT_CLIENT_ID_PREFIX = 'device-bench-0001-'

/** The tenant of the test client certificate (its O). */
export const BENCH_TENANT = 'bench-tenant'

/** A listener kind a run uses. */
export type Listener = 'plain' | 'mtls'

/** A broker the suite can start. */
export interface BrokerSpec {
  readonly name: string
  readonly description: string
  /** The listener of `native` workloads. */
  readonly native: Listener
  /** Extra generator arguments every run against this broker gets. */
  readonly genArgs?: readonly string[]
  /**
   * The generator's mTLS client certificate comes from this subfolder of the
   * PKI (`make-pki.sh`): `env-prod` holds one naming its environment (C18).
   */
  readonly clientPkiDir?: string
  /** Only these workloads run on it (others leave no row). */
  readonly onlyWorkloads?: readonly string[]
  /** Why this broker cannot run at all (missing program), or null. */
  check(ctx: BenchContext): string | null
  /** Why it cannot serve this listener kind, or null. Call after `check`. */
  refuses(listener: Listener): string | null
  /** argv of the broker process (it must stay the same pid: no wrappers). */
  command(ctx: BenchContext, listener: Listener): string[]
}

/**
 * Mosquitto's ACL file: the "plain ACL file" of the claim. Rules
 * before any `user` line apply to anonymous clients; they allow exactly the
 * topics the workloads use, so every message is checked against a rule.
 */
export const MOSQUITTO_ACL = 'topic readwrite sensors/+/hr\ntopic readwrite bcast/all/hr\n'

/** Mosquitto: anonymous, ACL file, no persistence, a plain and an mTLS listener. */
export function mosquittoConfig(ctx: BenchContext): string {
  const lines = [
    'per_listener_settings false',
    'allow_anonymous true',
    `acl_file ${join(ctx.tmp, 'mosquitto.acl')}`,
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'connection_messages false',
    `listener ${ctx.port} 127.0.0.1`,
    `listener ${ctx.tlsPort} 127.0.0.1`,
    `cafile ${join(ctx.pki, 'ca.crt')}`,
    `certfile ${join(ctx.pki, 'server.crt')}`,
    `keyfile ${join(ctx.pki, 'server.key')}`,
    'require_certificate true',
    'tls_version tlsv1.3',
  ]
  return `${lines.join('\n')}\n`
}

/** The version line of an installed Mosquitto, or null when absent. */
export function mosquittoVersion(): string | null {
  const r = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' })
  if (r.error) return null
  const m = /mosquitto version ([0-9.]+)/.exec(r.stdout)
  return m?.[1] ?? 'unknown'
}

/** The installed Aedes version, or null when the dev dependency is missing. */
export function aedesVersion(): string | null {
  try {
    const entry = createRequire(import.meta.url).resolve('aedes')
    const pkg = JSON.parse(readFileSync(join(dirname(entry), 'package.json'), 'utf8'))
    return typeof pkg.version === 'string' ? pkg.version : 'unknown'
  } catch {
    return null
  }
}

const AEDES_PINNED = '1.2.0'

const mosquitto: BrokerSpec = {
  name: 'mosquitto',
  description: 'Mosquitto (Debian package), anonymous, ACL file, no persistence',
  native: 'plain',
  check: () =>
    mosquittoVersion() === null
      ? 'mosquitto not installed: apt-get install -y mosquitto (Debian package)'
      : null,
  refuses: () => null,
  command: (ctx) => {
    const file = join(ctx.tmp, 'mosquitto.conf')
    writeFileSync(file, mosquittoConfig(ctx))
    writeFileSync(join(ctx.tmp, 'mosquitto.acl'), MOSQUITTO_ACL)
    return ['mosquitto', '-c', file]
  },
}

const aedes: BrokerSpec = {
  name: 'aedes',
  description: `Aedes ${AEDES_PINNED}, default options, in-memory persistence`,
  native: 'plain',
  check: () => {
    const v = aedesVersion()
    if (v === null) return `aedes not installed: npm ci (devDependency aedes@${AEDES_PINNED})`
    if (v !== AEDES_PINNED) return `aedes ${v} installed, the bench pins ${AEDES_PINNED}: npm ci`
    return null
  },
  refuses: () => null,
  command: (ctx) => [
    process.execPath,
    join(ctx.root, 'bench', 'aedes-server.mjs'),
    '--port',
    String(ctx.port),
    '--tls-port',
    String(ctx.tlsPort),
    '--pki',
    ctx.pki,
  ],
}

/** What `phimq-server.ts --probe` answers: a reason per listener, or null. */
export interface PhimqProbe {
  /** Why phimq cannot start at all in this checkout (no core yet). */
  readonly core: string | null
  readonly plain: string | null
  readonly mtls: string | null
}

function phimqArgs(ctx: BenchContext, variant: string): string[] {
  const prof = ctx.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', ctx.cpuProfDir] : []
  return [
    process.execPath,
    ...prof,
    '--import',
    'tsx',
    join(ctx.root, 'bench', 'phimq-server.ts'),
    '--variant',
    variant,
    '--pki',
    ctx.pki,
    '--dir',
    join(ctx.tmp, `phimq-${variant}`),
  ]
}

/** Ask phimq-server.ts which listeners this checkout can run. */
export function probePhimq(ctx: BenchContext, variant: string): PhimqProbe | string {
  const [node, ...args] = phimqArgs({ ...ctx, cpuProfDir: '' }, variant)
  const r = spawnSync(node ?? process.execPath, [...args, '--probe'], {
    encoding: 'utf8',
    cwd: ctx.root,
    timeout: 60_000,
  })
  const line = r.stdout.trim().split('\n').pop() ?? ''
  try {
    return JSON.parse(line) as PhimqProbe
  } catch {
    return `phimq-server.ts --probe failed: ${(r.stderr || String(r.error)).slice(-200)}`
  }
}

const PHIMQ_ROWS = {
  shipped: {
    name: 'phimq',
    description: 'phimq as shipped: mTLS listener, policy, every safeguard at its default',
    native: 'mtls',
    // tenancy: every topic of a tenant's client starts with the tenant
    genArgs: ['--topic-prefix', `${BENCH_TENANT}/`],
    // prod refuses a client certificate that does not name its environment (C18)
    clientPkiDir: 'env-prod',
  },
  bare: {
    name: 'phimq-bare',
    description:
      'phimq, bare: plain TCP listener in dev, memory store, safeguards off where allowed',
    native: 'plain',
  },
  sqlite: {
    name: 'phimq-sqlite',
    description: 'phimq bare with the encrypted SQLite store (durability workload only)',
    native: 'plain',
    onlyWorkloads: ['durable-q1'],
  },
} as const

function phimq(variant: keyof typeof PHIMQ_ROWS): BrokerSpec {
  let probe: PhimqProbe | null = null
  return {
    ...PHIMQ_ROWS[variant],
    check: (ctx) => {
      const p = probePhimq(ctx, variant)
      if (typeof p === 'string') return p
      probe = p
      return p.core
    },
    refuses: (listener) => {
      if (variant === 'shipped' && listener === 'plain') {
        return 'phimq as shipped has no plaintext listener (C05)'
      }
      return probe === null ? 'not probed' : probe[listener]
    },
    command: (ctx, listener) => [
      ...phimqArgs(ctx, variant),
      '--listener',
      listener,
      '--port',
      String(listener === 'plain' ? ctx.port : ctx.tlsPort),
    ],
  }
}

/** Every broker, in table order; Mosquitto is the reference. */
export const BROKERS: readonly BrokerSpec[] = [
  phimq('shipped'),
  phimq('bare'),
  phimq('sqlite'),
  mosquitto,
  aedes,
]

/** Look brokers up by name; throws naming the unknown ones. */
export function selectBrokers(names: readonly string[] | null): BrokerSpec[] {
  if (names === null) return [...BROKERS]
  const unknown = names.filter((n) => !BROKERS.some((b) => b.name === n))
  if (unknown.length > 0) {
    const known = BROKERS.map((b) => b.name).join(', ')
    throw new Error(`unknown broker(s) ${unknown.join(', ')}; known: ${known}`)
  }
  return BROKERS.filter((b) => names.includes(b.name))
}
