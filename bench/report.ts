/**
 * Turns the runs of a benchmark into figures: the median of the repetitions
 * per (workload, broker), every run, and the ratio to the reference broker
 * (Mosquitto). Pure functions, no I/O, so the arithmetic has a unit test
 * (`test/bench/report.test.ts`). A benchmark is not a test: nothing here
 * judges a speed.
 */

/** Latency percentiles in milliseconds, as the generator reports them. */
export interface LatencyMs {
  readonly samples?: number
  readonly p50: number | null
  readonly p90?: number | null
  readonly p99: number | null
  readonly p999?: number | null
  readonly max?: number | null
}

/** One step of the ramp workload. */
export interface RampStep {
  readonly rate: number
  readonly deliveredPerSec: number
  readonly publishedPerSec: number
  readonly gaps: number
  readonly p50: number | null
  readonly p99: number | null
  readonly ok: boolean
  readonly genCpuPct?: number
  readonly brokerCpuPct?: number | null
  readonly otherCpuPct?: number
}

/**
 * One run as the runner records it: the generator's JSON line plus where and
 * when it ran. `skipped` marks a pair the suite could not run, with why.
 */
export interface RunRecord {
  readonly id: string
  readonly broker: string
  readonly rep: number
  readonly try: number
  readonly contaminated: boolean
  readonly skipped?: string
  readonly error?: string
  readonly workload?: string
  readonly deliveredPerSec?: number
  readonly publishedPerSec?: number
  readonly lostTotal?: number
  readonly seqGaps?: number
  readonly seqReorders?: number
  readonly latencyMs?: LatencyMs
  readonly genCpuPct?: number
  readonly brokerCpuPct?: number | null
  readonly otherCpuPct?: number
  readonly maxSustainedPerSec?: number
  readonly atMax?: RampStep | null
  readonly firstFailing?: RampStep | null
  readonly steps?: readonly RampStep[]
  readonly connPerSec?: number
  readonly connectMs?: LatencyMs
  readonly failed?: number
  readonly brokerKbPerConn?: number | null
}

/** How the primary figure of a workload reads. */
export type Direction = 'higher' | 'lower'

/** One row of the table: a (workload, broker) pair. */
export interface SummaryRow {
  readonly workload: string
  readonly broker: string
  /** Runs that produced a figure. */
  readonly runs: number
  readonly errors: number
  readonly contaminated: number
  readonly median: number | null
  readonly unit: string
  readonly better: Direction
  /** median / the reference broker's median, or null without one. */
  readonly ratio: number | null
  /** The primary figure of every counted run, in repetition order. */
  readonly all: readonly number[]
  readonly p50: number | null
  readonly p99: number | null
  readonly p999: number | null
  readonly genCpuPct: number | null
  readonly brokerCpuPct: number | null
  readonly otherCpuPct: number | null
  readonly kbPerConn: number | null
  readonly lost: number | null
  readonly seqGaps: number | null
  readonly seqReorders: number | null
  /** The generator used (nearly) all of its core: the figure is its own. */
  readonly generatorBound: boolean
  readonly skipped: string | null
  readonly notes: readonly string[]
}

/** A generator at or above this share of its core sets the figure itself. */
export const GENERATOR_BOUND_CPU_PCT = 90

/** Median of the finite numbers in `xs`; null when there are none. */
export function median(xs: ReadonlyArray<number | null | undefined>): number | null {
  const v = xs
    .filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
    .sort((a, b) => a - b)
  if (v.length === 0) return null
  const m = v.length >> 1
  if (v.length % 2 === 1) return v[m] ?? null
  return ((v[m - 1] ?? 0) + (v[m] ?? 0)) / 2
}

/** `value / ref`, or null when either is missing or the reference is 0. */
export function ratioTo(value: number | null, ref: number | null): number | null {
  if (value === null || ref === null || ref === 0) return null
  return value / ref
}

/**
 * One record per (workload, broker, rep): a clean try beats a contaminated
 * one, and among equals the later try wins (it was the repeat).
 */
