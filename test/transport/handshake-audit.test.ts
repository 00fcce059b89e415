/**
 * What a peer can write into `tls.handshake` (C13, C26; red-team findings
 * 3 and 6): the SNI server name and the names of a certificate that did not
 * verify are attacker text, kept for C13 but masked and capped; a
 * CA-issued identity holding PHI is refused with `IDENTITY_PHI` and never
 * recorded raw. Real TLS on loopback; certificates made by the test.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { auditSni, isHostname, SNI_INVALID } from '../../src/transport/peer-text.js'
import {
  closed,
  makePki,
  type Pki,
  RecordingBroker,
  tlsClient,
  waitFor,
} from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

// Synthetic identifiers only.
const SSN = '123-45-6789'
const PHONE = '212-555-0199'
const EMAIL = 'jane.roe@example.org'

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
}

/** A key and a certificate: self-signed, or signed by `issuer`. */
function makeCert(
  dir: string,
  name: string,
  subject: string,
  options: { ca?: boolean; issuer?: string; ext?: string } = {},
): { cert: string; key: string } {
  const key = join(dir, `${name}.key`)
  const cert = join(dir, `${name}.pem`)
  const ext = join(dir, `${name}.cnf`)
  const base = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key]
  if (options.issuer === undefined) {
    const caExt = options.ca
      ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']
      : ['-addext', 'extendedKeyUsage=clientAuth']
    openssl(dir, ['req', '-x509', ...base, '-out', cert, '-days', '2', '-subj', subject, ...caExt])
  } else {
    const csr = join(dir, `${name}.csr`)
    openssl(dir, ['req', ...base, '-out', csr, '-subj', subject])
    writeFileSync(ext, options.ext ?? 'extendedKeyUsage=clientAuth\n')
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      `${options.issuer}.pem`,
      '-CAkey',
      `${options.issuer}.key`,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '2',
      '-extfile',
      ext,
    ])
  }
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') }
}

