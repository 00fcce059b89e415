/**
 * Runs the real `phimq` CLI (bin/phimq.js) as a child process, the way a
 * user does, and parses what it prints.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const PHIMQ_BIN = join(
  fileURLToPath(new URL('.', import.meta.url)),
  '..',
  '..',
  'bin',
  'phimq.js',
)

export interface StartedPhimq {
  readonly child: ChildProcess
  /** Everything printed on stdout so far. */
  stdout(): string
  stderr(): string
  /** Listener URLs from the `phimq ready` line. */
  readonly urls: string[]
  /** The printed `mosquitto_sub` / `mosquitto_pub` lines (dev directories). */
  readonly subLine: string | undefined
  readonly pubLine: string | undefined
  port(scheme: 'mqtts' | 'wss'): number
  stop(): Promise<number | null>
}

/** Run `phimq <args>` in `cwd` until it exits; resolve with code and output. */
export function runPhimq(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PHIMQ_BIN, ...args], { cwd, env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Start `phimq start <args>` in `cwd`; resolve once it prints `phimq ready` and its commands. */
export function startPhimq(args: string[], cwd: string, timeoutMs = 60_000): Promise<StartedPhimq> {
  const child = spawn(process.execPath, [PHIMQ_BIN, 'start', ...args], { cwd })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`phimq start printed no ready line in ${timeoutMs} ms:\n${out}\n${err}`))
    }, timeoutMs)
    const check = (): void => {
      const lines = out.split('\n')
      const ready = lines.find((l) => l.startsWith('phimq ready'))
      if (!ready) return
      // The demo lines follow the ready line in the same write; wait for the pub line when a sub line is there.
      const sub = lines.find((l) => l.startsWith('mosquitto_sub '))
      const pub = lines.find((l) => l.startsWith('mosquitto_pub '))
      if (sub !== undefined && pub === undefined) return
      clearTimeout(timer)
      const urls = ready.split(' ').slice(2)
      resolve({
        child,
        stdout: () => out,
        stderr: () => err,
        urls,
        subLine: sub,
        pubLine: pub,
        port(scheme) {
          const url = urls.find((u) => u.startsWith(`${scheme}://`))
          if (url === undefined) throw new Error(`no ${scheme} listener in ${ready}`)
          return Number(new URL(url).port)
        },
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM')
          return exited
        },
      })
    }
    child.stdout?.on('data', check)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`phimq start exited with ${code}:\n${out}\n${err}`))
    })
  })
}