export function pickRuns(records: readonly RunRecord[]): RunRecord[] {
  const cells = new Map<string, RunRecord>()
  for (const r of records) {
    const key = `${r.id}|${r.broker}|${r.rep}`
    const prev = cells.get(key)
    const cleaner = prev?.contaminated === true && !r.contaminated
    const later = prev?.contaminated === r.contaminated && r.try > prev.try
    if (prev === undefined || cleaner || later) cells.set(key, r)
  }
  return [...cells.values()]
}

interface Primary {
  readonly unit: string
  readonly better: Direction
  readonly value: (r: RunRecord) => number | null | undefined
}

/** The figure a workload is judged by. Latency: p99, lower is better. */
export function primaryOf(workload: string): Primary {
  switch (workload) {
    case 'conn':
      return { unit: 'conn/s', better: 'higher', value: (r) => r.connPerSec }
    case 'ramp':
      return { unit: 'msg/s sustained', better: 'higher', value: (r) => r.maxSustainedPerSec }
    case 'latency':
      return { unit: 'ms p99', better: 'lower', value: (r) => r.latencyMs?.p99 }
    default:
      return { unit: 'deliveries/s', better: 'higher', value: (r) => r.deliveredPerSec }
  }
}

function latencyOf(r: RunRecord): LatencyMs | undefined {
  if (r.workload === 'conn') return r.connectMs
  if (r.workload === 'ramp') {
    return r.atMax ? { p50: r.atMax.p50, p99: r.atMax.p99 } : undefined
  }
  return r.latencyMs
}

function cpuOf(r: RunRecord): Pick<RunRecord, 'genCpuPct' | 'brokerCpuPct' | 'otherCpuPct'> {
  return r.workload === 'ramp' && r.atMax ? r.atMax : r
}

/** Summarise one (workload, broker) group, without the ratio. */
function summarizeGroup(id: string, broker: string, rs: readonly RunRecord[]): SummaryRow {
  const skip = rs.find((r) => r.skipped !== undefined)?.skipped ?? null
  const ok = rs.filter((r) => r.skipped === undefined && r.error === undefined)
  const kind = (ok[0] ?? rs[0])?.workload ?? ''
  const primary = primaryOf(kind)
  const m = (f: (r: RunRecord) => number | null | undefined): number | null => median(ok.map(f))
  const gen = m((r) => cpuOf(r).genCpuPct)
  const row = {
    workload: id,
    broker,
    runs: ok.length,
    errors: rs.filter((r) => r.error !== undefined).length,
    contaminated: ok.filter((r) => r.contaminated).length,
    median: m(primary.value),
    unit: primary.unit,
    better: primary.better,
    ratio: null,
    all: ok.map(primary.value).filter((x): x is number => typeof x === 'number'),
    p50: m((r) => latencyOf(r)?.p50),
    p99: m((r) => latencyOf(r)?.p99),
    p999: m((r) => latencyOf(r)?.p999),
    genCpuPct: gen,
    brokerCpuPct: m((r) => cpuOf(r).brokerCpuPct),
    otherCpuPct: m((r) => cpuOf(r).otherCpuPct),
    kbPerConn: m((r) => r.brokerKbPerConn),
    lost: m((r) => r.lostTotal),
    seqGaps: m((r) => r.seqGaps),
    seqReorders: m((r) => r.seqReorders),
    generatorBound: gen !== null && gen >= GENERATOR_BOUND_CPU_PCT,
    skipped: ok.length === 0 ? skip : null,
  }
  return { ...row, notes: notesOf(row, rs, ok) }
}

function notesOf(
  row: Omit<SummaryRow, 'notes'>,
  rs: readonly RunRecord[],
  ok: readonly RunRecord[],
): string[] {
  const notes: string[] = []
  if (row.skipped !== null) return [row.skipped]
  if (row.generatorBound) {
    notes.push(`generator-bound (gen CPU ${fmt(row.genCpuPct)} %): the figure is the generator's`)
  }
  if (row.kbPerConn !== null) notes.push(`${fmt(row.kbPerConn, 1)} kB/conn`)
  if (row.lost) notes.push(`LOST ${fmt(row.lost)}`)
  if (row.seqGaps) notes.push(`seq gaps ${fmt(row.seqGaps)}`)
  if (row.seqReorders) notes.push(`reordered ${fmt(row.seqReorders)}`)
  const failing = ok.map((r) => failingStep(r)).filter((s): s is string => s !== null)
  if (failing.length > 0) notes.push(`first failing step ${failing.join(', ')}`)
  const failedConns = median(ok.map((r) => r.failed))
  if (failedConns) notes.push(`${fmt(failedConns)} connections failed`)
  if (row.errors > 0) {
    const first = rs.find((r) => r.error !== undefined)?.error ?? ''
    notes.push(`${row.errors} run(s) errored (${first.slice(0, 80)})`)
  }
  if (row.contaminated > 0) notes.push(`${row.contaminated} run(s) with busy neighbours`)
  return notes
}

