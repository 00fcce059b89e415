/**
 * `npm run bench`: phimq side by side with Mosquitto and Aedes (issue #7).
 *
 * For every repetition, workload and broker (brokers interleaved, the first
 * one alternating): a fresh broker process pinned to one CPU, the generator
 * pinned to another, one JSON line of results. Runs during which other
 * processes used the CPU are repeated. Prints a Markdown table and writes a
 * JSON file (medians, every run, ratios to Mosquitto). Installs nothing: it
 * says what is missing. See docs/performance.md.
 *
 *   npm run bench -- [--quick] [--reps 3] [--workloads fanin-q0,conn-tcp]
 *     [--brokers phimq,phimq-bare,phimq-sqlite,mosquitto,aedes] [--out /tmp/phimq-bench]
 *     [--cpu-prof]   V8 CPU profiles of the phimq runs, for the hot-path pass
 *   npm run bench -- --report /tmp/phimq-bench/bench-<time>.json   (print a table again)
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  aedesVersion,
  type BenchContext,
  type BrokerSpec,
  CERT_CLIENT_ID_PREFIX,
  type Listener,
  mosquittoVersion,
  selectBrokers,
} from './brokers.js'
import {
  hasOpenssl,
  hasTaskset,
  machineFacts,
  portOpen,
  stopChild,
  waitPort,
  waitQuiet,
} from './host.js'
import { type RunRecord, renderMarkdown, type SummaryRow, summarize } from './report.js'
import { selectWorkloads, WORKLOADS, type Workload } from './workloads.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** A run during which other processes used more than this (% of a core) is repeated. */
const CONTAMINATED_OTHERS_PCT = 25

interface RunOptions {
  readonly quick: boolean
  readonly reps: number
  readonly workloads: Workload[]
  readonly brokers: BrokerSpec[]
  readonly out: string
  readonly brokerCpu: string
  readonly genCpu: string
  readonly port: number
  readonly tlsPort: number
  readonly quietWaitS: number
  readonly tries: number
  readonly nice: number
  readonly cpuProf: boolean
  readonly report: string
}

function parseOptions(): RunOptions {
  const { values: v } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      workloads: { type: 'string' },
      brokers: { type: 'string' },
      // outside the repo: Biome would check the JSON and Markdown it writes
      out: { type: 'string', default: join(tmpdir(), 'phimq-bench') },
      'broker-cpu': { type: 'string', default: '0' },
      'gen-cpu': { type: 'string', default: '1' },
      port: { type: 'string', default: '21883' },
      'tls-port': { type: 'string', default: '28883' },
      'quiet-wait': { type: 'string' },
      tries: { type: 'string' },
      nice: { type: 'string', default: '0' },
      'cpu-prof': { type: 'boolean', default: false },
      report: { type: 'string', default: '' },
    },
  })
  const list = (s: string | undefined): string[] | null => (s ? s.split(',') : null)
  const quick = v.quick
  return {
    quick,
    reps: Number(v.reps ?? (quick ? 1 : 3)),
    workloads: selectWorkloads(list(v.workloads)),
    brokers: selectBrokers(list(v.brokers)),
    out: resolve(v.out),
    brokerCpu: v['broker-cpu'],
    genCpu: v['gen-cpu'],
    port: Number(v.port),
    tlsPort: Number(v['tls-port']),
    quietWaitS: Number(v['quiet-wait'] ?? (quick ? 1 : 20)),
    tries: Number(v.tries ?? (quick ? 1 : 3)),
    nice: Number(v.nice),
    cpuProf: v['cpu-prof'],
    report: v.report,
  }
}

/** Pinning and priority prefix; empty when taskset is missing. */
function pinned(cpu: string, nice: number, argv: readonly string[], pin: boolean): string[] {
  const pinPart = pin ? ['taskset', '-c', cpu] : []
  const nicePart = nice !== 0 ? ['nice', '-n', String(nice)] : []
  return [...nicePart, ...pinPart, ...argv]
}

