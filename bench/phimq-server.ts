/**
 * Starts phimq for one benchmark run the way the composition does:
 * `startServer(loaded, options)` from `src/server.ts`, with a config file
 * written to the run's temp dir. One listener per run (`--listener plain`
 * or `mtls`) on `--port`, loopback only.
 *
 *   node --import tsx bench/phimq-server.ts --variant bare|shipped|sqlite \
 *     --listener plain|mtls --port N --pki DIR --dir DIR
 *   ... --probe   prints {"core","plain","mtls"}: why each cannot run, or null
 *
 * `bare` turns off what the config lets us turn off today; `shipped` keeps
 * every default and listens with mutual TLS only. When a safeguard gains a
 * switch, set it off in `benchConfig` (`phimq-config.ts`).
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { stringify } from 'yaml'
import { loadConfigFile } from '../src/config/load.js'
import { startServer } from '../src/server.js'
import { benchConfig, masterKeyPath, type PhimqBenchOptions as Options } from './phimq-config.js'

function writeConfig(o: Options): string {
  mkdirSync(o.dir, { recursive: true })
  // a throwaway 32-byte master key for the encrypted store, new for every run
  if (o.variant === 'sqlite') {
    // and an empty store: the last run's file is sealed with the last key
    for (const f of ['store.db', 'store.db-wal', 'store.db-shm'])
      rmSync(join(o.dir, f), { force: true })
    writeFileSync(masterKeyPath(o.dir), randomBytes(32).toString('hex'), { mode: 0o600 })
  }
  const file = join(o.dir, `phimq-${o.variant}-${o.listener}.yaml`)
  writeFileSync(file, stringify(benchConfig(o)))
  return file
}

function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  // the temp file's path says nothing to a reader of the table
  return text
    .replace(/config \S+ is invalid: /, '')
    .replace(/\s+/g, ' ')
    .slice(0, 160)
}

/** Which listeners can run here: null for yes, else why not. */
function probe(o: Options): Record<string, string | null> {
  const out: Record<string, string | null> = { core: null }
  for (const listener of ['plain', 'mtls'] as const) {
    try {
      loadConfigFile(writeConfig({ ...o, listener }))
      out[listener] = null
    } catch (err) {
      out[listener] = `config refused: ${reasonOf(err)}`
    }
  }
  return out
}

async function serve(o: Options): Promise<void> {
  const server = await startServer(loadConfigFile(writeConfig(o)))
  const ports = server.listeners.map((l) => `${l.name}:${l.port}`).join(' ')
  console.error(`phimq ${o.variant} pid ${process.pid} listening ${ports}`)

  let closing = false
  const stop = (): void => {
    if (closing) return
    closing = true
    setTimeout(() => process.exit(0), 2000).unref()
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

function parse(): Options & { readonly probe: boolean } {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string', default: 'bare' },
      listener: { type: 'string', default: 'plain' },
      port: { type: 'string', default: '21883' },
      pki: { type: 'string', default: '' },
      dir: { type: 'string', default: '' },
      probe: { type: 'boolean', default: false },
    },
  })
  const variant =
    values.variant === 'shipped' || values.variant === 'sqlite' ? values.variant : 'bare'
  const listener = values.listener === 'mtls' ? 'mtls' : 'plain'
  if (values.dir === '') throw new Error('--dir is required')
  return {
    variant,
    listener,
    port: Number(values.port),
    pki: values.pki,
    dir: values.dir,
    probe: values.probe,
  }
}

const options = parse()
if (options.probe) console.log(JSON.stringify(probe(options)))
else await serve(options)
