/**
 * `phimq pki`: the certificate authority from the command line.
 *
 *   phimq pki init   [--dir D] [--key-type ec-p256|ec-p384] [--org NAME]
 *   phimq pki issue  --kind device|app|server|admin --tenant T --id ID [--days N] [--env E] --out DIR
 *   phimq pki renew  SERIAL --out DIR
 *   phimq pki revoke SERIAL [--reason R]      (writes a fresh CRL unless --no-crl)
 *   phimq pki crl    [--days N]
 *   phimq pki list   [--json]
 *   phimq pki serve  [--host 127.0.0.1] [--port 8990]   (OCSP and CRL over HTTP)
 *
 * The CA passphrase comes from `PHIMQ_CA_PASSPHRASE` or `--passphrase-file`,
 * never from the command line (it would land in shell history and `ps`).
 */
import { readFileSync } from 'node:fs'
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Command, InvalidArgumentError, Option } from 'commander'
import { ENVIRONMENTS } from '../config/schema.js'
import { CaPassphraseError } from '../errors.js'
import {
  type CertificateAuthority,
  type IssuedCertificate,
  initCa,
  openCa,
  REVOCATION_REASONS,
} from '../pki/ca.js'
import { startCaHttp } from '../pki/ca-http.js'
import { KEY_TYPES, type KeyType } from '../pki/crypto.js'
import { CERT_KINDS, type CertKind } from '../pki/profiles.js'

/** Default CA directory, relative to the working directory. */
export const DEFAULT_CA_DIR = '.phimq/ca'
export const PASSPHRASE_ENV = 'PHIMQ_CA_PASSPHRASE'

interface CommonOptions {
  dir: string
  passphraseFile?: string
}

/** Add `pki` and its subcommands to the `phimq` program. */
export function registerPkiCommands(program: Command): Command {
  const pki = program.command('pki').description('run the certificate authority')

  pki
    .command('init')
    .description('create a root and an intermediate CA with encrypted keys')
    .addOption(dirOption())
    .addOption(passphraseFileOption())
    .addOption(new Option('--key-type <type>', 'CA key type').choices(KEY_TYPES).default('ec-p256'))
    .option('--org <name>', 'organisation in the CA names', 'phimq')
    .action(async (opts: CommonOptions & { keyType: KeyType; org: string }) => {
      const ca = await withPassphrase(opts, (passphrase) =>
        initCa(opts.dir, passphrase, { keyType: opts.keyType, organization: opts.org }),
      )
      console.log(`ca created in ${ca.dir}; trust anchor ${join(ca.dir, 'root.crt')}`)
    })

  pki
    .command('issue')
    .description('issue a certificate and its key into --out')
    .addOption(dirOption())
    .addOption(passphraseFileOption())
    .addOption(
      new Option('--kind <kind>', 'certificate kind').choices(CERT_KINDS).makeOptionMandatory(),
    )
    .requiredOption('--tenant <tenant>', 'tenant in the SAN URI')
    .requiredOption('--id <id>', 'identity id in the SAN URI and CN')
    .option('--role <role>', 'role in the SAN URI (default: the kind)')
    .option('--days <n>', 'lifetime in days (default per kind)', positiveInt)
    .option('--dns <name...>', 'extra SAN DNS names')
    .option('--ip <addr...>', 'extra SAN IP addresses')
    .option('--ocsp-url <url>', 'OCSP responder URL to write into the certificate (AIA)')
    .addOption(
      new Option(
        '--env <env>',
        'environment written as SAN URI urn:phimq:env:<env>; a listener refuses another (C18)',
      ).choices(ENVIRONMENTS),
    )
    .requiredOption('--out <dir>', 'where to write <id>.crt, <id>.key and ca.crt')
    .action(async (opts: IssueOptions) => {
      const ca = await openSigningCa(opts)
      const issued = await ca.issueCertificate({
        kind: opts.kind,
        tenant: opts.tenant,
        id: opts.id,
        ...(opts.role !== undefined ? { role: opts.role } : {}),
        ...(opts.days !== undefined ? { days: opts.days } : {}),
        ...(opts.dns !== undefined ? { dnsNames: opts.dns } : {}),
        ...(opts.ip !== undefined ? { ipAddresses: opts.ip } : {}),
        ...(opts.ocspUrl !== undefined ? { ocspUrl: opts.ocspUrl } : {}),
        ...(opts.env !== undefined ? { env: opts.env } : {}),
      })
      await writeIssued(opts.out, issued)
    })

  pki
    .command('renew')
    .description('issue a successor of a certificate (same identity, new key)')
    .argument('<serial>', 'serial of the certificate to renew (hex)')
    .addOption(dirOption())
    .addOption(passphraseFileOption())
    .option('--days <n>', 'lifetime in days (default per kind)', positiveInt)
    .requiredOption('--out <dir>', 'where to write the new certificate and key')
    .action(async (serial: string, opts: CommonOptions & { days?: number; out: string }) => {
      const ca = await openSigningCa(opts)
      const issued = await ca.renew(serial, opts.days !== undefined ? { days: opts.days } : {})
      await writeIssued(opts.out, issued)
    })

  pki
    .command('revoke')
    .description('revoke a certificate and write a fresh CRL')
    .argument('<serial>', 'serial of the certificate (hex)')
    .addOption(dirOption())
    .addOption(passphraseFileOption())
    .addOption(
      new Option('--reason <reason>', 'RFC 5280 reason')
        .choices([...REVOCATION_REASONS.keys()])
        .default('unspecified'),
    )
    .option('--no-crl', 'do not write a CRL now')
    .action(async (serial: string, opts: CommonOptions & { reason: string; crl: boolean }) => {
      const ca = await openSigningCa(opts)
      const record = await ca.revoke(serial, opts.reason)
      console.log(`revoked ${record.serial} (${record.uri})`)
      if (opts.crl) await printCrl(ca)
    })

  pki
    .command('crl')
    .description('sign and write a fresh CRL')
    .addOption(dirOption())
    .addOption(passphraseFileOption())
    .option('--days <n>', 'days until nextUpdate', positiveInt)
    .action(async (opts: CommonOptions & { days?: number }) => {
      const ca = await openSigningCa(opts)
      await printCrl(ca, opts.days)
    })

  pki
    .command('serve')
    .description('answer OCSP at /ocsp and serve the CRL at /crl.pem on a loopback port')
    .addOption(dirOption())
    .addOption(passphraseFileOption())
    .option('--host <host>', 'loopback address', '127.0.0.1')
    .option('--port <port>', 'port', positiveInt, 8990)
    .action(async (opts: CommonOptions & { host: string; port: number }) => {
      const ca = await openSigningCa(opts)
      const http = await startCaHttp(ca, { host: opts.host, port: opts.port })
      console.log(`ocsp ${http.ocspUrl}  crl ${http.crlUrl}`)
      const stop = (): void => {
        void http.close().then(() => process.exit(0))
      }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })

  pki
    .command('list')
    .description('list issued certificates with status and expiry')
    .addOption(dirOption())
    .option('--json', 'print JSON')
    .option(
      '--expiring <days>',
      'only valid certificates expiring within this many days',
      positiveInt,
    )
    .action(async (opts: { dir: string; json?: boolean; expiring?: number }) => {
      const ca = await openCa(opts.dir)
      const rows = opts.expiring !== undefined ? ca.expiring(opts.expiring) : ca.list()
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2))
        return
      }
      for (const r of rows) {
        console.log(
          [r.serial, r.kind, r.status, r.notAfter, `${r.expiresInDays}d`, r.uri].join('  '),
        )
      }
    })

  return pki
}