/** Children alive now: stopped by pid if the bench itself is stopped. */
const children = new Set<ChildProcess>()

function spawnArgv(argv: readonly string[], stdio: 'pipe' | number): ChildProcess {
  const [cmd, ...args] = argv
  const child = spawn(cmd ?? 'false', args, {
    cwd: ROOT,
    stdio: ['ignore', stdio, stdio],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

function stopAllAndExit(signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
  }
  console.error(`bench stopped by ${signal}; its brokers and generators were killed`)
  process.exit(130)
}
process.once('SIGINT', stopAllAndExit)
process.once('SIGTERM', stopAllAndExit)

function mtlsArgs(ctx: BenchContext, broker: BrokerSpec): string[] {
  const pki = broker.clientPkiDir === undefined ? ctx.pki : join(ctx.pki, broker.clientPkiDir)
  return ['--tls', '--pki', pki, '--client-id-prefix', CERT_CLIENT_ID_PREFIX]
}

type GeneratorResult = Omit<RunRecord, 'id' | 'broker' | 'rep' | 'try' | 'contaminated'>

function runGenerator(argv: readonly string[], maxSeconds: number): Promise<GeneratorResult> {
  return new Promise((done) => {
    const child = spawnArgv(argv, 'pipe')
    let out = ''
    let err = ''
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString()
    })
    const killer = setTimeout(() => child.kill('SIGKILL'), (maxSeconds + 10) * 1000)
    child.on('exit', (code) => {
      clearTimeout(killer)
      const line = out.trim().split('\n').filter(Boolean).pop() ?? ''
      try {
        done(JSON.parse(line) as GeneratorResult)
      } catch {
        done({ error: `no result (exit ${code}) ${err.slice(-200)}` })
      }
    })
  })
}

const othersOf = (r: GeneratorResult): number =>
  r.workload === 'ramp'
    ? Math.max(0, ...(r.steps ?? []).map((s) => s.otherCpuPct ?? 0))
    : (r.otherCpuPct ?? 0)

function brief(r: GeneratorResult): string {
  if (r.error !== undefined) return `ERROR ${r.error}`
  const cpu = `gen ${r.genCpuPct ?? r.atMax?.genCpuPct}% broker ${r.brokerCpuPct ?? r.atMax?.brokerCpuPct}%`
  if (r.workload === 'conn') return `${r.connPerSec} conn/s, ${r.brokerKbPerConn} kB/conn, ${cpu}`
  if (r.workload === 'ramp') {
    return `sustained ${r.maxSustainedPerSec}/s, fails at ${r.firstFailing?.rate ?? 'none'}`
  }
  const l = r.latencyMs
  return `${r.deliveredPerSec} deliv/s p50 ${l?.p50} p99 ${l?.p99} ms, lost ${r.lostTotal}, ${cpu}`
}

interface Cell {
  readonly workload: Workload
  readonly broker: BrokerSpec
  readonly listener: Listener
  readonly rep: number
}

