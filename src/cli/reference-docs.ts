/**
 * Generated reference pages: `docs/configuration.md` from the configuration
 * schema (the same JSON Schema as `schema/phimq.schema.json`) and
 * `docs/cli.md` from the commands' own help. `npm run schema` writes them
 * (see write-reference-docs.ts); test/cli/reference-docs.test.ts fails when
 * a committed page is stale. Tables are aligned the way Biome formats
 * Markdown, so `biome check` leaves the files as written.
 */
import type { Command } from 'commander'
import { z } from 'zod'
import { configSchema } from '../config/schema.js'
import { buildProgram } from './program.js'

/** A JSON Schema node, as much of it as the reference reads. */
interface Node {
  type?: string
  const?: unknown
  enum?: unknown[]
  default?: unknown
  minimum?: number
  maximum?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  pattern?: string
  format?: string
  items?: Node
  properties?: Record<string, Node>
  required?: string[]
  oneOf?: Node[]
  anyOf?: Node[]
  additionalProperties?: boolean | Node
}

/** Where each top-level section is explained. */
const SECTION_PAGES: Record<string, string> = {
  environment: '[security.md](security.md)',
  nodeId: '[audit.md](audit.md)',
  dataDir: '[architecture.md](architecture.md)',
  listeners: '[listeners.md](listeners.md), [pki.md](pki.md)',
  limits: '[wire-checks.md](wire-checks.md)',
  store: '[store.md](store.md)',
  audit: '[audit.md](audit.md)',
  alerts: '[audit.md](audit.md)',
  metrics: '[audit.md](audit.md)',
  policy: '[policy.md](policy.md)',
  log: '[audit.md](audit.md)',
}

type Row = [key: string, type: string, required: string, fallback: string, allowed: string]

function code(value: unknown): string {
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``
}

/** Escape what would break a table cell. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ')
}

function variants(node: Node): Node[] | undefined {
  return node.oneOf ?? node.anyOf
}

/** The property whose `const` tells the variants of a union apart (`type`, `from`, `format`). */
function discriminator(options: Node[]): string | undefined {
  const first = options[0]?.properties
  if (!first) return undefined
  return Object.keys(first).find((key) =>
    options.every((o) => o.properties?.[key]?.const !== undefined),
  )
}

function typeOf(node: Node): string {
  if (node.const !== undefined) return code(node.const)
  const options = variants(node)
  if (options) return [...new Set(options.map(typeOf))].join(' or ')
  if (node.type === 'array') return `${node.items ? typeOf(node.items) : 'any'}[]`
  if (node.type === 'object' && !node.properties) return 'map'
  return node.type ?? 'any'
}

function allowedOf(node: Node): string {
  const parts: string[] = []
  if (node.enum) parts.push(node.enum.map(code).join(', '))
  const max = node.maximum === Number.MAX_SAFE_INTEGER ? undefined : node.maximum
  if (node.minimum !== undefined && max === undefined) parts.push(`>= ${node.minimum}`)
  else if (max !== undefined) parts.push(`${node.minimum ?? ''}..${max}`)
  if (node.minLength !== undefined && node.minLength > 1) parts.push(`length >= ${node.minLength}`)
  if (node.maxLength !== undefined) parts.push(`length <= ${node.maxLength}`)
  if (node.minItems !== undefined) parts.push(`at least ${node.minItems}`)
  if (node.pattern !== undefined) parts.push(`matches ${code(node.pattern)}`)
  if (node.format !== undefined) parts.push(node.format)
  if (node.items?.enum) parts.push(`each ${allowedOf(node.items)}`)
  return parts.join('; ')
}

function fallbackOf(node: Node): string {
  if (node.default === undefined) return ''
  const text = JSON.stringify(node.default)
  return text.length > 40 ? 'see section' : code(node.default)
}

/** Rows for `node`'s properties under `path`, depth first. */
function rowsOf(node: Node, path: string, out: Row[]): Row[] {
  const required = new Set(node.required ?? [])
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const key = path === '' ? name : `${path}.${name}`
    out.push([
      code(key),
      typeOf(child),
      required.has(name) ? 'yes' : '',
      fallbackOf(child),
      allowedOf(child),
    ])
    descend(child, key, out)
  }
  return out
}