describe('tls.handshake holds no raw peer text (C13, C26)', () => {
  const tmp = makeTempDir('phimq-hs-audit-')
  const audit = new MemoryAuditSink()
  const broker = new RecordingBroker()
  let pki: Pki
  let device: { chainPem: string; keyPem: string }
  let listener: Awaited<ReturnType<typeof createMqttsListener>>

  before(async () => {
    pki = await makePki(join(tmp.dir, 'a'))
    device = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'bp-0042' })
    // A second trusted CA, made with openssl, whose leaves map by subject:
    // the way a CA outside phimq could issue an identity holding PHI.
    makeCert(tmp.dir, 'site-ca', '/CN=site test ca', { ca: true })
    writeFileSync(
      join(tmp.dir, 'bundle.pem'),
      `${readFileSync(pki.paths.ca, 'utf8')}\n${readFileSync(join(tmp.dir, 'site-ca.pem'), 'utf8')}`,
    )
    listener = await createMqttsListener(
      {
        name: 'devices',
        host: '127.0.0.1',
        port: 0,
        cert: pki.paths.cert,
        key: pki.paths.key,
        ca: join(tmp.dir, 'bundle.pem'),
        ocsp: { mode: 'off' },
      },
      broker,
      { audit },
    )
  })
  after(async () => {
    await listener.close()
    tmp.remove()
  })

  async function handshake(options: Parameters<typeof tlsClient>[1]) {
    const n = audit.ofType('tls.handshake').length
    // The client does not hold the server to the odd names it sends.
    const client = await tlsClient(listener.port, {
      ca: pki.ca.rootPem,
      checkServerIdentity: () => undefined,
      ...options,
    })
    const event = await waitFor(() => audit.ofType('tls.handshake')[n], 3000, 'tls.handshake')
    client.socket.destroy()
    await closed(client.socket).catch(() => {})
    return event
  }

  it('masks PHI in the SNI of a client without a certificate', async () => {
    const e = await handshake({ servername: `ssn-${SSN}.example.org` })
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'NO_CLIENT_CERT')
    assert.equal(e.sni, 'ssn-***.example.org')
  })

  it('records an SNI that is not a host name as [invalid]', async () => {
    const e = await handshake({ servername: `Jane Roe <${EMAIL}>` })
    assert.equal(e.sni, SNI_INVALID)
  })

  it('keeps a plain host name SNI, lower-cased (C13)', async () => {
    const e = await handshake({
      cert: device.chainPem,
      key: device.keyPem,
      servername: 'LocalHost',
    })
    assert.equal(e.result, 'accepted')
    assert.equal(e.sni, 'localhost')
  })

  it('masks and caps the subject and issuer of a certificate no trusted CA signed', async () => {
    // An RDN holds at most 64 characters: many of them make a long subject.
    const long = Array.from({ length: 7 }, (_, i) => `/OU=${String(i).repeat(60)}`).join('')
    const evil = makeCert(tmp.dir, 'evil', `/O=pt ${SSN} tel ${PHONE}${long}/CN=evil`)
    const e = await handshake({ cert: evil.cert, key: evil.key })
    assert.equal(e.result, 'refused')
    // Still recorded for C13: present and non-empty, but never raw.
    assert.ok(e.subject && e.issuer && e.fingerprint256 && e.serial)
    assert.match(e.subject, /^O=pt \*\*\* tel \*\*\*, OU=0000/)
    const text = JSON.stringify(e)
    assert.ok(!text.includes(SSN), 'ssn in the event')
    assert.ok(!text.includes(PHONE), 'phone in the event')
    assert.ok((e.subject ?? '').length <= 257, `subject length ${e.subject?.length}`)
    assert.ok((e.issuer ?? '').length <= 257)
  })

  it('refuses a trusted identity whose id holds PHI with IDENTITY_PHI, masked', async () => {
    const leaf = makeCert(tmp.dir, 'phi-id', `/O=acme/OU=device/CN=${SSN}`, {
      issuer: join(tmp.dir, 'site-ca'),
    })
    const seen = broker.connections.length
    const e = await handshake({ cert: leaf.cert, key: leaf.key })
    assert.equal(e.result, 'refused')
    assert.equal(e.reason, 'IDENTITY_PHI')
    assert.equal(e.identity, undefined)
    assert.match(e.subject ?? '', /CN=\*\*\*/)
    assert.ok(!JSON.stringify(e).includes(SSN))
    assert.equal(broker.connections.length, seen)
  })

  it('accepts a clean identity from the second CA (the refusal above is about PHI)', async () => {
    const leaf = makeCert(tmp.dir, 'clean-id', '/O=acme/OU=device/CN=bp-0099', {
      issuer: join(tmp.dir, 'site-ca'),
    })
    const e = await handshake({ cert: leaf.cert, key: leaf.key })
    assert.equal(e.result, 'accepted')
    assert.deepEqual(e.identity, { tenant: 'acme', role: 'device', id: 'bp-0099' })
  })
})

describe('auditSni', () => {
  const mask = (t: string) => t.replaceAll(SSN, '***')

  it('accepts RFC 1123 host names only', () => {
    assert.equal(isHostname('broker-1.example.org'), true)
    assert.equal(isHostname('broker-1.example.org.'), true)
    assert.equal(isHostname('-bad.example.org'), false)
    assert.equal(isHostname('a..b'), false)
    assert.equal(isHostname('under_score.example'), false)
    assert.equal(isHostname(`${'a'.repeat(64)}.example`), false)
    assert.equal(isHostname(Array(128).fill('a').join('.')), false)
  })

  it('gives undefined without an SNI, [invalid] for a non-host name, masked text otherwise', () => {
    assert.equal(auditSni(undefined, mask), undefined)
    assert.equal(auditSni(false, mask), undefined)
    assert.equal(auditSni('a\nb', mask), SNI_INVALID)
    assert.equal(auditSni(`x.${SSN}.org`, mask), 'x.***.org')
  })
})
