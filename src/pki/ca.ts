/**
 * A small certificate authority for phimq deployments and tests: a root and
 * an intermediate CA whose keys stay encrypted at rest, issuing device, app,
 * server and admin certificates with the SAN URI the identity mapping reads,
 * revoking them, and writing CRLs that OpenSSL (and so Node) accepts.
 *
 * Files in the CA directory:
 * - `root.crt`, `intermediate.crt`, `chain.pem` (intermediate then root)
 * - `root.key`, `intermediate.key`: encrypted PKCS#8 (mode 0600)
 * - `ca.json`: the inventory of issued certificates and the CRL number
 * - `crl.pem`: the intermediate's CRL followed by the root's
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as x509 from '@peculiar/x509'
import { CaPassphraseError, CaStateError, CertificateRequestError } from '../errors.js'
import { envUri, isEnvName } from '../identity/environment.js'
import {
  algorithmFor,
  CA_PASSPHRASE_MIN_LENGTH,
  type CryptoKey,
  exportEncryptedPrivateKeyPem,
  exportPrivateKeyPem,
  fingerprint256,
  generateKeyPair,
  importEncryptedPrivateKey,
  type KeyType,
  newSerial,
} from './crypto.js'
import { answerOcspRequest, type OcspCertStatus } from './ocsp.js'
import {
  type CertKind,
  CRL_VALIDITY_DAYS,
  INTERMEDIATE_CA_DAYS,
  identityUri,
  profileFor,
  ROOT_CA_DAYS,
} from './profiles.js'

const DAY_MS = 86_400_000
/** Back-date `notBefore` so a peer whose clock runs slightly behind still accepts. */
const CLOCK_SKEW_MS = 60_000
const STATE_VERSION = 1

/** RFC 5280 5.3.1 reason names accepted by `revoke`. */
export const REVOCATION_REASONS = new Map<string, x509.X509CrlReason>([
  ['unspecified', x509.X509CrlReason.unspecified],
  ['keyCompromise', x509.X509CrlReason.keyCompromise],
  ['affiliationChanged', x509.X509CrlReason.affiliationChanged],
  ['superseded', x509.X509CrlReason.superseded],
  ['cessationOfOperation', x509.X509CrlReason.cessationOfOperation],
])

/** One issued certificate as the inventory keeps it. No key material. */
export interface CertificateRecord {
  readonly serial: string
  readonly kind: CertKind
  readonly tenant: string
  readonly role: string
  readonly id: string
  readonly uri: string
  readonly notBefore: string
  readonly notAfter: string
  readonly fingerprint256: string
  /** The environment written as `urn:phimq:env:<env>` (C18); absent on older certificates. */
  readonly env?: string | undefined
  revokedAt?: string | undefined
  revocationReason?: string | undefined
}

/** A record as `list()` reports it, with the status at the CA's clock. */
export interface CertificateListing extends CertificateRecord {
  readonly status: 'valid' | 'revoked' | 'expired'
  /** Whole days until `notAfter`; negative once expired. */
  readonly expiresInDays: number
}

interface CaState {
  version: number
  keyType: KeyType
  crlNumber: number
  certificates: CertificateRecord[]
}

export interface CaOptions {
  /** Key type of the CA keys; default `ec-p256`. */
  keyType?: KeyType
  /** `O=` of the CA names; default `phimq`. */
  organization?: string
  /** Epoch-millisecond clock; default `Date.now`. */
  now?: () => number
}

export interface IssueRequest {
  kind: CertKind
  tenant: string
  id: string
  /** Role in the SAN URI; default the kind. */
  role?: string
  /** Lifetime in days; default and maximum per kind (see `CERT_PROFILES`). */
  days?: number
  /** Start of validity; default now minus one minute. */
  notBefore?: Date
  /** Let a lifetime above the kind's maximum through (tests of broker-side checks). */
  allowLongLifetime?: boolean
  /** Extra SAN DNS names (server certificates get `localhost` always). */
  dnsNames?: string[]
  /** Extra SAN IP addresses (server certificates get `127.0.0.1` always). */
  ipAddresses?: string[]
  keyType?: KeyType
  /** OCSP responder URL written into the AIA extension (RFC 5280 4.2.2.1). */
  ocspUrl?: string
  /** Environment (`dev`, `test`, `prod` …) written as SAN URI `urn:phimq:env:<env>` (C18). */
  env?: string
  /**
   * A chosen serial (hex) instead of a random one; must be new to this CA.
   * For tests that need two CAs to issue the same serial (C11 matching).
   */
  serial?: string
}

