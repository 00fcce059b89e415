/**
 * The `Clock` seam: all timing in the broker (keep alive, expiry, will delay,
 * rate windows) reads it, so tests can move time.
 */
export interface TimerHandle {
  cancel(): void
}

export interface Clock {
  /** Wall-clock epoch milliseconds. */
  now(): number
  /** Run `fn` once after `ms` milliseconds. */
  schedule(ms: number, fn: () => void): TimerHandle
}

/** The real clock. Timers are unref'd: they never keep the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(ms, fn) {
    const t = setTimeout(fn, ms)
    t.unref()
    return { cancel: () => clearTimeout(t) }
  },
}

interface PendingTimer {
  at: number
  seq: number
  fn: () => void
  cancelled: boolean
}

/** A clock that moves only when a test calls `advance`. */
export class ManualClock implements Clock {
  #now: number
  #seq = 0
  #timers: PendingTimer[] = []

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = startMs
  }

  now(): number {
    return this.#now
  }

  schedule(ms: number, fn: () => void): TimerHandle {
    const timer: PendingTimer = { at: this.#now + ms, seq: this.#seq++, fn, cancelled: false }
    this.#timers.push(timer)
    return {
      cancel: () => {
        timer.cancelled = true
      },
    }
  }

  /** Move time forward, firing due timers in order. */
  advance(ms: number): void {
    const target = this.#now + ms
    for (;;) {
      const next = this.#nextDue(target)
      if (!next) break
      this.#now = next.at
      next.cancelled = true
      next.fn()
    }
    this.#now = target
    this.#timers = this.#timers.filter((t) => !t.cancelled)
  }

  #nextDue(target: number): PendingTimer | undefined {
    let best: PendingTimer | undefined
    for (const t of this.#timers) {
      if (t.cancelled || t.at > target) continue
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t
    }
    return best
  }
}