/** One run of one cell, repeated while neighbours disturb it. */
async function runCell(ctx: BenchContext, o: RunOptions, c: Cell, pin: boolean) {
  const records: RunRecord[] = []
  const port = c.listener === 'plain' ? ctx.port : ctx.tlsPort
  for (let attempt = 1; attempt <= o.tries; attempt++) {
    const quiet = await waitQuiet(o.quietWaitS)
    for (let i = 0; i < 20 && ((await portOpen(ctx.port)) || (await portOpen(ctx.tlsPort))); i++) {
      await sleep(500)
    }
    if ((await portOpen(ctx.port)) || (await portOpen(ctx.tlsPort))) {
      throw new Error(`port ${ctx.port} or ${ctx.tlsPort} is in use: stop what holds it`)
    }

    const tag = `${c.broker.name}-${c.workload.id}-${c.rep}-${attempt}`
    const log = openSync(join(ctx.tmp, `${tag}.log`), 'w')
    const brokerArgv = pinned(o.brokerCpu, o.nice, c.broker.command(ctx, c.listener), pin)
    const broker = spawnArgv(brokerArgv, log)
    let result: GeneratorResult
    if (!(await waitPort(port, 20_000, broker))) {
      result = { error: `broker did not open port ${port} (log ${tag}.log)` }
    } else {
      await sleep(500)
      const w = c.workload
      const gen = [
        process.execPath,
        join(ROOT, 'bench', 'mqbench.mjs'),
        w.kind,
        ...w.args,
        ...(o.quick ? w.quickArgs : []),
        '--port',
        String(port),
        ...(c.listener === 'mtls' ? mtlsArgs(ctx, c.broker) : []),
        ...(c.broker.genArgs ?? []),
        '--broker-pid',
        String(broker.pid),
        '--label',
        c.broker.name,
        '--max-seconds',
        String(w.maxSeconds),
      ]
      result = await runGenerator(pinned(o.genCpu, o.nice, gen, pin), w.maxSeconds)
    }
    await stopChild(broker)
    closeSync(log)

    const others = othersOf(result)
    const contaminated = result.error === undefined && others > CONTAMINATED_OTHERS_PCT
    records.push({
      ...result,
      workload: result.workload ?? c.workload.kind,
      id: c.workload.id,
      broker: c.broker.name,
      rep: c.rep,
      try: attempt,
      contaminated,
      waitedQuietS: quiet.waitedS,
      othersBeforePct: quiet.othersPct,
      listener: c.listener,
      at: new Date().toISOString(),
    } as RunRecord)
    const flag = contaminated ? ' CONTAMINATED' : ''
    console.error(
      `rep ${c.rep} ${c.workload.id} ${c.broker.name} try ${attempt}${flag} ` +
        `(others ${others}%): ${brief(result)}`,
    )
    await sleep(500)
    if (!contaminated) break
  }
  return records
}

function skipped(w: Workload, broker: string, reason: string): RunRecord {
  return {
    id: w.id,
    broker,
    rep: 1,
    try: 1,
    contaminated: false,
    workload: w.kind,
    skipped: reason,
  }
}

function makePki(dir: string): void {
  const r = spawnSync('bash', [join(ROOT, 'bench', 'make-pki.sh'), dir], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`make-pki.sh failed: ${r.stderr.slice(-300)}`)
}

function gitCommit(): string {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : 'unknown'
}

/** Summary and table, rows in the order of the workload and broker lists. */
function tabulate(
  records: RunRecord[],
  workloads: readonly Workload[],
  brokers: readonly Pick<BrokerSpec, 'name'>[],
): { summary: SummaryRow[]; table: string } {
  const wIdx = new Map(workloads.map((w, i) => [w.id, i]))
  const bIdx = new Map(brokers.map((b, i) => [b.name, i]))
  const at = (m: Map<string, number>, k: string): number => m.get(k) ?? m.size
  const sorted = [...records].sort(
    (a, b) =>
      at(wIdx, a.id) - at(wIdx, b.id) ||
      at(bIdx, a.broker) - at(bIdx, b.broker) ||
      a.rep - b.rep ||
      a.try - b.try,
  )
  const altRefs = new Map(workloads.flatMap((w) => (w.altRef ? [[w.id, w.altRef] as const] : [])))
  const summary = summarize(sorted, 'mosquitto', altRefs)
  return { summary, table: renderMarkdown(summary, 'mosquitto') }
}

/** `--report FILE`: the table of an earlier run's JSON, printed again. */
function reprint(file: string): void {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as {
    runs: RunRecord[]
    brokers: { name: string }[]
    workloads: { id: string }[]
  }
  const workloads = saved.workloads.map((w) => WORKLOADS.find((x) => x.id === w.id) ?? w)
  console.log(tabulate(saved.runs, workloads as Workload[], saved.brokers).table)
}

