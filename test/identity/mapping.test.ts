import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import {
  type CertificateFields,
  readCertificateFields,
} from '../../src/identity/certificate-fields.js'
import { IdentityMapper } from '../../src/identity/mapping.js'
import { isSafeIdentityValue } from '../../src/identity/values.js'
import { initCa } from '../../src/pki/ca.js'
import { makeTempDir } from '../helpers/tmp.js'

function fields(
  over: Partial<{ uris: string[]; dns: string[]; cn: string[]; o: string[]; ou: string[] }>,
): CertificateFields {
  return {
    sanUris: over.uris ?? [],
    sanDns: over.dns ?? [],
    subject: new Map([
      ['CN', over.cn ?? []],
      ['O', over.o ?? []],
      ['OU', over.ou ?? []],
    ]),
    envs: [],
  }
}

describe('identity mapping (C10)', () => {
  const tmp = makeTempDir('phimq-id-')
  after(() => tmp.remove())

  it('maps a certificate issued by the CA from its SAN URI', async () => {
    const ca = await initCa(join(tmp.dir, 'ca'), 'a synthetic passphrase')
    const issued = await ca.issueCertificate({ kind: 'device', tenant: 'acme', id: 'bp-0042' })
    const der = new X509Certificate(issued.certPem).raw
    const result = new IdentityMapper().map(readCertificateFields(der))
    assert.deepEqual(result, {
      ok: true,
      identity: { tenant: 'acme', role: 'device', id: 'bp-0042' },
      rule: 0,
    })
  })

  it('prefers the SAN URI over the subject', () => {
    const r = new IdentityMapper().map(
      fields({ uris: ['urn:phimq:t1:app:a1'], cn: ['other'], o: ['t2'], ou: ['device'] }),
    )
    assert.ok(r.ok)
    assert.equal(r.identity.id, 'a1')
    assert.equal(r.identity.tenant, 't1')
  })

  it('falls back to O / OU / CN when no SAN URI matches', () => {
    const r = new IdentityMapper().map(
      fields({ uris: ['https://example.org/x'], cn: ['pump-7'], o: ['clinic'], ou: ['device'] }),
    )
    assert.deepEqual(r, {
      ok: true,
      identity: { tenant: 'clinic', role: 'device', id: 'pump-7' },
      rule: 1,
    })
  })

  it('maps SAN DNS names by a pattern with literal role', () => {
    const mapper = new IdentityMapper([
      { from: 'san-dns', pattern: '{id}.{tenant}.devices.example.org', role: 'device' },
    ])
    const r = mapper.map(fields({ dns: ['localhost', 'ecg-3.acme.devices.example.org'] }))
    assert.deepEqual(r, {
      ok: true,
      identity: { tenant: 'acme', role: 'device', id: 'ecg-3' },
      rule: 0,
    })
  })

  it('subject templates may mix literal text and fields', () => {
    const mapper = new IdentityMapper([
      { from: 'subject', tenant: '{O}', role: 'app', id: 'svc-{CN}' },
    ])
    const r = mapper.map(fields({ cn: ['ingest'], o: ['acme'] }))
    assert.ok(r.ok)
    assert.equal(r.identity.id, 'svc-ingest')
  })

  it('refuses values holding + # / $ or NUL, without falling through to a weaker rule', () => {
    for (const bad of ['a+b', 'all#', '$SYS', 'x\u0000y']) {
      const r = new IdentityMapper().map(fields({ cn: [bad], o: ['acme'], ou: ['device'] }))
      assert.deepEqual(r, { ok: false, reason: 'IDENTITY_FORBIDDEN_VALUE' }, JSON.stringify(bad))
    }
    // A "/" cannot even match a URI placeholder segment, so that URI is unmapped.
    const slash = new IdentityMapper([
      { from: 'san-uri', pattern: 'urn:phimq:{tenant}:{role}:{id}' },
    ])
    assert.deepEqual(slash.map(fields({ uris: ['urn:phimq:acme:device:a/b'] })), {
      ok: false,
      reason: 'IDENTITY_UNMAPPED',
    })
  })

  it('refuses two different phimq SAN URIs and two CN values as ambiguous', () => {
    const m = new IdentityMapper()
    assert.deepEqual(m.map(fields({ uris: ['urn:phimq:a:device:1', 'urn:phimq:a:device:2'] })), {
      ok: false,
      reason: 'IDENTITY_AMBIGUOUS',
    })
    assert.deepEqual(m.map(fields({ cn: ['1', '2'], o: ['a'], ou: ['device'] })), {
      ok: false,
      reason: 'IDENTITY_AMBIGUOUS',
    })
  })

  it('refuses a certificate with no field the rules read', () => {
    assert.deepEqual(new IdentityMapper().map(fields({ cn: ['only-cn'] })), {
      ok: false,
      reason: 'IDENTITY_UNMAPPED',
    })
  })

  it('isSafeIdentityValue rejects empty and overlong values', () => {
    assert.equal(isSafeIdentityValue(''), false)
    assert.equal(isSafeIdentityValue('x'.repeat(129)), false)
    assert.equal(isSafeIdentityValue('bp-0042'), true)
  })
})
