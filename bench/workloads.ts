/**
 * The workloads of issue #7, as arguments to the generator (`mqbench.mjs`).
 * Each has a full shape and a `--quick` shape (shorter, smaller) for a smoke
 * check that finishes in under five minutes.
 */

/**
 * Which listener a workload uses: `plain` and `mtls` force one; `native`
 * uses the broker's own (plain for Mosquitto, Aedes and bare phimq; mTLS for
 * phimq as shipped, which has no plaintext listener: control C05).
 */
export type Transport = 'plain' | 'mtls' | 'native'

/** One workload of the suite. */
export interface Workload {
  readonly id: string
  /** The generator's workload kind (its first argument). */
  readonly kind: 'fanin' | 'fanout' | 'latency' | 'ramp' | 'conn'
  readonly title: string
  readonly args: readonly string[]
  /** Appended in `--quick` mode (later flags win in `parseArgs`). */
  readonly quickArgs: readonly string[]
  readonly transport: Transport
  /** Seconds after which the generator is stopped. */
  readonly maxSeconds: number
  /** Set while the workload cannot be measured yet: the row says why. */
  readonly placeholder?: string
  /** Only these brokers run it (others leave no row). */
  readonly brokers?: readonly string[]
  /** A second reference the notes give a ratio to (durable vs memory store). */
  readonly altRef?: string
}

const SHORT = ['--duration', '2', '--warmup', '1']

/** Every workload, in table order. */
export const WORKLOADS: readonly Workload[] = [
  {
    id: 'fanin-q0',
    kind: 'fanin',
    title: 'fan-in: 100 publishers to sensors/{i}/hr, 1 subscriber on sensors/+/hr, QoS 0',
    args: ['--pubs', '100', '--qos', '0', '--window', '1000'],
    quickArgs: SHORT,
    transport: 'native',
    maxSeconds: 60,
  },
  {
    id: 'fanin-q1',
    kind: 'fanin',
    title: 'fan-in as above, QoS 1 end to end (zero loss required)',
    args: ['--pubs', '100', '--qos', '1', '--window', '1000'],
    quickArgs: SHORT,
    transport: 'native',
    maxSeconds: 60,
  },
  {
    id: 'ramp-q1',
    kind: 'ramp',
    title: 'ramp: fan-in QoS 1 at imposed rates in steps; the highest rate delivered in full',
    args: ['--pubs', '100', '--qos', '1'],
    quickArgs: ['--steps', '5000,10000,20000,40000', '--step-seconds', '1'],
    transport: 'native',
    maxSeconds: 120,
  },
  {
    id: 'fanout-q0',
    kind: 'fanout',
    title: 'fan-out: 1 publisher, 100 subscribers on one topic, QoS 0',
    args: ['--subs', '100', '--qos', '0'],
    quickArgs: SHORT,
    transport: 'native',
    maxSeconds: 60,
  },
  {
    id: 'latency-q1-5k',
    kind: 'latency',
    title: 'latency: 5,000 msg/s open loop at QoS 1, 100 publishers, 1 subscriber',
    args: ['--pubs', '100', '--qos', '1', '--rate', '5000'],
    quickArgs: SHORT,
    transport: 'native',
    maxSeconds: 60,
  },
  {
    // phimq as shipped has only mTLS: this row puts every broker on the same footing.
    id: 'latency-q1-5k-mtls',
    kind: 'latency',
    title: 'latency over mTLS: the same at 5,000 msg/s, every broker on its TLS 1.3 listener',
    args: ['--pubs', '100', '--qos', '1', '--rate', '5000'],
    quickArgs: SHORT,
    transport: 'mtls',
    maxSeconds: 60,
  },
  {
    id: 'conn-tcp',
    kind: 'conn',
    title: 'connections: 5,000 idle clients over plain TCP, 100 handshakes at once',
    args: ['--conns', '5000', '--conc', '100'],
    quickArgs: ['--conns', '500', '--hold', '1'],
    transport: 'plain',
    maxSeconds: 90,
  },
  {
    id: 'conn-mtls',
    kind: 'conn',
    title: 'connections: 5,000 idle clients over TLS 1.3 with client certificates',
    args: ['--conns', '5000', '--conc', '100'],
    quickArgs: ['--conns', '500', '--hold', '1'],
    transport: 'mtls',
    maxSeconds: 90,
  },
  {
    id: 'durable-q1',
    kind: 'fanin',
    title: 'durability: fan-in QoS 1, persistent sessions, SQLite store vs memory store',
    args: ['--pubs', '100', '--qos', '1', '--window', '1000', '--persistent'],
    quickArgs: SHORT,
    transport: 'native',
    maxSeconds: 60,
    brokers: ['phimq-bare', 'phimq-sqlite'],
    altRef: 'phimq-bare',
  },
]

/** Look workloads up by id; throws naming the unknown ones. */
export function selectWorkloads(ids: readonly string[] | null): Workload[] {
  if (ids === null) return [...WORKLOADS]
  const unknown = ids.filter((id) => !WORKLOADS.some((w) => w.id === id))
  if (unknown.length > 0) {
    const known = WORKLOADS.map((w) => w.id).join(', ')
    throw new Error(`unknown workload(s) ${unknown.join(', ')}; known: ${known}`)
  }
  return WORKLOADS.filter((w) => ids.includes(w.id))
}
