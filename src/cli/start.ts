/**
 * `phimq start`: with `--config FILE`, start that config; without it, use the
 * data directory (`--dir`, default `.phimq`), running `phimq init` first when
 * it is missing. Prints `phimq ready` with the listener URLs and, for a
 * development directory with demo identities, ready-to-paste
 * `mosquitto_sub` / `mosquitto_pub` lines.
 */

import { X509Certificate } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import type { Command } from 'commander'
import { type LoadedConfig, loadConfigFile } from '../config/load.js'
import { InitError, PhimqError } from '../errors.js'
import { createLogger } from '../monitor/logger.js'
import { startServer } from '../server.js'
import type { RunningListener } from '../transport/tcp-listener.js'
import {
  addInitOptions,
  CONFIG_FILE,
  DEMO_DEVICE_ID,
  DEMO_TENANT,
  demoClientPaths,
  type InitOptions,
  initDataDir,
  isInitialised,
  refreshDevCrl,
} from './init.js'

interface StartOptions extends InitOptions {
  config?: string
}

/** What to run or change, by error code, printed under the error. */
const HINTS = new Map<string, (config: string) => string>([
  [
    'PHIMQ_LISTEN_FAILED',
    (c) =>
      `another process holds the port (a phimq already running?): stop it, or change listeners[].port in ${c}`,
  ],
  [
    'PHIMQ_CONFIG_INVALID',
    (c) => `fix the named keys in ${c}, or move it away and run phimq init to write a fresh one`,
  ],
  ['PHIMQ_LISTENER_INSECURE', (c) => `use mqtts or wss listeners in ${c} (phimq init writes them)`],
  [
    'PHIMQ_TLS_MATERIAL',
    (c) =>
      `check the tls paths in ${c} and that the files exist; a damaged dev directory can be removed and recreated with phimq init`,
  ],
  [
    'PHIMQ_MASTER_KEY_INVALID',
    () =>
      'set PHIMQ_MASTER_KEY (prod) or restore keys/master.key; make a new key only for a new store: phimq store init-master-key --out FILE',
  ],
  ['PHIMQ_STORE_BUSY', () => 'another phimq uses this data directory: stop it first'],
  [
    'PHIMQ_AUDIT_KEY_INVALID',
    () => 'chmod 600 the audit signing key named above (keys/audit-signing.pem)',
  ],
  ['PHIMQ_POLICY_INVALID', (c) => `fix the policy section of ${c}; see docs/policy.md`],
  ['PHIMQ_CA_STATE', () => 'restore the CA directory, or recreate a dev directory with phimq init'],
])

/** Add `start` to the `phimq` program. */
export function registerStartCommand(program: Command): Command {
  return addInitOptions(
    program
      .command('start')
      .description('start the broker (creates the data directory on first run)')
      .option('-c, --config <file>', 'configuration file (default: <dir>/phimq.yaml)'),
  ).action(async (opts: StartOptions) => {
    const configPath = opts.config ?? join(opts.dir, CONFIG_FILE)
    try {
      await start(opts)
    } catch (err) {
      if (!(err instanceof PhimqError)) {
        const msg = err instanceof Error ? err.message : String(err)
        const code = (err as NodeJS.ErrnoException).code
        console.error(`phimq: start failed: ${msg}`)
        console.error(
          code === 'EADDRINUSE'
            ? `  what to do: another process holds that port: stop it, or change the port in ${configPath} (metrics.port for the metrics endpoint)`
            : code === 'EACCES' || code === 'EPERM'
              ? `  what to do: phimq may not write there: fix the permissions or pick another --dir`
              : '  what to do: see docs/errors.md; run with a fresh --dir to rule out a damaged data directory',
        )
        process.exitCode = 2
        return
      }
      console.error(`phimq: ${err.message} [${err.code}]`)
      const hint = HINTS.get(err.code)
      if (hint) console.error(`  what to do: ${hint(configPath)}`)
      process.exitCode = 2
    }
  })
}

