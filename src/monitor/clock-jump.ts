/**
 * Clock-jump detection (C25): compares how far the wall clock moved with
 * how far the monotonic clock moved; a difference above the limit (1 s by
 * default) is recorded as a `clock.jumped` audit event and logged, and the
 * comparison restarts from the new reading.
 */
import { performance } from 'node:perf_hooks'
import type { AuditSink } from '../audit/sink.js'
import type { Clock, TimerHandle } from '../broker/clock.js'
import { systemClock } from '../broker/clock.js'
import type { Logger } from '../broker/logger.js'
import { silentLogger } from '../broker/logger.js'

export const CLOCK_JUMP_LIMIT_DEFAULT_MS = 1000

export interface ClockJumpOptions {
  readonly sink: AuditSink
  readonly clock?: Clock | undefined
  /** Monotonic milliseconds; `performance.now` by default. */
  readonly monotonicNow?: (() => number) | undefined
  readonly limitMs?: number | undefined
  /** How often to compare; default 10 s. */
  readonly intervalMs?: number | undefined
  readonly logger?: Logger | undefined
}

/** Watches the wall clock against the monotonic clock. */
export class ClockJumpDetector {
  readonly #sink: AuditSink
  readonly #clock: Clock
  readonly #mono: () => number
  readonly #limitMs: number
  readonly #intervalMs: number
  readonly #log: Logger
  #wall0 = 0
  #mono0 = 0
  #timer: TimerHandle | undefined

  constructor(options: ClockJumpOptions) {
    this.#sink = options.sink
    this.#clock = options.clock ?? systemClock
    this.#mono = options.monotonicNow ?? (() => performance.now())
    this.#limitMs = options.limitMs ?? CLOCK_JUMP_LIMIT_DEFAULT_MS
    this.#intervalMs = options.intervalMs ?? 10_000
    this.#log = options.logger ?? silentLogger
  }

  start(): void {
    this.#reset()
    this.#schedule()
  }

  stop(): void {
    this.#timer?.cancel()
    this.#timer = undefined
  }

  /** Compare now; true when a jump was recorded. */
  check(): boolean {
    const skewMs = Math.round(this.#clock.now() - this.#wall0 - (this.#mono() - this.#mono0))
    if (Math.abs(skewMs) <= this.#limitMs) return false
    this.#sink.emit({ type: 'clock.jumped', skewMs, limitMs: this.#limitMs })
    this.#log.warn({ event: 'clock.jumped', skewMs, limitMs: this.#limitMs }, 'clock jumped')
    this.#reset()
    return true
  }

  #reset(): void {
    this.#wall0 = this.#clock.now()
    this.#mono0 = this.#mono()
  }

  #schedule(): void {
    this.#timer = this.#clock.schedule(this.#intervalMs, () => {
      this.check()
      this.#schedule()
    })
  }
}
