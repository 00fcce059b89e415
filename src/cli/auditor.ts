/**
 * `phimq auditor add|list|remove`: the people who may read the audit
 * trail with `phimq audit` (C27). Run by the operator who owns the data
 * directory; each auditor gets a password (Argon2id) and a TOTP secret,
 * shown once as an `otpauth://` URI for their authenticator app.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import {
  AUDITOR_PASSWORD_MIN_CHARS,
  addAuditor,
  listAuditors,
  removeAuditor,
} from '../audit/auditors.js'
import { loadConfigFile } from '../config/load.js'
import { AuditorInvalidError } from '../errors.js'
import { AUDITOR_PASSWORD_ENV } from './audit-access.js'
import { CONFIG_FILE, DEFAULT_DATA_DIR } from './init.js'
import { promptHidden } from './prompt.js'

/** Where the commands write and what they read; tests pass their own. */
export interface AuditorCliIo {
  out(line: string): void
  /** Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>> | undefined
  prompt?(question: string): Promise<string | undefined>
}

const processIo: AuditorCliIo = {
  out: (line) => console.log(line),
  prompt: promptHidden,
}

interface DirOptions {
  dir: string
  config?: string
}

/** Add the `auditor` command group to the `phimq` program. */
export function registerAuditorCommands(program: Command, io: AuditorCliIo = processIo): Command {
  const auditor = program
    .command('auditor')
    .description('manage who may read the audit trail (password and one-time codes)')

  withDir(auditor.command('add <name>'))
    .description('add an auditor; prints the one-time code enrolment URI once')
    .option(
      '--password-file <file>',
      `file holding the new password (else $${AUDITOR_PASSWORD_ENV}, else a prompt)`,
    )
    .action(async (name: string, opts: DirOptions & { passwordFile?: string }) => {
      const password = await newPassword(opts.passwordFile, io)
      const enrolment = await addAuditor({ dataDir: dataDirOf(opts), name, password })
      io.out(
        `auditor ${name} added. Load this into an authenticator app now; it is not shown again:`,
      )
      io.out(`  ${enrolment.otpauthUri}`)
      io.out(`  (secret, to type in: ${enrolment.secret})`)
    })

  withDir(auditor.command('list'))
    .description('list the auditors')
    .action((opts: DirOptions) => {
      const all = listAuditors(dataDirOf(opts))
      for (const a of all) io.out(`${a.name} added ${a.createdAt}`)
      io.out(`${all.length} auditor(s)`)
    })

  withDir(auditor.command('remove <name>'))
    .description('remove an auditor')
    .action((name: string, opts: DirOptions) => {
      if (!removeAuditor(dataDirOf(opts), name)) {
        throw new AuditorInvalidError(`no auditor ${name}`)
      }
      io.out(`auditor ${name} removed`)
    })

  return auditor
}

function withDir(command: Command): Command {
  return command
    .option('--dir <dir>', 'data directory', DEFAULT_DATA_DIR)
    .option('-c, --config <file>', 'configuration file (default: <dir>/phimq.yaml)')
}

/** The data directory named by the config, where `phimq audit` looks for auditors. */
function dataDirOf(opts: DirOptions): string {
  return loadConfigFile(opts.config ?? join(opts.dir, CONFIG_FILE)).dataDir
}

async function newPassword(file: string | undefined, io: AuditorCliIo): Promise<string> {
  if (file !== undefined) return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
  const fromEnv = (io.env ?? process.env)[AUDITOR_PASSWORD_ENV]
  if (fromEnv !== undefined) return fromEnv
  const first = await io.prompt?.(
    `new auditor password (${AUDITOR_PASSWORD_MIN_CHARS}+ characters): `,
  )
  if (first === undefined) {
    throw new AuditorInvalidError(
      `no password: set ${AUDITOR_PASSWORD_ENV} or pass --password-file`,
    )
  }
  if ((await io.prompt?.('again: ')) !== first) {
    throw new AuditorInvalidError('the two passwords differ')
  }
  return first
}