async function start(opts: StartOptions): Promise<void> {
  let configPath: string
  if (opts.config !== undefined) {
    configPath = opts.config
  } else {
    if (!isInitialised(opts.dir)) {
      console.log(`phimq: no ${join(opts.dir, CONFIG_FILE)}; initialising ${opts.dir}`)
      const result = await initDataDir(opts)
      for (const line of result.notes) console.log(`  ${line}`)
    }
    configPath = join(opts.dir, CONFIG_FILE)
  }
  const loaded = loadConfigFile(configPath)
  // Before anything opens the trail or the store: a second broker on the same
  // directory would otherwise fork the audit hash chain before the store lock stops it.
  const unlock = lockDataDir(loaded.dataDir)
  let server: Awaited<ReturnType<typeof startServer>>
  const logger = createLogger({
    level: loaded.config.log.level,
    base: { node: loaded.config.nodeId },
  })
  try {
    if (loaded.config.environment === 'dev') await refreshDevCrl(loaded.dataDir)
    checkServerCertificates(loaded)
    server = await startServer(loaded, { logger })
  } catch (err) {
    unlock()
    throw err
  }
  // One write, so the ready line and the demo lines arrive together.
  const lines = [`phimq ready ${server.listeners.map((l) => l.url).join(' ')}`]
  if (loaded.config.environment === 'dev')
    lines.push(...demoLines(loaded.dataDir, server.listeners))
  console.log(lines.join('\n'))
  const stop = (): void => {
    void server.close().then(() => {
      unlock()
      process.exit(0)
    })
  }
  process.on('SIGHUP', () => {
    const result = server.reloadPolicy()
    if (result.ok)
      logger.info({ event: 'policy.reload', changed: result.changed }, 'policy reloaded')
    else logger.warn({ event: 'policy.reload', errors: result.errors }, 'policy reload refused')
  })
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

/**
 * One writer per data directory: `phimq.pid`, taken over when its process
 * is gone. The broker holds it while running; `phimq audit` takes it for
 * the moment it records a read into the trail (C27).
 */
export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, 'phimq.pid')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 })
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path)
        } catch {
          // already gone
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number(readFileSync(path, 'utf8').trim())
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new InitError(
          `another phimq (pid ${pid}) is running on ${dir}: stop it first, or start another --dir`,
        )
      }
      unlinkSync(path) // left by a process that is gone (crash, kill -9)
    }
  }
  throw new InitError(`cannot take ${path}; remove it if no phimq runs on ${dir}`)
}

/** The pid of the live process holding `dir/phimq.pid`, if any (a running broker). */
export function dataDirHolder(dir: string): number | undefined {
  let pid: number
  try {
    pid = Number(readFileSync(join(dir, 'phimq.pid'), 'utf8').trim())
  } catch {
    return undefined
  }
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** An expired server certificate would start, then fail every handshake: refuse early. */
function checkServerCertificates(loaded: LoadedConfig): void {
  const base = join(loaded.source, '..')
  for (const l of loaded.config.listeners) {
    if (l.type === 'tcp') continue
    const path = join(base, l.tls.cert)
    if (!existsSync(path)) continue
    let cert: X509Certificate
    try {
      cert = new X509Certificate(readFileSync(path))
    } catch {
      continue // the listener reports unreadable material itself
    }
    if (new Date(cert.validTo).getTime() <= Date.now()) {
      throw new InitError(
        `listener ${l.name}: server certificate ${path} expired on ${cert.validTo}; ` +
          'issue a new one with phimq pki issue --kind server (see docs/pki.md), ' +
          'or for a dev directory remove it and run phimq init',
      )
    }
  }
}

/** Quote for a POSIX shell when needed. */
function sh(arg: string): string {
  return /^[A-Za-z0-9_./:=@%-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`
}

/** Ready-to-paste mosquitto lines for the demo identities, or nothing. */
export function demoLines(dataDir: string, listeners: readonly RunningListener[]): string[] {
  const paths = demoClientPaths(dataDir)
  const mqtts = listeners.find((l) => l.url.startsWith('mqtts://'))
  if (!mqtts || !existsSync(paths.device.cert) || !existsSync(paths.app.cert)) return []
  const host = new URL(mqtts.url).hostname
  const rel = (p: string): string => relative(process.cwd(), p) || p
  const common = (who: { cert: string; key: string }, id: string): string[] => [
    '-h',
    host,
    '-p',
    String(mqtts.port),
    '--cafile',
    rel(paths.ca),
    '--cert',
    rel(who.cert),
    '--key',
    rel(who.key),
    '-i',
    id,
  ]
  const sub = [
    'mosquitto_sub',
    ...common(paths.app, 'demo-app'),
    '-q',
    '1',
    '-v',
    '-t',
    `${DEMO_TENANT}/rpm/+/vitals/+`,
  ]
  const pub = [
    'mosquitto_pub',
    ...common(paths.device, DEMO_DEVICE_ID),
    '-q',
    '1',
    '-t',
    `${DEMO_TENANT}/rpm/${DEMO_DEVICE_ID}/vitals/hr`,
    '-m',
    '{"hr":72,"unit":"bpm"}',
  ]
  return [
    '',
    'watch the demo app (leave it running):',
    sub.map(sh).join(' '),
    'publish as the demo device (in another terminal):',
    pub.map(sh).join(' '),
  ]
}