interface IssueOptions extends CommonOptions {
  kind: CertKind
  tenant: string
  id: string
  role?: string
  days?: number
  dns?: string[]
  ip?: string[]
  ocspUrl?: string
  env?: string
  out: string
}

function dirOption(): Option {
  return new Option('--dir <dir>', 'CA directory').default(DEFAULT_CA_DIR)
}

function passphraseFileOption(): Option {
  return new Option(
    '--passphrase-file <file>',
    `file holding the CA passphrase (else $${PASSPHRASE_ENV})`,
  )
}

/** The passphrase and where it came from, for error messages (never the value). */
interface Passphrase {
  readonly value: string
  readonly source: string
}

function readPassphrase(opts: CommonOptions): Passphrase {
  if (opts.passphraseFile !== undefined) {
    const value = readFileSync(opts.passphraseFile, 'utf8').replace(/\r?\n$/, '')
    return { value, source: '--passphrase-file' }
  }
  const fromEnv = process.env[PASSPHRASE_ENV]
  if (fromEnv === undefined || fromEnv === '') {
    throw new CaPassphraseError(`set ${PASSPHRASE_ENV} or pass --passphrase-file`)
  }
  return { value: fromEnv, source: `$${PASSPHRASE_ENV}` }
}

/**
 * Run `work` with the passphrase; a passphrase error says which source was
 * read, so an operator using a file is not sent to the variable (finding 10).
 */
async function withPassphrase<T>(
  opts: CommonOptions,
  work: (passphrase: string) => Promise<T>,
): Promise<T> {
  const passphrase = readPassphrase(opts)
  try {
    return await work(passphrase.value)
  } catch (err) {
    if (!(err instanceof CaPassphraseError)) throw err
    throw new CaPassphraseError(`${err.message} (read from ${passphrase.source})`, { cause: err })
  }
}

function openSigningCa(opts: CommonOptions): Promise<CertificateAuthority> {
  return withPassphrase(opts, (passphrase) => openCa(opts.dir, passphrase))
}

function positiveInt(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a positive integer')
  return n
}

async function writeIssued(out: string, issued: IssuedCertificate): Promise<void> {
  await mkdir(out, { recursive: true })
  const base = join(out, issued.record.id)
  await writeFile(`${base}.crt`, issued.chainPem)
  await writeKeyFile(`${base}.key`, issued.keyPem)
  await writeFile(join(out, 'ca.crt'), issued.caPem)
  const r = issued.record
  console.log(`issued ${r.serial} ${r.uri} until ${r.notAfter}`)
  console.log(`fingerprint ${r.fingerprint256}`)
  console.log(`wrote ${base}.crt ${base}.key ${join(out, 'ca.crt')}`)
}

/**
 * Write a private key readable by its owner only, whatever was at `path`
 * before: `writeFile` keeps an existing file's mode (a 0666 key stayed
 * 0666, finding 8). A fresh file (`wx`) is renamed over the old one, so
 * the key is never readable by others, not even for a moment.
 */
async function writeKeyFile(path: string, pem: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  try {
    await writeFile(tmp, pem, { mode: 0o600, flag: 'wx' })
    await chmod(tmp, 0o600)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

async function printCrl(ca: CertificateAuthority, days?: number): Promise<void> {
  const crl = await ca.writeCrl(days !== undefined ? { days } : {})
  console.log(
    `crl #${crl.crlNumber} written to ${crl.path}; next update ${crl.nextUpdate.toISOString()}`,
  )
}
