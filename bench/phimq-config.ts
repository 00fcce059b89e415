/**
 * The config phimq gets for one benchmark run (see `phimq-server.ts` and
 * docs/performance.md). Kept apart from the server script so a test can
 * hold it against the config schema.
 */
import { join } from 'node:path'

/** One phimq run of the bench. */
export interface PhimqBenchOptions {
  /** `sqlite` is `bare` with the encrypted SQLite store. */
  readonly variant: 'bare' | 'shipped' | 'sqlite'
  readonly listener: 'plain' | 'mtls'
  readonly port: number
  readonly pki: string
  readonly dir: string
}

/** The config of one run, as a plain object (written as YAML). */
export function benchConfig(o: PhimqBenchOptions): Record<string, unknown> {
  const listener =
    o.listener === 'plain'
      ? { name: 'bench-plain', type: 'tcp', host: '127.0.0.1', port: o.port }
      : {
          name: 'bench-mtls',
          type: 'mqtts',
          host: '127.0.0.1',
          port: o.port,
          tls: {
            cert: join(o.pki, 'server.crt'),
            key: join(o.pki, 'server.key'),
            ca: join(o.pki, 'ca.crt'),
          },
          // The two departures from the defaults, both because one generator on one address
          // plays every client with one test certificate (see docs/performance.md):
          // client ids start with the certificate's id instead of equalling it ...
          clientIdBinding: 'prefix',
          // ... and 5,000 connections come from 127.0.0.1 within seconds.
          limits: { connectionsPerAddress: 1_000_000 },
        }
  const bare = o.variant !== 'shipped'
  return {
    // plaintext is allowed only in dev (C05); as shipped we run as production
    environment: !bare && o.listener === 'mtls' ? 'prod' : 'dev',
    nodeId: `bench-${o.variant}`,
    dataDir: join(o.dir, 'data'),
    listeners: [listener],
    ...(o.variant === 'sqlite' ? { store: sqliteStore(o.dir) } : {}),
    // prod requires a policy: least privilege for the bench's one test identity
    ...(bare ? {} : { policy: BENCH_POLICY }),
    // as shipped: the signed, hash-chained audit trail (the default); bare: plain JSON lines
    ...(bare ? { audit: { sink: 'jsonl', path: join(o.dir, 'audit.jsonl') } } : {}),
    alerts: { enabled: !bare },
    // port 0: never collide with a real broker's operations port on the same host
    metrics: bare ? { enabled: false } : { port: 0 },
    log: { level: 'warn' },
  }
}

/** The master key file `phimq-server.ts` writes before a `sqlite` run. */
export function masterKeyPath(dir: string): string {
  return join(dir, 'master.key')
}

function sqliteStore(dir: string): Record<string, unknown> {
  return {
    type: 'sqlite',
    path: join(dir, 'store.db'),
    // the default: survives a process crash; `full` would also survive power loss
    synchronous: 'normal',
    masterKeyFile: masterKeyPath(dir),
  }
}

/**
 * The shipped row's policy: the test identity (tenant `bench-tenant`, role
 * `device`) may publish and subscribe on the bench topics of its tenant and
 * nothing else; the topics are a PHI class with a binary payload (the bench
 * payload is a timestamp, two counters and filler, synthetic).
 */
const BENCH_TOPICS = ['{tenant}/sensors/+/hr', '{tenant}/bcast/all/hr']
const BENCH_POLICY = {
  rules: [
    {
      name: 'bench-device',
      who: { tenant: 'bench-tenant', role: 'device' },
      actions: ['publish', 'subscribe'],
      topics: BENCH_TOPICS,
      maxQos: 1,
    },
  ],
  classes: [
    {
      name: 'bench-vitals',
      topics: BENCH_TOPICS,
      payload: {
        format: 'binary',
        reason: 'synthetic benchmark payload: a time stamp and counters',
      },
    },
  ],
}