/** What `issueCertificate` returns. The private key is not kept by the CA. */
export interface IssuedCertificate {
  readonly record: CertificateRecord
  readonly certPem: string
  /** Unencrypted PKCS#8: hand it to the holder, do not store it next to the CA. */
  readonly keyPem: string
  /** The leaf then the intermediate: what a client or server presents. */
  readonly chainPem: string
  /** The root, for trust stores and `ca` options. */
  readonly caPem: string
}

export interface CrlWritten {
  readonly path: string
  readonly pem: string
  readonly crlNumber: number
  readonly thisUpdate: Date
  readonly nextUpdate: Date
}

interface SigningKeys {
  root: CryptoKey
  intermediate: CryptoKey
}

/** Create a root and an intermediate CA in `dir` (which must not hold one). */
export async function initCa(
  dir: string,
  passphrase: string,
  options: CaOptions = {},
): Promise<CertificateAuthority> {
  checkPassphrase(passphrase)
  if (existsSync(join(dir, 'ca.json'))) {
    throw new CaStateError(`a ca already exists in ${dir}`)
  }
  const keyType = options.keyType ?? 'ec-p256'
  const org = options.organization ?? 'phimq'
  const now = options.now ?? Date.now
  const alg = algorithmFor(keyType)
  const start = new Date(now() - CLOCK_SKEW_MS)

  const rootKeys = await generateKeyPair(keyType)
  const rootName = [{ O: [org] }, { CN: [`${org} Root CA`] }]
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name: rootName,
    notBefore: start,
    notAfter: new Date(start.getTime() + ROOT_CA_DAYS * DAY_MS),
    signingAlgorithm: alg,
    keys: rootKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      caKeyUsage(),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  })

  const interKeys = await generateKeyPair(keyType)
  const inter = await x509.X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: [{ O: [org] }, { CN: [`${org} Intermediate CA`] }],
    issuer: root.subjectName,
    notBefore: start,
    notAfter: new Date(start.getTime() + INTERMEDIATE_CA_DAYS * DAY_MS),
    signingAlgorithm: alg,
    publicKey: interKeys.publicKey,
    signingKey: rootKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      caKeyUsage(),
      await x509.SubjectKeyIdentifierExtension.create(interKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  })

  await mkdir(dir, { recursive: true, mode: 0o700 })
  const rootKeyPem = await exportEncryptedPrivateKeyPem(rootKeys.privateKey, passphrase)
  const interKeyPem = await exportEncryptedPrivateKeyPem(interKeys.privateKey, passphrase)
  await writeSecret(join(dir, 'root.key'), rootKeyPem)
  await writeSecret(join(dir, 'intermediate.key'), interKeyPem)
  await writeFile(join(dir, 'root.crt'), root.toString('pem'))
  await writeFile(join(dir, 'intermediate.crt'), inter.toString('pem'))
  await writeFile(join(dir, 'chain.pem'), `${inter.toString('pem')}\n${root.toString('pem')}\n`)

  const state: CaState = { version: STATE_VERSION, keyType, crlNumber: 0, certificates: [] }
  await writeState(dir, state)
  const ca = new CertificateAuthority(dir, state, root, inter, now, {
    root: rootKeys.privateKey,
    intermediate: interKeys.privateKey,
  })
  // A CA always has a CRL, so listeners can point at it from the start.
  await ca.writeCrl()
  return ca
}

/**
 * Open an existing CA. Without a passphrase it can only `list()`; signing
 * throws `CaPassphraseError`.
 */
export async function openCa(
  dir: string,
  passphrase?: string,
  options: Pick<CaOptions, 'now'> = {},
): Promise<CertificateAuthority> {
  let state: CaState
  let root: x509.X509Certificate
  let inter: x509.X509Certificate
  try {
    state = JSON.parse(await readFile(join(dir, 'ca.json'), 'utf8')) as CaState
    root = new x509.X509Certificate(await readFile(join(dir, 'root.crt'), 'utf8'))
    inter = new x509.X509Certificate(await readFile(join(dir, 'intermediate.crt'), 'utf8'))
  } catch (err) {
    throw new CaStateError(`no usable ca in ${dir}; run phimq pki init`, { cause: err })
  }
  if (state.version !== STATE_VERSION) {
    throw new CaStateError(`ca.json version ${state.version} is not supported`)
  }
  let keys: SigningKeys | undefined
  if (passphrase !== undefined) {
    keys = {
      root: await importEncryptedPrivateKey(
        await readFile(join(dir, 'root.key'), 'utf8'),
        passphrase,
        state.keyType,
      ),
      intermediate: await importEncryptedPrivateKey(
        await readFile(join(dir, 'intermediate.key'), 'utf8'),
        passphrase,
        state.keyType,
      ),
    }
  }
  return new CertificateAuthority(dir, state, root, inter, options.now ?? Date.now, keys)
}

