/**
 * The host side of a run: who else uses the CPU (the machine may be shared),
 * whether a port is taken, stopping a child by its pid, and the machine
 * facts the report carries.
 */
import type { ChildProcess } from 'node:child_process'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { cpus, release, totalmem } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

const CLOCK_TICKS_PER_SECOND = 100

/** CPU seconds (user + system, all threads) per pid, leaving out `exclude`. */
export function cpuSecondsByPid(exclude: ReadonlySet<number>): Map<number, number> {
  const out = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    const pid = Number(entry)
    if (exclude.has(pid)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(pid, (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_SECOND)
    } catch {
      // the process ended between readdir and read
    }
  }
  return out
}

/** Busy and total jiffies of all CPUs, from the first line of /proc/stat. */
export function hostJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const total = f.reduce((a, b) => a + b, 0)
  return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total }
}

/**
 * Share of one core (%) that other processes used over `ms`: the larger of
 * the sum over processes alive at the end and the host's busy time less
 * ours (which also counts processes that ended inside the window).
 */
export async function othersCpuPct(exclude: ReadonlySet<number>, ms: number): Promise<number> {
  const before = cpuSecondsByPid(exclude)
  const ours0 = process.cpuUsage()
  const host0 = hostJiffies()
  await sleep(ms)
  let used = 0
  for (const [pid, s] of cpuSecondsByPid(exclude)) used += Math.max(0, s - (before.get(pid) ?? 0))
  const byPid = (100 * used) / (ms / 1000)
  const host1 = hostJiffies()
  const ours = process.cpuUsage(ours0)
  const busyShare = (host1.busy - host0.busy) / Math.max(1, host1.total - host0.total)
  const oursPct = (100 * (ours.user + ours.system)) / 1000 / ms
  const byHost = 100 * busyShare * cpus().length - oursPct
  return Math.max(byPid, byHost)
}

/**
 * Wait, at most `maxSeconds`, until other processes have used less than
 * `quietPct` of a core for two seconds in a row. Returns the seconds waited
 * and the last reading.
 */
export async function waitQuiet(
  maxSeconds: number,
  quietPct = 15,
): Promise<{ waitedS: number; othersPct: number }> {
  const t0 = Date.now()
  const exclude = new Set([process.pid])
  let calm = 0
  let last = 0
  do {
    last = await othersCpuPct(exclude, 1000)
    calm = last < quietPct ? calm + 1 : 0
  } while (calm < 2 && Date.now() - t0 < maxSeconds * 1000)
  return { waitedS: Math.round((Date.now() - t0) / 1000), othersPct: Math.round(last) }
}

/** True when something accepts connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolveOpen) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => {
      s.destroy()
      resolveOpen(true)
    })
    s.once('error', () => resolveOpen(false))
  })
}

/** Poll until the port opens or `ms` passes. */
export async function waitPort(port: number, ms: number, child: ChildProcess): Promise<boolean> {
  const t0 = Date.now()
  while (Date.now() - t0 < ms) {
    if (child.exitCode !== null || child.signalCode !== null) return false
    if (await portOpen(port)) return true
    await sleep(100)
  }
  return false
}

/** SIGTERM the child by pid, SIGKILL after `ms`; resolves when it exited. */
export function stopChild(child: ChildProcess, ms = 3000): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      done()
      return
    }
    const pid = child.pid
    const timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }, ms)
    child.once('exit', () => {
      clearTimeout(timer)
      done()
    })
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      clearTimeout(timer)
      done()
    }
  })
}

/** True when `taskset` can pin processes here. */
export function hasTaskset(): boolean {
  return !spawnSync('taskset', ['-V']).error
}

/** True when `openssl` is on the PATH (the PKI needs it). */
export function hasOpenssl(): boolean {
  return !spawnSync('openssl', ['version']).error
}

/** The machine a table was measured on. */
export interface MachineFacts {
  readonly node: string
  readonly kernel: string
  readonly cpu: string
  readonly cpus: number
  readonly memGiB: number
}

export function machineFacts(): MachineFacts {
  const list = cpus()
  return {
    node: process.version,
    kernel: release(),
    cpu: list[0]?.model ?? 'unknown',
    cpus: list.length,
    memGiB: Math.round(totalmem() / 2 ** 30),
  }
}
