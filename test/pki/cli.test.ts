import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { Command } from 'commander'
import { registerPkiCommands } from '../../src/cli/pki.js'
import { CaPassphraseError, CertificateNamePhiError } from '../../src/errors.js'
import { makeTempDir } from '../helpers/tmp.js'

function program(): Command {
  const p = new Command('phimq').exitOverride()
  registerPkiCommands(p)
  return p
}

async function run(args: string[]): Promise<void> {
  await program().parseAsync(args, { from: 'user' })
}

describe('phimq pki (C12)', () => {
  const tmp = makeTempDir('phimq-cli-')
  const dir = join(tmp.dir, 'ca')
  const out = join(tmp.dir, 'out')
  const passFile = join(tmp.dir, 'pass')
  writeFileSync(passFile, 'a synthetic test passphrase\n', { mode: 0o600 })
  after(() => tmp.remove())

  it('init, issue, revoke and list work end to end and openssl sees the revocation', async () => {
    await run(['pki', 'init', '--dir', dir, '--passphrase-file', passFile])
    await run([
      'pki',
      'issue',
      '--dir',
      dir,
      '--passphrase-file',
      passFile,
      '--kind',
      'device',
      '--tenant',
      'acme',
      '--id',
      'bp-7',
      '--days',
      '30',
      '--out',
      out,
    ])
    assert.equal(statSync(join(out, 'bp-7.key')).mode & 0o777, 0o600)
    const serial = spawnSync(
      'openssl',
      ['x509', '-in', join(out, 'bp-7.crt'), '-noout', '-serial'],
      {
        encoding: 'utf8',
      },
    )
      .stdout.trim()
      .replace('serial=', '')
    assert.match(serial, /^[0-9A-F]{32}$/)

    await run([
      'pki',
      'revoke',
      serial,
      '--dir',
      dir,
      '--passphrase-file',
      passFile,
      '--reason',
      'keyCompromise',
    ])
    const crl = spawnSync('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-noout', '-text'], {
      encoding: 'utf8',
    })
    assert.equal(crl.status, 0)
    assert.match(crl.stdout, new RegExp(serial))
    const state = JSON.parse(readFileSync(join(dir, 'ca.json'), 'utf8')) as {
      certificates: Array<{ serial: string; revokedAt?: string }>
    }
    assert.ok(state.certificates.find((c) => c.serial === serial.toLowerCase())?.revokedAt)
  })

  it('issue over an existing world-readable <id>.key leaves the key at 0600', async () => {
    const keyOut = join(tmp.dir, 'key-mode')
    mkdirSync(keyOut)
    const keyPath = join(keyOut, 'k1.key')
    writeFileSync(keyPath, 'left by an earlier tool\n')
    chmodSync(keyPath, 0o666)
    const args = ['--dir', dir, '--passphrase-file', passFile, '--kind', 'device']
    await run(['pki', 'issue', ...args, '--tenant', 'acme', '--id', 'k1', '--out', keyOut])
    assert.equal(statSync(keyPath).mode & 0o777, 0o600)
    assert.match(readFileSync(keyPath, 'utf8'), /^-----BEGIN PRIVATE KEY-----/)
    // No temporary file is left next to it.
    assert.deepEqual(readdirSync(keyOut).sort(), ['ca.crt', 'k1.crt', 'k1.key'])
  })

  it('issue refuses an id that a PHI detector flags, with PHIMQ_CERT_NAME_PHI', async () => {
    const phiOut = join(tmp.dir, 'phi-out')
    const args = ['--dir', dir, '--passphrase-file', passFile, '--kind', 'device', '--out', phiOut]
    await assert.rejects(
      run(['pki', 'issue', ...args, '--tenant', 'acme', '--id', '123-45-6789']),
      (err) => {
        assert.ok(err instanceof CertificateNamePhiError)
        assert.equal(err.code, 'PHIMQ_CERT_NAME_PHI')
        assert.match(err.message, /^id reads as PHI \(ssn\)/)
        assert.doesNotMatch(err.message, /123-45-6789/)
        return true
      },
    )
    await assert.rejects(
      run(['pki', 'issue', ...args, '--tenant', 'acme', '--id', 'pt-2026-01-15']),
      { code: 'PHIMQ_CERT_NAME_PHI', message: /id reads as PHI \(date\)/ },
    )
    assert.equal(existsSync(phiOut), false, 'nothing written')
  })

  it('refuses to sign without a passphrase source', async () => {
    const saved = process.env.PHIMQ_CA_PASSPHRASE
    delete process.env.PHIMQ_CA_PASSPHRASE
    try {
      await assert.rejects(run(['pki', 'crl', '--dir', dir]), {
        code: 'PHIMQ_CA_PASSPHRASE_INVALID',
      })
    } finally {
      if (saved !== undefined) process.env.PHIMQ_CA_PASSPHRASE = saved
    }
  })

  it('a short passphrase from --passphrase-file is blamed on the file, not the variable', async () => {
    const shortFile = join(tmp.dir, 'short-pass')
    writeFileSync(shortFile, 'short\n', { mode: 0o600 })
    const other = join(tmp.dir, 'ca-short')
    await assert.rejects(
      run(['pki', 'init', '--dir', other, '--passphrase-file', shortFile]),
      (err) => {
        assert.ok(err instanceof CaPassphraseError)
        assert.equal(err.code, 'PHIMQ_CA_PASSPHRASE_INVALID')
        assert.match(err.message, /at least 12 characters \(read from --passphrase-file\)/)
        assert.doesNotMatch(err.message, /PHIMQ_CA_PASSPHRASE/)
        return true
      },
    )
  })

  it('a wrong passphrase from --passphrase-file names the file as its source', async () => {
    const wrongFile = join(tmp.dir, 'wrong-pass')
    writeFileSync(wrongFile, 'not the synthetic passphrase\n', { mode: 0o600 })
    await assert.rejects(run(['pki', 'crl', '--dir', dir, '--passphrase-file', wrongFile]), {
      code: 'PHIMQ_CA_PASSPHRASE_INVALID',
      message: /wrong passphrase \(read from --passphrase-file\)/,
    })
  })
  it('issue --env writes the C18 environment as SAN URI urn:phimq:env:<env>', async () => {
    const envDir = join(tmp.dir, 'env-ca')
    const envOut = join(tmp.dir, 'env-out')
    await run(['pki', 'init', '--dir', envDir, '--passphrase-file', passFile])
    const issue = (id: string, extra: string[]) =>
      run([
        'pki',
        'issue',
        ...['--dir', envDir, '--passphrase-file', passFile, '--kind', 'device'],
        ...['--tenant', 'acme', '--id', id, '--out', envOut, ...extra],
      ])
    await issue('env-1', ['--env', 'prod'])
    const san = spawnSync(
      'openssl',
      ['x509', '-in', join(envOut, 'env-1.crt'), '-noout', '-ext', 'subjectAltName'],
      { encoding: 'utf8' },
    ).stdout
    assert.match(san, /URI:urn:phimq:acme:device:env-1/)
    assert.match(san, /URI:urn:phimq:env:prod/)
    await assert.rejects(
      issue('env-2', ['--env', 'staging']),
      /Allowed choices are dev, test, prod/,
    )
  })
})
