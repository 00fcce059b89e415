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
const NEVER_DATE_OR_PHONE = new Set(['timestamp', 'firmware', 'sequence', 'counter'])

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
    ['NANP area code may not start with 1', '123-555-0142', null],
    ['NANP exchange may not start with 0', '212-055-0142', null],
    ['a bare 10-digit run with no phone word is not a phone', 'id 2125550142', null],
    ['a bare 10-digit run after "phone" is a phone', 'phone 2125550142', 'phone'],
    ['age 89 is not flagged', 'age 89', null],
    ['age 90 is flagged', 'age 90', 'age'],
    ['age 131 is not flagged', 'age 131', null],
    ['a leap day in a non-leap year is not a date', '2023-02-29', null],
    ['a leap day in a leap year is a date', '2024-02-29', 'date'],
    ['IPv4 with an octet over 255 is not an IP', '10.0.0.256', null],
    ['IPv6 loopback is an IP', 'from ::1 ok', 'ip'],
    ['ZIP without a context word is not flagged by default', 'ward 02139', null],
    ['an e-mail without a dot in the domain is not flagged', 'a@b', null],
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
  ]
  for (const [topic, masked] of cases) {
    it(`masks ${masked}`, () => assert.equal(maskTopic(topic), masked))
  }

  it('masks spans inside a client id and keeps the rest', () => {
    assert.equal(defaultDetector.maskText('gw-212-555-0142-a'), 'gw-***-a')
  })
})
