/**
 * `phimq audit verify` and `phimq audit search` (C27). Before anything is
 * read, the reader is checked (an auditor with password and one-time
 * code, or `--no-auditor` in `dev`) and the read, granted or denied, is
 * recorded as an `audit.read` record: see `audit-access.ts`.
 */
import { createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { type Command, Option } from 'commander'
import type { AuditReadFilters } from '../audit/access.js'
import { type SearchQuery, searchTrail } from '../audit/search.js'
import { verifyTrail } from '../audit/verify.js'
import {
  type AccessIo,
  AUDITOR_OTP_ENV,
  AUDITOR_PASSWORD_ENV,
  admitRead,
  type ReaderOptions,
} from './audit-access.js'
import { promptHidden } from './prompt.js'

/** Where the commands write; tests pass their own. */
export interface AuditCliIo extends AccessIo {
  out(line: string): void
  err(line: string): void
  /** Set the process exit code (non-zero on a broken trail or bad input). */
  exit(code: number): void
  /** True once nobody reads the output any more (the pipe closed): stop searching. */
  closed?(): boolean
}

const processIo: AuditCliIo = {
  out: (line) => console.log(line),
  // A failed write to a closed pipe destroys stdout at once; the EPIPE
  // itself is handled in `main.ts` (exit quietly).
  closed: () => process.stdout.destroyed,
  err: (line) => console.error(line),
  exit: (code) => {
    process.exitCode = code
  },
  prompt: promptHidden,
}

/** Add the `audit` command group to the `phimq` program. */
export function registerAuditCommands(program: Command, io: AuditCliIo = processIo): Command {
  const audit = program.command('audit').description('check and search the audit trail')

  const verify = audit
    .command('verify')
    .description('check hash chain and checkpoint signatures; name the first broken record')
    .requiredOption('--dir <dir>', 'audit trail directory')
    .option('--key <pem>', 'trusted public key (default: the copies in --dir)')
    .option('-c, --config <file>', 'config owning the trail (default: phimq.yaml beside --dir)')
    .option('--json', 'print the report as JSON')
  addReaderOptions(verify).action(async (opts: VerifyOptions) => {
    const what = { command: 'verify', trustedKey: opts.key !== undefined } as const
    const admission = await admitRead(opts, what, io)
    if (!admission) return
    // Verify the files as they are, then record the read: never the other way round.
    runVerify(opts, io, admission.live)
    await admission.record()
  })

  const search = audit
    .command('search')
    .description('print records by time, type, client and topic filter')
    .requiredOption('--dir <dir>', 'audit trail directory')
    .option('--from <time>', 'RFC 3339 time, inclusive')
    .option('--to <time>', 'RFC 3339 time, exclusive')
    .option('--type <types>', 'event types, comma separated; `retained.*` matches a prefix')
    .option('--client <id>', 'client id or identity id')
    .option('--topic <filter>', 'MQTT topic filter, e.g. clinic-a/+/vitals/#')
    .option('-c, --config <file>', 'config owning the trail (default: phimq.yaml beside --dir)')
    .option('--json', 'one JSON record per line')
  addReaderOptions(search).action(async (opts: SearchOptions) => {
    const filters: AuditReadFilters = {
      from: opts.from,
      to: opts.to,
      types: splitTypes(opts.type),
      client: opts.client,
      topic: opts.topic,
    }
    const admission = await admitRead(opts, { command: 'search', filters }, io)
    if (!admission) return
    runSearch(opts, io)
    await admission.record()
  })

  return audit
}

/** `--auditor`, its secrets, and the dev bypass (C27). */
function addReaderOptions(command: Command): Command {
  return command
    .option('--auditor <name>', 'auditor reading the trail (see phimq auditor add)')
    .addOption(
      new Option(
        '--no-auditor',
        'read without an auditor: only for a dev trail (its config and every recorded start)',
      ),
    )
    .option(
      '--password-file <file>',
      `auditor password file (else $${AUDITOR_PASSWORD_ENV}, else a prompt)`,
    )
    .option('--otp <code>', `current one-time code (else $${AUDITOR_OTP_ENV}, else a prompt)`)
}

interface VerifyOptions extends ReaderOptions {
  key?: string
  json?: boolean
}

function splitTypes(types: string | undefined): string[] | undefined {
  return types?.split(',').map((t) => t.trim())
}

function runVerify(opts: VerifyOptions, io: AuditCliIo, live: boolean): void {
  const publicKeys = opts.key ? [createPublicKey(readFileSync(opts.key, 'utf8'))] : undefined
  // Only the segment a running broker writes may be open; every other must be sealed.
  const report = verifyTrail({ dir: opts.dir, publicKeys, live })
  if (opts.json) io.out(JSON.stringify(report))
  else if (report.ok) {
    io.out(
      `audit trail ok: ${report.segments} segments, ${report.records} records, ` +
        `${report.checkpoints} checkpoints, keys ${report.keyIds.join(', ') || 'none'}`,
    )
    for (const w of report.warnings) io.out(`warning: ${w}`)
  } else {
    const b = report.firstBroken
    const seq = b?.seq === undefined ? '' : ` (seq ${b.seq})`
    io.err(`audit trail broken at ${b?.segment} record ${b?.index}${seq}: ${b?.problem}`)
    if (report.problems.length > 1) io.err(`${report.problems.length - 1} further problem(s)`)
  }
  if (report.segments === 0) io.err(`no audit segments in ${opts.dir}`)
  if (!report.ok || report.segments === 0) io.exit(1)
}

interface SearchOptions extends ReaderOptions {
  from?: string
  to?: string
  type?: string
  client?: string
  topic?: string
  json?: boolean
}

function runSearch(opts: SearchOptions, io: AuditCliIo): void {
  const from = parseTime(opts.from)
  const to = parseTime(opts.to)
  if (Number.isNaN(from) || Number.isNaN(to)) {
    io.err('--from and --to take RFC 3339 times, e.g. 2026-06-01T12:00:00Z')
    io.exit(2)
    return
  }
  const query: SearchQuery = {
    from,
    to,
    types: splitTypes(opts.type),
    client: opts.client,
    topic: opts.topic,
  }
  let count = 0
  for (const hit of searchTrail(opts.dir, query)) {
    if (io.closed?.()) return
    count++
    if (opts.json) io.out(JSON.stringify(hit.record))
    else io.out(describe(hit.record))
  }
  if (!opts.json) io.out(`${count} record(s)`)
}

function parseTime(text: string | undefined): number | undefined {
  return text === undefined ? undefined : Date.parse(text)
}

/** One short line per record: time, type, client, topic or filter. */
function describe(record: Readonly<Record<string, unknown>>): string {
  const actor = record.actor as { clientId?: unknown } | undefined
  const client = actor?.clientId ?? record.clientId ?? record.remoteAddress ?? '-'
  const topic = record.topic ?? record.filter ?? '-'
  return [record.time, record.type, client, topic].map(String).join(' ')
}