/** An opened CA. Build it with `initCa` or `openCa`. */
export class CertificateAuthority {
  readonly dir: string
  readonly #state: CaState
  readonly #root: x509.X509Certificate
  readonly #inter: x509.X509Certificate
  readonly #now: () => number
  readonly #keys: SigningKeys | undefined

  constructor(
    dir: string,
    state: CaState,
    root: x509.X509Certificate,
    inter: x509.X509Certificate,
    now: () => number,
    keys?: SigningKeys,
  ) {
    this.dir = dir
    this.#state = state
    this.#root = root
    this.#inter = inter
    this.#now = now
    this.#keys = keys
  }

  /** The root certificate (PEM): the trust anchor for listeners and clients. */
  get rootPem(): string {
    return this.#root.toString('pem')
  }

  /** The intermediate certificate (PEM). */
  get intermediatePem(): string {
    return this.#inter.toString('pem')
  }

  get crlPath(): string {
    return join(this.dir, 'crl.pem')
  }

  /** Issue a certificate with a fresh key pair (control C12 lifetimes, C10 SAN URI). */
  async issueCertificate(request: IssueRequest): Promise<IssuedCertificate> {
    const keys = this.#signingKeys()
    const profile = profileFor(request.kind)
    const role = request.role ?? request.kind
    const uri = identityUri(request.tenant, role, request.id)
    if (request.env !== undefined && !isEnvName(request.env)) {
      throw new CertificateRequestError('env must be lower-case letters, digits and hyphens')
    }
    const days = request.days ?? profile.defaultDays
    if (!Number.isFinite(days) || days <= 0) {
      throw new CertificateRequestError('days must be a positive number')
    }
    if (days > profile.maxDays && request.allowLongLifetime !== true) {
      throw new CertificateRequestError(
        `${request.kind} certificates live at most ${profile.maxDays} days, not ${days}`,
      )
    }

    const notBefore = request.notBefore ?? new Date(this.#now() - CLOCK_SKEW_MS)
    const notAfter = new Date(notBefore.getTime() + days * DAY_MS)
    const leafKeys = await generateKeyPair(request.keyType ?? 'ec-p256')
    const serial = this.#serialFor(request)
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: [{ O: [request.tenant] }, { OU: [role] }, { CN: [request.id] }],
      issuer: this.#inter.subjectName,
      notBefore,
      notAfter,
      signingAlgorithm: algorithmFor(this.#state.keyType),
      publicKey: leafKeys.publicKey,
      signingKey: keys.intermediate,
      extensions: await this.#leafExtensions(request, uri, leafKeys.publicKey),
    })

    const record: CertificateRecord = {
      serial,
      kind: request.kind,
      tenant: request.tenant,
      role,
      id: request.id,
      uri,
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      fingerprint256: fingerprint256(cert.rawData),
      ...(request.env !== undefined ? { env: request.env } : {}),
    }
    this.#state.certificates.push(record)
    await writeState(this.dir, this.#state)

    const certPem = cert.toString('pem')
    return {
      record,
      certPem,
      keyPem: await exportPrivateKeyPem(leafKeys.privateKey),
      chainPem: `${certPem}\n${this.intermediatePem}\n`,
      caPem: this.rootPem,
    }
  }

  /** Issue a successor with the same kind, tenant, role, id and env. The old one stays valid. */
  async renew(
    serial: string,
    options: Pick<IssueRequest, 'days' | 'dnsNames' | 'ipAddresses'> = {},
  ): Promise<IssuedCertificate> {
    const old = this.#find(serial)
    return this.issueCertificate({
      kind: old.kind,
      tenant: old.tenant,
      role: old.role,
      id: old.id,
      ...(old.env !== undefined ? { env: old.env } : {}),
      ...options,
    })
  }

  /**
   * Mark a certificate revoked in the inventory. It reaches listeners with
   * the next `writeCrl()`. Revoking twice keeps the first date.
   */
  async revoke(serial: string, reason = 'unspecified'): Promise<CertificateRecord> {
    if (!REVOCATION_REASONS.has(reason)) {
      throw new CertificateRequestError(`unknown revocation reason ${reason}`)
    }
    const record = this.#find(serial)
    if (record.revokedAt === undefined) {
      record.revokedAt = new Date(this.#now()).toISOString()
      record.revocationReason = reason
      await writeState(this.dir, this.#state)
    }
    return record
  }

  /**
   * Sign fresh CRLs and write `crl.pem`: the intermediate's CRL (revoked
   * leaves) then the root's (no revoked intermediates), so a verifier that
   * checks the whole chain (Node sets `X509_V_FLAG_CRL_CHECK_ALL`) finds both.
   */
  async writeCrl(options: { days?: number } = {}): Promise<CrlWritten> {
    const keys = this.#signingKeys()
    const thisUpdate = new Date(this.#now() - CLOCK_SKEW_MS)
    const nextUpdate = new Date(thisUpdate.getTime() + (options.days ?? CRL_VALIDITY_DAYS) * DAY_MS)
    this.#state.crlNumber += 1
    const crlNumber = this.#state.crlNumber
    const alg = algorithmFor(this.#state.keyType)

    const entries = this.#state.certificates
      .filter((c) => c.revokedAt !== undefined)
      .map((c) => ({
        serialNumber: c.serial,
        revocationDate: new Date(c.revokedAt as string),
        reason: REVOCATION_REASONS.get(c.revocationReason ?? '') ?? x509.X509CrlReason.unspecified,
      }))
    const interCrl = await x509.X509CrlGenerator.create({
      issuer: this.#inter.subjectName,
      thisUpdate,
      nextUpdate,
      signingAlgorithm: alg,
      signingKey: keys.intermediate,
      entries,
      extensions: [
        crlNumberExtension(crlNumber),
        await x509.AuthorityKeyIdentifierExtension.create(this.#inter.publicKey),
      ],
    })
    const rootCrl = await x509.X509CrlGenerator.create({
      issuer: this.#root.subjectName,
      thisUpdate,
      nextUpdate,
      signingAlgorithm: alg,
      signingKey: keys.root,
      entries: [],
      extensions: [
        crlNumberExtension(crlNumber),
        await x509.AuthorityKeyIdentifierExtension.create(this.#root.publicKey),
      ],
    })

    const pem = `${crlPem(interCrl)}\n${crlPem(rootCrl)}\n`
    await writeState(this.dir, this.#state)
    await atomicWrite(this.crlPath, pem, 0o644)
    return { path: this.crlPath, pem, crlNumber, thisUpdate, nextUpdate }
  }

  /** The inventory with each certificate's status and days to expiry. */
  list(): CertificateListing[] {
    const now = this.#now()
    return this.#state.certificates.map((c) => {
      const left = Date.parse(c.notAfter) - now
      const status = c.revokedAt ? 'revoked' : left <= 0 ? 'expired' : 'valid'
      return { ...c, status, expiresInDays: Math.floor(left / DAY_MS) }
    })
  }

  /**
   * Answer a DER OCSP request for certificates this intermediate issued
   * (signed by the intermediate itself; answers valid `validitySeconds`).
   */
  async answerOcsp(requestDer: Uint8Array, validitySeconds = 3600): Promise<Uint8Array> {
    const keys = this.#signingKeys()
    const bySerial = new Map(this.#state.certificates.map((c) => [c.serial, c]))
    return answerOcspRequest(requestDer, {
      issuerDer: new Uint8Array(this.#inter.rawData),
      signingKey: keys.intermediate,
      now: new Date(this.#now()),
      validitySeconds,
      lookup: (serial): OcspCertStatus => {
        const record = bySerial.get(serial)
        if (!record) return { status: 'unknown' }
        if (record.revokedAt === undefined) return { status: 'good' }
        return {
          status: 'revoked',
          revokedAt: new Date(record.revokedAt),
          reason: REVOCATION_REASONS.get(record.revocationReason ?? ''),
        }
      },
    })
  }

  /** Re-read the inventory from disk (another process may have revoked). */
  async refresh(): Promise<void> {
    const state = JSON.parse(await readFile(join(this.dir, 'ca.json'), 'utf8')) as CaState
    this.#state.crlNumber = Math.max(this.#state.crlNumber, state.crlNumber)
    this.#state.certificates = state.certificates
  }

  /**
   * Valid certificates within `days` of expiry (C12 warnings at 30, 7 and
   * 1 days are `expiring(30)`, `expiring(7)`, `expiring(1)`).
   */
  expiring(days: number): CertificateListing[] {
    return this.list().filter((c) => c.status === 'valid' && c.expiresInDays < days)
  }

  #serialFor(request: IssueRequest): string {
    if (request.serial === undefined) return newSerial()
    const serial = request.serial.toLowerCase().replace(/:/g, '')
    // RFC 5280 4.1.2.2: a positive integer of at most 20 octets; an even
    // count of digits starting at 8 or above would encode as negative.
    const negative = serial.length % 2 === 0 && /^[89a-f]/.test(serial)
    if (!/^[0-9a-f]{1,40}$/.test(serial) || /^0+$/.test(serial) || negative) {
      throw new CertificateRequestError('serial must be a positive hex number of at most 20 octets')
    }
    if (this.#state.certificates.some((c) => c.serial === serial)) {
      throw new CertificateRequestError('serial already issued by this ca')
    }
    return serial
  }

  #find(serial: string): CertificateRecord {
    const wanted = serial.toLowerCase().replace(/:/g, '')
    const record = this.#state.certificates.find((c) => c.serial === wanted)
    if (!record) throw new CertificateRequestError('no certificate with that serial')
    return record
  }

  #signingKeys(): SigningKeys {
    if (!this.#keys) throw new CaPassphraseError('the ca was opened without its passphrase')
    return this.#keys
  }

  async #leafExtensions(
    request: IssueRequest,
    uri: string,
    publicKey: CryptoKey,
  ): Promise<x509.Extension[]> {
    const profile = profileFor(request.kind)
    const names: x509.JsonGeneralName[] = [{ type: 'url', value: uri }]
    if (request.env !== undefined) names.push({ type: 'url', value: envUri(request.env) })
    const dns = new Set(request.dnsNames ?? [])
    const ips = new Set(request.ipAddresses ?? [])
    if (profile.serverAuth) {
      dns.add('localhost')
      ips.add('127.0.0.1')
    }
    for (const value of dns) names.push({ type: 'dns', value })
    for (const value of ips) names.push({ type: 'ip', value })

    const usages: string[] = []
    if (profile.serverAuth) usages.push(x509.ExtendedKeyUsage.serverAuth)
    if (profile.clientAuth) usages.push(x509.ExtendedKeyUsage.clientAuth)
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages, false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(this.#inter.publicKey),
    ]
    if (request.ocspUrl !== undefined) {
      extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [request.ocspUrl] }))
    }
    return extensions
  }
}

/** OpenSSL reads only the RFC 7468 label `X509 CRL`; the library writes `CRL`. */
function crlPem(crl: x509.X509Crl): string {
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL')
}

function checkPassphrase(passphrase: string): void {
  if (passphrase.length < CA_PASSPHRASE_MIN_LENGTH) {
    throw new CaPassphraseError(
      `the ca passphrase must have at least ${CA_PASSPHRASE_MIN_LENGTH} characters`,
    )
  }
}

function caKeyUsage(): x509.KeyUsagesExtension {
  return new x509.KeyUsagesExtension(
    x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
    true,
  )
}

/** RFC 5280 5.2.3 CRL Number: a DER INTEGER in extension 2.5.29.20. */
function crlNumberExtension(n: number): x509.Extension {
  let hex = n.toString(16)
  if (hex.length % 2) hex = `0${hex}`
  // A leading byte >= 0x80 would read as negative: pad with 00.
  if (Number.parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`
  const body = Buffer.from(hex, 'hex')
  const der = Buffer.concat([Buffer.from([0x02, body.length]), body])
  return new x509.Extension('2.5.29.20', false, der)
}

async function writeState(dir: string, state: CaState): Promise<void> {
  await atomicWrite(join(dir, 'ca.json'), `${JSON.stringify(state, null, 2)}\n`, 0o600)
}

async function writeSecret(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600, flag: 'wx' })
}

async function atomicWrite(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, text, { mode })
  await rename(tmp, path)
}