async function main(): Promise<void> {
  const o = parseOptions()
  if (o.report !== '') {
    reprint(o.report)
    return
  }
  const started = new Date()
  const machine = machineFacts()

  // 1. Prerequisites: say what is missing, install nothing.
  const missing: string[] = []
  if (!hasOpenssl()) missing.push('openssl (apt-get install -y openssl): needed for the test PKI')
  const pin = hasTaskset() && machine.cpus >= 2
  if (!pin)
    missing.push('taskset or a second CPU: runs are not pinned (apt-get install util-linux)')
  for (const m of missing) console.error(`missing: ${m}`)
  if (!hasOpenssl()) process.exit(2)

  // 2. Throwaway PKI and config files in a temp dir that Mosquitto's user can read.
  const tmp = mkdtempSync(join(tmpdir(), 'phimq-bench-'))
  chmodSync(tmp, 0o755)
  const pki = join(tmp, 'pki')
  makePki(pki)
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const cpuProfDir = o.cpuProf ? join(o.out, `profiles-${stamp}`) : ''
  const ctx: BenchContext = { root: ROOT, tmp, pki, port: o.port, tlsPort: o.tlsPort, cpuProfDir }

  // 3. Which brokers can run here at all.
  const unavailable = new Map<string, string>()
  for (const b of o.brokers) {
    const reason = b.check(ctx)
    if (reason !== null) {
      unavailable.set(b.name, reason)
      console.error(`skipping ${b.name}: ${reason}`)
    }
  }

  const records: RunRecord[] = []
  const measured = o.workloads.filter((w) => w.placeholder === undefined)

  // 4. Skipped pairs, once each, with the reason.
  const runnable = new Map<string, Listener>()
  for (const w of measured) {
    for (const b of o.brokers) {
      if (!(w.brokers?.includes(b.name) ?? true)) continue
      if (!(b.onlyWorkloads?.includes(w.id) ?? true)) continue
      const listener = w.transport === 'native' ? b.native : w.transport
      const reason = unavailable.get(b.name) ?? b.refuses(listener)
      if (reason !== null) records.push(skipped(w, b.name, reason))
      else runnable.set(`${w.id}|${b.name}`, listener)
    }
  }

  // 5. Interleave: every broker once per workload and repetition, alternating who goes first.
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const w of measured) {
      const order = rep % 2 === 1 ? o.brokers : [...o.brokers].reverse()
      for (const b of order) {
        const listener = runnable.get(`${w.id}|${b.name}`)
        if (listener === undefined) continue
        records.push(...(await runCell(ctx, o, { workload: w, broker: b, listener, rep }, pin)))
      }
    }
  }

  // Placeholders last: a row that says "not yet available", never a number.
  for (const w of o.workloads.filter((x) => x.placeholder !== undefined)) {
    records.push(skipped(w, 'phimq', w.placeholder ?? ''))
  }

  // 6. Report.
  const { summary, table } = tabulate(records, o.workloads, o.brokers)
  const finished = new Date()
  const report = {
    started: started.toISOString(),
    finished: finished.toISOString(),
    seconds: Math.round((finished.getTime() - started.getTime()) / 1000),
    machine,
    pinned: pin ? { broker: o.brokerCpu, generator: o.genCpu } : null,
    options: { quick: o.quick, reps: o.reps, tries: o.tries, quietWaitS: o.quietWaitS },
    versions: { phimq: gitCommit(), mosquitto: mosquittoVersion(), aedes: aedesVersion() },
    workloads: o.workloads.map((w) => ({ id: w.id, title: w.title, transport: w.transport })),
    brokers: o.brokers.map((b) => ({ name: b.name, description: b.description })),
    summary,
    runs: records,
  }
  mkdirSync(o.out, { recursive: true })
  const jsonFile = join(o.out, `bench-${stamp}.json`)
  writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(join(o.out, `bench-${stamp}.md`), `${table}\n`)
  console.log(table)
  console.error(`\n${report.seconds} s; JSON ${jsonFile}; broker logs in ${tmp}`)
  if (cpuProfDir) console.error(`phimq CPU profiles in ${cpuProfDir}`)
}

await main()
