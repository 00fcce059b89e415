/**
 * `phimq audit verify` and `phimq audit search` (C27). Each read is
 * recorded before anything is read, as an `audit.read` record in the trail:
 *
 * 1. the read is written as a pending file in `<trail>/pending-reads/`;
 *    if that fails, the command refuses to read (fail closed);
 * 2. the config that owns the trail (`--config`, else `phimq.yaml` beside
 *    the trail directory) names the data directory; if a broker holds its
 *    `phimq.pid`, the broker records the pending read within a second
 *    (one writer per trail);
 * 3. otherwise the command takes `phimq.pid` itself, opens the audit
 *    pipeline (which records every pending read), closes it and lets go.
 *
 * Without an owning config, or when the signing key is not readable by
 * this user, the read stays pending until the broker's next start; the
 * command says so on stderr.
 */
import { createPublicKey } from 'node:crypto'
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { userInfo } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import type { Command } from 'commander'
import {
  type AuditReadFilters,
  type AuditReadRequest,
  auditReadEvent,
  queueAuditRead,
} from '../audit/access.js'
import { createAuditPipeline } from '../audit/pipeline.js'
import { type SearchQuery, searchTrail } from '../audit/search.js'
import { verifyTrail } from '../audit/verify.js'
import { type LoadedConfig, loadConfigFile } from '../config/load.js'
import { lockDataDir } from './start.js'

/** Where the commands write; tests pass their own. */
export interface AuditCliIo {
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
}

/** Add the `audit` command group to the `phimq` program. */
export function registerAuditCommands(program: Command, io: AuditCliIo = processIo): Command {
  const audit = program.command('audit').description('check and search the audit trail')

  audit
    .command('verify')
    .description('check hash chain and checkpoint signatures; name the first broken record')
    .requiredOption('--dir <dir>', 'audit trail directory')
    .option('--key <pem>', 'trusted public key (default: the copies in --dir)')
    .option('-c, --config <file>', 'config owning the trail (default: phimq.yaml beside --dir)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: VerifyOptions) => {
      if (await recordRead(opts, { command: 'verify', trustedKey: opts.key !== undefined }, io)) {
        runVerify(opts, io)
      }
    })

  audit
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
    .action(async (opts: SearchOptions) => {
      const filters: AuditReadFilters = {
        from: opts.from,
        to: opts.to,
        types: splitTypes(opts.type),
        client: opts.client,
        topic: opts.topic,
      }
      if (await recordRead(opts, { command: 'search', filters }, io)) runSearch(opts, io)
    })

  return audit
}

interface VerifyOptions {
  dir: string
  key?: string
  config?: string
  json?: boolean
}

/**
 * Step 1–3 of the header: true once the read is recorded or queued for
 * the trail's owner; false (exit 2) when it cannot even be queued.
 */
async function recordRead(
  opts: { dir: string; config?: string },
  what: Pick<AuditReadRequest, 'command' | 'filters' | 'trustedKey'>,
  io: AuditCliIo,
): Promise<boolean> {
  const who = currentUser()
  const event = auditReadEvent({
    ...what,
    ...who,
    pid: process.pid,
    requestedAt: new Date().toISOString(),
  })
  try {
    queueAuditRead(opts.dir, event)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    io.err(`cannot record this read of the audit trail (${code}); nothing was read (C27)`)
    io.exit(2)
    return false
  }
  const owner = ownerConfig(opts)
  if (owner === undefined) {
    io.err('note: no config owns this trail; the read is recorded when its broker next starts')
    return true
  }
  let unlock: () => void
  try {
    unlock = lockDataDir(owner.dataDir)
  } catch {
    // A running broker holds the trail: it records the pending read itself.
    return true
  }
  try {
    // Opening the pipeline records every pending read; closing seals the segment.
    await createAuditPipeline({ config: owner.config, dataDir: owner.dataDir }).close()
  } catch (err) {
    const code = (err as { code?: unknown }).code ?? 'error'
    io.err(`note: cannot open the trail to record this read (${String(code)}); it stays pending`)
  } finally {
    unlock()
  }
  return true
}

/** The loaded config whose trail directory is `opts.dir`, if there is one. */
function ownerConfig(opts: { dir: string; config?: string }): LoadedConfig | undefined {
  const path = opts.config ?? join(dirname(resolve(opts.dir)), 'phimq.yaml')
  if (opts.config === undefined && !existsSync(path)) return undefined
  const loaded = loadConfigFile(path)
  const audit = loaded.config.audit
  if (audit.sink !== 'trail') return undefined
  const trailDir = isAbsolute(audit.trail.dir)
    ? audit.trail.dir
    : resolve(loaded.dataDir, audit.trail.dir)
  return samePath(trailDir, opts.dir) ? loaded : undefined
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b)
  } catch {
    return resolve(a) === resolve(b)
  }
}

function currentUser(): { user: string; uid?: number | undefined } {
  try {
    const info = userInfo()
    return { user: info.username, uid: info.uid >= 0 ? info.uid : undefined }
  } catch {
    return { user: process.env.USER ?? 'unknown' }
  }
}

function splitTypes(types: string | undefined): string[] | undefined {
  return types?.split(',').map((t) => t.trim())
}

function runVerify(opts: VerifyOptions, io: AuditCliIo): void {
  const publicKeys = opts.key ? [createPublicKey(readFileSync(opts.key, 'utf8'))] : undefined
  const report = verifyTrail({ dir: opts.dir, publicKeys })
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

interface SearchOptions {
  dir: string
  from?: string
  to?: string
  type?: string
  client?: string
  topic?: string
  config?: string
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
