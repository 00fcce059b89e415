/**
 * Reads and validates the configuration file. Every problem is reported with
 * its key path and line, and all problems are reported at once.
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml'
import { ConfigError, type ConfigProblem, InsecureListenerError } from '../errors.js'
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
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new ConfigError(`cannot read config file ${path} (${code})`, {
      cause: err,
      problems: [{ code }],
    })
  }
  const base = dirname(resolve(path))
  return parseConfig(text, resolve(path), base)
}

/** Validate YAML text; `baseDir` anchors relative paths. */
export function parseConfig(text: string, source = '<inline>', baseDir = '.'): LoadedConfig {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  const first = doc.errors[0]
  if (first) {
    // One broken line often yields a cascade of errors: name the first, once, where it is.
    const { line, col } = lines.linePos(first.pos[0])
    const code = first.code.toLowerCase()
    const more = doc.errors.length > 1 ? ` (${doc.errors.length - 1} more after it)` : ''
    throw new ConfigError(
      `config ${source} is not valid yaml: line ${line} column ${col}: ${code}${more}`,
      { problems: [{ line, column: col, code }] },
    )
  }
  const result = configSchema.safeParse(doc.toJS())
  if (!result.success) {
    const details: string[] = []
    const problems: ConfigProblem[] = []
    for (const issue of result.error.issues) {
      // An unknown key is reported at the key itself, one line each.
      const paths =
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((k) => [...issue.path, k])
          : [issue.path]
      const message = issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message
      for (const path of paths) {
        const key = path.length > 0 ? path.map(String).join('.') : '(root)'
        const line = lineOf(doc, lines, path)
        details.push(
          `${key}${line === undefined ? '' : ` (line ${line})`}: ${message.toLowerCase()}`,
        )
        problems.push({ key, line, code: issue.code })
      }
    }
    throw new ConfigError(`config ${source} is invalid: ${details.join('; ')}`, { problems })
  }
  const config = result.data
  checkListenerSafety(config)
  checkProdRefusals(config, baseDir)
  return { config, source, dataDir: resolve(baseDir, config.dataDir) }
}

/** The line of the key at `path`, or of its nearest parent that exists. */
function lineOf(
  doc: ReturnType<typeof parseDocument>,
  lines: LineCounter,
  path: ReadonlyArray<PropertyKey>,
): number | undefined {
  // Walk up until a node exists: a missing key has no node of its own.
  for (let n = path.length; n >= 0; n--) {
    const parent = doc.getIn(path.slice(0, n - 1) as unknown[], true)
    const key = path[n - 1]
    if (n > 0 && isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === key)
      if (pair && isNode(pair.key) && pair.key.range) return lines.linePos(pair.key.range[0]).line
    }
    const node = doc.getIn(path.slice(0, n) as unknown[], true)
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line
  }
  return undefined
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