function failingStep(r: RunRecord): string | null {
  const f = r.firstFailing
  if (r.workload !== 'ramp' || !f) return null
  const why = f.gaps > 0 ? 'gaps' : (f.p99 ?? 0) >= 500 ? 'p99' : 'rate'
  return `${f.rate}:${why}`
}

/**
 * Summarise every (workload, broker) pair, in the order the workloads and
 * brokers first appear, with each broker's ratio to `ref`; where `altRefs`
 * names a second reference for a workload, the notes give that ratio too.
 */
export function summarize(
  records: readonly RunRecord[],
  ref = 'mosquitto',
  altRefs: ReadonlyMap<string, string> = new Map(),
): SummaryRow[] {
  const groups = new Map<string, RunRecord[]>()
  for (const r of pickRuns(records)) {
    const key = `${r.id}|${r.broker}`
    const list = groups.get(key) ?? []
    list.push(r)
    groups.set(key, list)
  }
  const ids = [...new Set(records.map((r) => r.id))]
  const brokers = [...new Set(records.map((r) => r.broker))]
  const rows: SummaryRow[] = []
  for (const id of ids) {
    const refGroup = groups.get(`${id}|${ref}`)
    const refRow = refGroup ? summarizeGroup(id, ref, refGroup) : null
    for (const broker of brokers) {
      const group = groups.get(`${id}|${broker}`)
      if (!group) continue
      const row = summarizeGroup(id, broker, group)
      const notes = [...row.notes]
      const alt = altRefs.get(id)
      const altGroup = alt !== undefined && alt !== broker ? groups.get(`${id}|${alt}`) : undefined
      if (alt !== undefined && altGroup) {
        const altRatio = ratioTo(row.median, summarizeGroup(id, alt, altGroup).median)
        if (altRatio !== null) notes.unshift(`${fmt(altRatio, 2)} × ${alt}`)
      }
      rows.push({ ...row, notes, ratio: ratioTo(row.median, refRow?.median ?? null) })
    }
  }
  return rows
}

/** A number for the table: thousands separated, `n/a` when missing. */
export function fmt(x: number | null | undefined, digits = 0): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a'
  return x.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  })
}

/** The Markdown table of a summary. */
export function renderMarkdown(rows: readonly SummaryRow[], ref = 'mosquitto'): string {
  const head =
    `| workload | broker | runs | median | unit | × ${ref} | p50 ms | p99 ms | p99.9 ms ` +
    '| gen CPU % | broker CPU % | others CPU % | notes | all runs |'
  const out = [head, `|${'---|'.repeat(14)}`]
  for (const r of rows) {
    if (r.skipped !== null) {
      out.push(
        `| ${r.workload} | ${r.broker} | 0 | — | ${r.unit} ${'| '.repeat(7)}| ${r.notes[0]} | |`,
      )
      continue
    }
    const ratio = r.ratio === null ? '' : `${fmt(r.ratio, 2)}${r.better === 'lower' ? ' ↓' : ''}`
    const digits = r.better === 'lower' ? 2 : 0
    const cells = [
      r.workload,
      r.broker,
      String(r.runs),
      fmt(r.median, digits),
      r.unit,
      ratio,
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      fmt(r.p999, 2),
      fmt(r.genCpuPct),
      fmt(r.brokerCpuPct),
      fmt(r.otherCpuPct),
      r.notes.join('; '),
      r.all.map((x) => fmt(x, digits)).join(' / '),
    ]
    out.push(`| ${cells.join(' | ')} |`)
  }
  return out.join('\n')
}
