import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import {
  defaultDetector,
  detect,
  maskTopic,
  PhiDetector,
  type PhiKind,
  type TextSource,
} from '../../src/phi/detectors.js'

interface Sample {
  text: string
  source: TextSource
  kind?: PhiKind
  category?: string
  note?: string
}

const corpus = JSON.parse(
  readFileSync(new URL('../fixtures/phi-corpus.json', import.meta.url), 'utf8'),
) as { positives: Sample[]; negatives: Sample[] }

// Bound on the share of negatives that trip any detector (C21 screening).
const FALSE_POSITIVE_RATE_MAX = 0.05
// Categories the brief names: these may never trip the date or phone detectors.
const NEVER_DATE_OR_PHONE = new Set(['timestamp', 'firmware', 'build-tag', 'sequence', 'counter'])

describe('PHI detectors: corpus (C21, Appendix A)', () => {
  it('finds every synthetic identifier in the corpus with the expected kind', () => {
    const missed = corpus.positives.filter(
      (s) => !defaultDetector.detect(s.text, s.source).some((h) => h.kind === s.kind),
    )
    assert.deepEqual(
      missed.map((s) => `${s.kind}: ${s.text}`),
      [],
    )
  })

  it('keeps the false-positive rate on the corpus under the bound', (t) => {
    const tripped = corpus.negatives.filter((s) => defaultDetector.hasPhi(s.text, s.source))
    const rate = tripped.length / corpus.negatives.length
    t.diagnostic(
      `false positives: ${tripped.length}/${corpus.negatives.length} = ${(rate * 100).toFixed(1)} %`,
    )
    for (const s of tripped) t.diagnostic(`tripped: ${s.note ?? s.text}`)
    assert.ok(corpus.negatives.length >= 30, 'the corpus keeps at least 30 negatives')
    assert.ok(rate <= FALSE_POSITIVE_RATE_MAX, `rate ${rate} above ${FALSE_POSITIVE_RATE_MAX}`)
  })

  it('never trips date or phone on timestamps, firmware versions, sequence numbers, counters', () => {
    const bad = corpus.negatives
      .filter((s) => NEVER_DATE_OR_PHONE.has(s.category ?? ''))
      .filter((s) =>
        defaultDetector
          .detect(s.text, s.source)
          .some((h) => h.kind === 'date' || h.kind === 'phone'),
      )
    assert.deepEqual(
      bad.map((s) => s.text),
      [],
    )
  })
})

describe('PHI detectors: single rules', () => {
  const cases: Array<[string, string, PhiKind | null]> = [
    ['SSN with area 000 is skipped', '000-12-3456', null],
    ['SSN with area 666 is skipped', '666-12-3456', null],
    ['SSN with area 9xx is skipped', '912-34-5678', null],
    ['SSN with group 00 is skipped', '123-00-4567', null],
    ['SSN with serial 0000 is skipped', '123-45-0000', null],
    ['SSN with mixed separators is not a 3-2-4 SSN', '123-45 6789', null],
    ['SSN inside a longer digit run is skipped', '91234567890', null],
    ['a formatted number is a phone even with area code 1xx', '123-555-0142', 'phone'],
    ['a formatted number is a phone even with exchange 0xx', '212-055-0142', 'phone'],
    ['a fictional 555-01xx number in parentheses is a phone', '(555) 010-1234', 'phone'],
    ['a dotted number with any digits is a phone', '555.010.1234', 'phone'],
    ['mixed separators are not one phone number', '555-010.1234', null],
    ['+1 before 10 unseparated digits is a phone', '+15550101234', 'phone'],
    ['space-separated groups need the NANP shape', 'n 100 200 3000', null],
    ['a bare 10-digit run with no phone word is not a phone', 'id 2125550142', null],
    ['a bare 10-digit epoch timestamp is not a phone', '1733300000', null],
    ['a bare 10-digit run after "phone" is a phone', 'phone 2125550142', 'phone'],
    ['a bare 10-digit run after "tel:" is a phone, whatever the digits', 'tel:5550101234', 'phone'],
    ['a compact date YYYYMMDD is a date', '19610314', 'date'],
    ['a compact date with a time is a date', '20260105T101500Z', 'date'],
    ['a compact date in 1899 is not flagged', '18991231', null],
    ['a compact date in 2100 is not flagged', '21000101', null],
    ['a compact date needs a real day', '19610230', null],
    ['a compact date inside a longer digit run is not flagged', '1961031400', null],
    ['a compact date glued to letters is a build tag, not a date', 'v20260105', null],
    ['a compact date as a decimal is not flagged', '1.19610314', null],
    ['age 89 is not flagged', 'age 89', null],
    ['age 90 is flagged', 'age 90', 'age'],
    ['age 131 is not flagged', 'age 131', null],
    ['a leap day in a non-leap year is not a date', '2023-02-29', null],
    ['a leap day in a leap year is a date', '2024-02-29', 'date'],
    ['IPv4 with an octet over 255 is not an IP', '10.0.0.256', null],
    ['IPv6 loopback is an IP', 'from ::1 ok', 'ip'],
    ['ZIP without a context word is not flagged by default', 'ward 02139', null],
    ['an e-mail without a dot in the domain is still an e-mail', 'a@b', 'email'],
    ['an e-mail without a TLD is an e-mail', 'jane.doe@example', 'email'],
    ['an @ not followed by a word character is not an e-mail', 'ping @team', null],
    ['a percent-encoded @ is decoded before screening', 'jane.doe%40example.com', 'email'],
    ['a double percent-encoded @ is decoded too', 'jane.doe%2540example.com', 'email'],
    ['a fullwidth @ is folded (NFKC) before screening', 'jane.doe\uff20example.com', 'email'],
    ['"+" is not read as a space', '555-010+1234', null],
    ['malformed percent-encoding is kept as it is', '%zz%4%E2%82%', null],
  ]
  for (const [name, text, kind] of cases) {
    it(name, () => {
      const kinds = detect(text).map((h) => h.kind)
      if (kind === null) assert.deepEqual(kinds, [])
      else assert.ok(kinds.includes(kind), `got ${kinds.join(',') || 'nothing'}`)
    })
  }

  it('reports spans, not the matched text', () => {
    const [hit] = detect('ssn 123-45-6789')
    assert.deepEqual(hit, { kind: 'ssn', start: 4, end: 15, format: undefined })
  })
})