/** Into objects, arrays of objects and unions of objects. */
function descend(node: Node, key: string, out: Row[]): void {
  if (node.properties) {
    rowsOf(node, key, out)
    return
  }
  if (node.type === 'array' && node.items) {
    descend(node.items, `${key}[]`, out)
    return
  }
  const options = variants(node)?.filter((o) => o.properties)
  if (!options || options.length === 0) return
  const tag = discriminator(options)
  options.forEach((option, i) => {
    const label = tag ? `${tag}=${String(option.properties?.[tag]?.const)}` : `variant ${i + 1}`
    rowsOf(option, `${key}(${label})`, out)
  })
}

/** A Markdown table with columns padded as Biome pads them. */
export function renderTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows].map((r) => r.map(cell))
  const widths = header.map((_, i) => Math.max(3, ...all.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]): string =>
    `| ${r.map((c, i) => c.padEnd(widths[i] ?? 3)).join(' | ')} |`
  const rule = `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`
  return [line(all[0] ?? []), rule, ...all.slice(1).map(line)].join('\n')
}

/** `docs/configuration.md`. */
export function renderConfigReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input' }) as Node
  const required = new Set(schema.required ?? [])
  const sections = Object.entries(schema.properties ?? {})
  const parts = [
    '# Configuration reference',
    'Generated from the zod schema (`src/config/schema.ts`, the same as `schema/phimq.schema.json`)' +
      ' by `npm run schema`: do not edit by hand; `test/cli/reference-docs.test.ts` fails when this' +
      ' page is stale. What each key means and when it matters is on the page named for its section;' +
      ' `phimq init` writes a commented example (`.phimq/phimq.yaml`).',
    'The file is YAML. An unknown key or a wrong type stops the start with the key and its line' +
      ' (`PHIMQ_CONFIG_INVALID`). Relative paths are taken from the folder of the config file.' +
      ' `key[]` is an item of a list; `key(type=mqtts)` the keys of one kind of item.',
    renderTable(
      ['section', 'required', 'explained in'],
      sections.map(([name]) => [
        `[\`${name}\`](#${name.toLowerCase()})`,
        required.has(name) ? 'yes' : '',
        SECTION_PAGES[name] ?? '',
      ]),
    ),
  ]
  for (const [name, node] of sections) {
    parts.push(`## ${name}`)
    const rows: Row[] = [
      [
        code(name),
        typeOf(node),
        required.has(name) ? 'yes' : '',
        fallbackOf(node),
        allowedOf(node),
      ],
    ]
    descend(node, name, rows)
    parts.push(renderTable(['key', 'type', 'required', 'default', 'allowed'], rows))
  }
  return `${parts.join('\n\n')}\n`
}

/** Every command, depth first, with its full name. */
function commandsOf(cmd: Command, prefix: string): Array<[string, Command]> {
  const name = prefix === '' ? cmd.name() : `${prefix} ${cmd.name()}`
  return [[name, cmd], ...cmd.commands.flatMap((sub) => commandsOf(sub, name))]
}

/** `docs/cli.md`: the help of every `phimq` command, 100 columns, no colours. */
export function renderCliReference(): string {
  const commands = commandsOf(buildProgram(), '')
  const parts = [
    '# Command-line reference',
    'Generated from the commands themselves (`src/cli/program.ts`) by `npm run schema`: do not' +
      ' edit by hand; `test/cli/reference-docs.test.ts` fails when this page is stale. Run' +
      ' `npx phimq <command> --help` for the same text. Errors print one line with the error code' +
      ' (see [errors.md](errors.md)) and exit with status 2.',
    commands.map(([name]) => `- [\`${name}\`](#${name.replaceAll(' ', '-')})`).join('\n'),
  ]
  for (const [name, cmd] of commands) {
    cmd.configureOutput({ getOutHelpWidth: () => 100, getOutHasColors: () => false })
    parts.push(`## ${name}`, `\`\`\`\n${cmd.helpInformation().trimEnd()}\n\`\`\``)
  }
  return `${parts.join('\n\n')}\n`
}
