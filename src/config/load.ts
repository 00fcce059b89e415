/**
 * Reads and validates the configuration file. Every problem is reported with
 * its key path and line, and all problems are reported at once.
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml'
import { ConfigError, InsecureListenerError } from '../errors.js'
import { checkProdRefusals } from './prod-checks.js'
import { type Config, configSchema } from './schema.js'

/** A validated configuration and where it came from. */
export interface LoadedConfig {
  readonly config: Config
  /** Absolute path of the file, or `<inline>`. */
  readonly source: string
  /** `dataDir` made absolute against the file's folder. */
  readonly dataDir: string
}

/** Read a YAML file and validate it. Throws `ConfigError` naming key and line. */
export function loadConfigFile(path: string): LoadedConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}`, { cause: err })
  }
  const base = dirname(resolve(path))
  return parseConfig(text, resolve(path), base)
}

/** Validate YAML text; `baseDir` anchors relative paths. */
export function parseConfig(text: string, source = '<inline>', baseDir = '.'): LoadedConfig {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const details = doc.errors.map((e) => {
      const at = e.linePos?.[0]
      return at ? `line ${at.line}: ${e.code.toLowerCase()}` : e.code.toLowerCase()
    })
    throw new ConfigError(`config ${source} is not valid yaml: ${details.join('; ')}`)
  }
  const result = configSchema.safeParse(doc.toJS())
  if (!result.success) {
    const details = result.error.issues.flatMap((issue) => {
      // An unknown key is reported at the key itself, one line each.
      const paths =
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((k) => [...issue.path, k])
          : [issue.path]
      const message = issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message
      return paths.map((path) => {
        const key = path.length > 0 ? path.map(String).join('.') : '(root)'
        return `${key}${lineOf(doc, lines, path)}: ${message.toLowerCase()}`
      })
    })
    throw new ConfigError(`config ${source} is invalid: ${details.join('; ')}`)
  }
  const config = result.data
  checkListenerSafety(config)
  checkProdRefusals(config, baseDir)
  return { config, source, dataDir: resolve(baseDir, config.dataDir) }
}

function lineOf(
  doc: ReturnType<typeof parseDocument>,
  lines: LineCounter,
  path: ReadonlyArray<PropertyKey>,
): string {
  // Walk up until a node exists: a missing key has no node of its own.
  for (let n = path.length; n >= 0; n--) {
    const parent = doc.getIn(path.slice(0, n - 1) as unknown[], true)
    const key = path[n - 1]
    if (n > 0 && isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === key)
      if (pair && isNode(pair.key) && pair.key.range) return at(lines, pair.key.range[0])
    }
    const node = doc.getIn(path.slice(0, n) as unknown[], true)
    if (isNode(node) && node.range) return at(lines, node.range[0])
  }
  return ''
}

function at(lines: LineCounter, offset: number): string {
  return ` (line ${lines.linePos(offset).line})`
}

/** Loopback host names and addresses a dev-only plaintext listener may bind. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  if (isIP(host) === 6) return host === '::1'
  return false
}

/**
 * No plaintext listener outside `dev`, and in `dev` only on loopback
 * (control C05: no plaintext listeners).
 */
export function checkListenerSafety(config: Config): void {
  for (const listener of config.listeners) {
    if (listener.type !== 'tcp') continue
    if (config.environment !== 'dev') {
      throw new InsecureListenerError(
        `listener ${listener.name}: plaintext tcp is refused in environment ${config.environment}; ` +
          'use an mqtts or wss listener with certificates (see docs/listeners.md)',
      )
    }
    if (!isLoopbackHost(listener.host)) {
      throw new InsecureListenerError(
        `listener ${listener.name}: plaintext tcp may bind only a loopback address, ` +
          `not ${listener.host}; set host: 127.0.0.1`,
      )
    }
  }
}