describe('PHI detectors: configuration', () => {
  it('finds a per-site MRN format from config and names the format', () => {
    const detector = new PhiDetector({ formats: [{ name: 'site-a', pattern: '\\bA\\d{7}\\b' }] })
    const hits = detector.detect('ward/A1234567/ecg', 'topic')
    assert.deepEqual(
      hits.map((h) => [h.kind, h.format]),
      [['mrn', 'site-a']],
    )
    assert.deepEqual(detect('ward/A1234567/ecg'), [])
  })

  it('refuses a configured format that matches the empty string', () => {
    assert.throws(() => new PhiDetector({ formats: [{ name: 'x', pattern: 'a*' }] }), SyntaxError)
  })

  it('flags any 5-digit run only with zip: all, and nothing with zip: off', () => {
    assert.equal(new PhiDetector({ zip: 'all' }).detect('home/02139/air')[0]?.kind, 'zip')
    assert.deepEqual(new PhiDetector({ zip: 'off' }).detect('zip 02139'), [])
  })
})

describe('PHI detectors: long input', () => {
  // Before the runs were bounded, one 64 KiB topic of letters took ~13 s.
  const LONG_INPUT_BUDGET_MS = 2000
  const inputs: Array<[string, string]> = [
    ['letters', 'a'.repeat(65_535)],
    ['dotted letters', 'a.'.repeat(32_767)],
    ['digits', '1'.repeat(65_535)],
    ['an e-mail-like run', `a@${'b.'.repeat(32_000)}`],
    ['percent-encoded bytes', '%41'.repeat(21_845)],
    ['percent-encoded at signs', 'a%40'.repeat(16_383)],
    ['fullwidth digits', '\uff15'.repeat(65_535)],
  ]
  for (const [what, text] of inputs) {
    it(`screens a 64 KiB run of ${what} in linear time (no ReDoS)`, (t) => {
      const start = performance.now()
      defaultDetector.detect(text)
      defaultDetector.detect(text, 'topic')
      const ms = performance.now() - start
      t.diagnostic(`${what}: ${ms.toFixed(0)} ms`)
      assert.ok(ms < LONG_INPUT_BUDGET_MS, `${ms} ms`)
    })
  }
})

describe('PHI detectors: topic cache', () => {
  it('gives the same answer from the cache, also after it has been cleared by volume', () => {
    const detector = new PhiDetector()
    const topic = 'clinic/pt/123-45-6789/hr'
    assert.equal(detector.detectTopic(topic)[0]?.kind, 'ssn')
    for (let i = 0; i < 5000; i++) detector.detectTopic(`ward/${i}/hr`)
    assert.equal(detector.detectTopic(topic)[0]?.kind, 'ssn')
    assert.deepEqual(detector.detectTopic('ward/12/hr'), [])
  })
})

describe('maskTopic (C21, C26)', () => {
  const cases: Array<[string, string]> = [
    ['clinic/pt/123-45-6789/hr', 'clinic/pt/***/hr'],
    ['alerts/jane.roe@example.org/vitals', 'alerts/***/vitals'],
    ['pt/dob/3/14/1961/hr', 'pt/dob/***/***/***/hr'],
    ['ward/3/bed/12/hr', 'ward/3/bed/12/hr'],
    ['ward/+/ecg/#', 'ward/+/ecg/#'],
    ['bridge/mqtts://hub.example.net/x', 'bridge/***/***/***/***'],
    ['demo/vitals/(555) 010-1234', 'demo/vitals/***'],
    ['demo/vitals/jane.doe%40example.com/hr', 'demo/vitals/***/hr'],
    ['demo/vitals/19610314/hr', 'demo/vitals/***/hr'],
    ['demo/fw/v20260105/hr', 'demo/fw/v20260105/hr'],
  ]
  for (const [topic, masked] of cases) {
    it(`masks ${masked}`, () => assert.equal(maskTopic(topic), masked))
  }

  it('masks spans inside a client id and keeps the rest', () => {
    assert.equal(defaultDetector.maskText('gw-212-555-0142-a'), 'gw-***-a')
  })

  it('masks the encoded span of the input when the hit is in the decoded text', () => {
    assert.equal(defaultDetector.maskText('gw jane%40example a'), 'gw *** a')
    assert.equal(defaultDetector.maskText('x %28555%29 010-1234 y'), 'x *** y')
  })
})
