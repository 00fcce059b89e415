/**
 * Host clock synchronisation status (C25: "host clock sync status
 * reported, NTP offset alert > 1 s"). Best effort: a probe asks `chronyc`
 * (offset and leap status) or else `timedatectl` (synchronised yes/no);
 * when neither answers the status is `unknown`.
 *
 * The monitor probes at start and every `intervalMs`, and records:
 *
 * 1. at start, one `clock.sync-status` (or `clock.unsynchronised`) naming
 *    the source, so the trail says how far its timestamps can be trusted;
 * 2. afterwards only changes: `clock.unsynchronised` when the clock is not
 *    synchronised or off by more than `limitMs` (the alerting sink raises
 *    `clock-unsynchronised`), `clock.sync-status` when it recovers or the
 *    tools stop answering. `unknown` is thus recorded once, not every probe.
 */
import { execFile } from 'node:child_process'
import type { ClockSyncFacts } from '../audit/events.js'
import type { AuditSink } from '../audit/sink.js'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'

/** C25's product default: alert when the offset exceeds one second. */
export const CLOCK_SYNC_LIMIT_DEFAULT_MS = 1000
/** A probe tool that does not answer within this is treated as absent. */
const PROBE_TIMEOUT_MS = 2000

/** What a probe read from the host, before judging it. */
export interface ClockProbeResult {
  readonly source: ClockSyncFacts['source']
  readonly synchronised?: boolean | undefined
  readonly offsetMs?: number | undefined
}

/** Reads the host's clock synchronisation; never throws. */
export type ClockSyncProbe = () => Promise<ClockProbeResult>

/** The rule: unsynchronised when the tool says so or the offset is above the limit. */
export function judgeClockSync(probe: ClockProbeResult, limitMs: number): ClockSyncFacts {
  const { source, synchronised, offsetMs } = probe
  const facts = { source, synchronised, offsetMs, limitMs }
  if (source === 'none' || (synchronised === undefined && offsetMs === undefined)) {
    return { ...facts, status: 'unknown' }
  }
  const tooFar = offsetMs !== undefined && Math.abs(offsetMs) > limitMs
  return { ...facts, status: synchronised === false || tooFar ? 'unsynchronised' : 'synchronised' }
}

export interface ClockSyncMonitorOptions {
  readonly sink: AuditSink
  readonly probe: ClockSyncProbe
  readonly limitMs?: number | undefined
  /** Default 10 minutes. */
  readonly intervalMs?: number | undefined
  readonly clock?: Clock | undefined
  readonly logger?: Logger | undefined
}

/** Probes the host clock at start and then periodically; records changes. */
export class ClockSyncMonitor {
  readonly #options: ClockSyncMonitorOptions
  readonly #clock: Clock
  readonly #log: Logger
  readonly #limitMs: number
  #last: ClockSyncFacts['status'] | undefined
  #timer: TimerHandle | undefined
  #stopped = false

  constructor(options: ClockSyncMonitorOptions) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#log = options.logger ?? silentLogger
    this.#limitMs = options.limitMs ?? CLOCK_SYNC_LIMIT_DEFAULT_MS
  }

  /** Probe now, then every interval. */
  start(): void {
    void this.check().finally(() => this.#schedule())
  }

  stop(): void {
    this.#stopped = true
    this.#timer?.cancel()
    this.#timer = undefined
  }

  /** One probe; resolves to what was found (also when nothing was recorded). */
  async check(): Promise<ClockSyncFacts> {
    const probed = await this.#options.probe().catch((): ClockProbeResult => ({ source: 'none' }))
    const facts = judgeClockSync(probed, this.#limitMs)
    // A result arriving after stop() would land in a closed trail.
    if (this.#stopped || facts.status === this.#last) return facts
    this.#last = facts.status
    if (facts.status === 'unsynchronised') {
      this.#options.sink.emit({ type: 'clock.unsynchronised', ...facts })
      this.#log.warn({ event: 'clock.unsynchronised', ...facts }, 'clock unsynchronised')
    } else {
      this.#options.sink.emit({ type: 'clock.sync-status', ...facts })
    }
    return facts
  }

  #schedule(): void {
    if (this.#stopped) return
    this.#timer = this.#clock.schedule(this.#options.intervalMs ?? 600_000, () => {
      void this.check().finally(() => this.#schedule())
    })
  }
}

/** The real probe: `chronyc -c tracking`, else `timedatectl show`, else `none`. */
export const probeHostClock: ClockSyncProbe = async () => {
  const chrony = await run('chronyc', ['-c', 'tracking'])
  if (chrony !== undefined) {
    const parsed = parseChronyTracking(chrony)
    if (parsed) return parsed
  }
  const timedatectl = await run('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'])
  const answer = timedatectl?.trim()
  if (answer === 'yes' || answer === 'no') {
    return { source: 'timedatectl', synchronised: answer === 'yes' }
  }
  return { source: 'none' }
}

/**
 * `chronyc -c tracking`: comma-separated; field 5 is the system clock's
 * offset from NTP time in seconds, the last the leap status
 * (`Normal`, or `Not synchronised`).
 */
export function parseChronyTracking(text: string): ClockProbeResult | undefined {
  const fields = text.trim().split(',')
  if (fields.length < 6) return undefined
  const offsetSeconds = Number(fields[4])
  const leap = fields.at(-1)?.trim() ?? ''
  if (!Number.isFinite(offsetSeconds)) return undefined
  return {
    source: 'chronyc',
    synchronised: !/not synchronised/i.test(leap),
    offsetMs: Math.round(offsetSeconds * 1_000_000) / 1000,
  }
}

/** stdout of a command, or undefined when it is missing, fails or hangs. */
function run(file: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: PROBE_TIMEOUT_MS, windowsHide: true }, (err, stdout) => {
      resolve(err ? undefined : String(stdout))
    })
  })
}
