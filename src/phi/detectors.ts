/**
 * PHI detectors for the Safe Harbor identifiers that can be found by pattern
 * (compliance-controls.md, Appendix A). They screen topic names, topic
 * filters, client identifiers and the config's own topic patterns (control
 * C21). A detector is a screening aid, never proof of de-identification.
 *
 * A `Hit` carries the kind and the span, never the matched text, so a hit
 * can be logged without carrying the identifier it found.
 */
import { isIP } from 'node:net'
import { decodeForScreening } from './decode.js'

/** The identifier kinds we detect by pattern (Appendix A row in brackets). */
export const PHI_KINDS = [
  'ssn', // [7]
  'phone', // [4]
  'fax', // [5]
  'email', // [6]
  'date', // [3]
  'age', // [3] ages over 89
  'mrn', // [8]
  'health-plan', // [9] configured formats only
  'account', // [10] configured formats only
  'license', // [11] configured formats only
  'device', // [13] configured formats only
  'ip', // [15]
  'url', // [14]
  'zip', // [2]
  'vin', // [12]
] as const

/** One identifier kind a detector reports. */
export type PhiKind = (typeof PHI_KINDS)[number]

/** One detector hit: `[start, end)` in UTF-16 code units of the input. */
export interface Hit {
  readonly kind: PhiKind
  readonly start: number
  readonly end: number
  /** Name of the configured format that matched, for configured kinds. */
  readonly format?: string | undefined
}

/** A site- or payer-specific identifier format, from config. */
export interface SiteFormat {
  readonly name: string
  /** JavaScript regular expression source, matched case-sensitively. */
  readonly pattern: string
  readonly kind?: 'mrn' | 'health-plan' | 'account' | 'license' | 'device' | undefined
}

/**
 * How ZIP codes are detected. `prefixed` finds a ZIP next to a word such as
 * `zip` or `postal`; `all` flags any 5-digit run (noisy: counters trip it);
 * `off` disables the detector.
 */
export type ZipMode = 'off' | 'prefixed' | 'all'

/** Options of a `PhiDetector`, from `policy.detectors`. */
export interface DetectorOptions {
  readonly formats?: readonly SiteFormat[] | undefined
  readonly zip?: ZipMode | undefined
}

/** Where the text comes from: topics split on `/`, which changes dates. */
export type TextSource = 'text' | 'topic'

interface Rule {
  readonly kind: PhiKind
  readonly re: RegExp
  readonly format?: string
  /** Extra check on the sensitive value; false drops the match. */
  readonly accept?: (value: string, text: string, start: number) => boolean
  /** Kind override from context (phone next to "fax" is a fax number). */
  readonly kindAt?: (text: string, start: number) => PhiKind
  readonly only?: TextSource
}

// Letters that may not precede a context word, so `page 95` is not an age.
const NOT_AFTER_LETTER = '(?<![A-Za-z])'
// Separators allowed between a context word and its value.
const CONTEXT_SEP = '[\\s:#=_/.-]{0,3}'

/** Days in each month of a given year (Gregorian). */
function isRealDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
  return day <= (days[month - 1] ?? 0)
}

// Years a person's date can plausibly fall in; 4-digit runs outside it are
// more likely counters than dates.
const YEAR_MIN = 1850
const YEAR_MAX = 2199
// An 8-digit run is a date only in a narrower range: counters are 8-digit
// runs too, and this keeps `21000101`-style ids out.
const COMPACT_YEAR_MIN = 1900
const COMPACT_YEAR_MAX = 2099

function isIsoDate(value: string): boolean {
  const [y, m, d] = value.split(/[-/]/).map(Number)
  if (y === undefined || m === undefined || d === undefined) return false
  return y >= YEAR_MIN && y <= YEAR_MAX && isRealDate(y, m, d)
}

function isUsDate(value: string): boolean {
  const [m, d, yRaw] = value.split(/[-/]/)
  if (m === undefined || d === undefined || yRaw === undefined) return false
  // Two-digit years could be either century; any is a real day in one of them.
  const y = yRaw.length === 2 ? 2000 + Number(yRaw) : Number(yRaw)
  if (yRaw.length === 4 && (y < YEAR_MIN || y > YEAR_MAX)) return false
  return isRealDate(y, Number(m), Number(d))
}

function isCompactDate(value: string): boolean {
  const y = Number(value.slice(0, 4))
  return (
    y >= COMPACT_YEAR_MIN &&
    y <= COMPACT_YEAR_MAX &&
    isRealDate(y, Number(value.slice(4, 6)), Number(value.slice(6, 8)))
  )
}

/** SSN heuristic: no area 000, 666 or 9xx, no group 00, no serial 0000. */
function isPlausibleSsn(value: string): boolean {
  const digits = value.replace(/[- ]/g, '')
  const area = digits.slice(0, 3)
  if (area === '000' || area === '666' || area.startsWith('9')) return false
  return digits.slice(3, 5) !== '00' && digits.slice(5) !== '0000'
}

const VIN_VALUES = new Map<string, number>(
  [...'ABCDEFGHJKLMNPRSTUVWXYZ'].map((c, i) => [
    c,
    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9][i] ?? 0,
  ]),
)
const VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]

/**
 * A VIN needs letters and digits and a valid check digit (position 9, North
 * American VINs). The check cuts noise from 17-character serials; VINs
 * without a check digit are missed.
 */
function isVin(value: string): boolean {
  if (!/[A-Z]/.test(value) || !/\d/.test(value)) return false
  let sum = 0
  for (let i = 0; i < 17; i++) {
    const c = value[i] as string
    const v = /\d/.test(c) ? Number(c) : (VIN_VALUES.get(c) ?? 0)
    sum += v * (VIN_WEIGHTS[i] ?? 0)
  }
  const check = sum % 11 === 10 ? 'X' : String(sum % 11)
  return value[8] === check
}

function phoneKind(text: string, start: number): PhiKind {
  return /fax/i.test(text.slice(Math.max(0, start - 12), start)) ? 'fax' : 'phone'
}

const PHONE_WORDS = '(?:phone|tel|telephone|mobile|cell|fax|ph)'

/** The fixed rules; configured formats and ZIP are added per detector. */
const BASE_RULES: readonly Rule[] = [
  {
    kind: 'ssn',
    re: /(?<!\d)(?<!\d\.)(?<v>\d{3}([- ]?)\d{2}\2\d{4})(?!\d)(?!\.\d)/dg,
    accept: isPlausibleSsn,
  },
  // A formatted North American number is a phone number whatever its
  // digits: fictional 555-01xx numbers and invalid area codes are still
  // numbers in a topic, and NANP validity is too strict for a safeguard.
  // `(NNN) NNN-NNNN`, `NNN-NNN-NNNN`, `NNN.NNN.NNNN` (one separator style),
  // optionally after `1` or `+1`.
  {
    kind: 'phone',
    re: /(?<![\d.+])(?<v>(?:\+?1[ .-]?)?(?:\(\d{3}\) ?\d{3}[ .-]?|\d{3}(?<s>[.-])\d{3}\k<s>)\d{4})(?!\d)(?!\.\d)/dg,
    kindAt: phoneKind,
  },
  // Space-separated groups are also how counts and readings are written
  // (`seq 100 200 3000`), so there the NANP shape (area and exchange 2-9)
  // must hold.
  {
    kind: 'phone',
    re: /(?<![\d.+])(?<v>(?:\+?1 ?)?[2-9]\d{2} [2-9]\d{2} \d{4})(?!\d)(?!\.\d)/dg,
    kindAt: phoneKind,
  },
  // E.164 form with +1, separators optional: `+1` marks a phone number.
  {
    kind: 'phone',
    re: /(?<![\d+])(?<v>\+1[ .-]?\d{3}[ .-]?\d{3}[ .-]?\d{4})(?!\d)/dg,
    kindAt: phoneKind,
  },
  // A bare run of 10 digits (11 with a leading 1) is a phone number only
  // after a phone word such as `tel:`: without one it is far more often a
  // Unix timestamp in seconds (1733300000) or a sequence number.
  {
    kind: 'phone',
    re: new RegExp(`${NOT_AFTER_LETTER}${PHONE_WORDS}${CONTEXT_SEP}(?<v>1?\\d{10})(?!\\d)`, 'dgi'),
    kindAt: phoneKind,
  },
  // Any `local@domain` is an e-mail address, with or without a TLD
  // (`jane.doe@example`): an `@` before a word character is enough.
  // Bounded runs (RFC 5321 lengths) keep the scan linear on long input.
  {
    kind: 'email',
    re: /(?<v>[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9_][A-Za-z0-9_-]{0,62}(?:\.[A-Za-z0-9_-]{1,63}){0,8})/dg,
  },
  // ISO full date, also with `/`: YYYY-MM-DD. A time after it does not save
  // it: an ISO timestamp still carries a full date.
  {
    kind: 'date',
    re: /(?<!\d)(?<!\d[./-])(?<v>\d{4}([-/])\d{1,2}\2\d{1,2})(?!\d)(?![/.-]\d)/dg,
    accept: isIsoDate,
  },
  // Compact date YYYYMMDD (years 1900-2099, a real day) standing as its own
  // token: not inside a longer digit run or glued to letters (`v20260105`
  // is a build tag), nor a decimal. Like the ISO form it may carry a time
  // (`20260105T101500Z`): a timestamp with a full date is still a date.
  {
    kind: 'date',
    re: /(?<![A-Za-z0-9])(?<!\d[.,])(?<v>(?:19|20)\d{2}[01]\d[0-3]\d)(?:(?![A-Za-z0-9])(?![.,]\d)|(?=T\d))/dg,
    accept: isCompactDate,
  },
  // US M/D/YY or M/D/YYYY in free text.
  {
    kind: 'date',
    re: /(?<!\d)(?<!\d[./-])(?<v>\d{1,2}([-/])\d{1,2}\2(?:\d{4}|\d{2}))(?!\d)(?![/.-]\d)/dg,
    accept: isUsDate,
    only: 'text',
  },
  // In a topic `/` separates levels, so `fw/1/2/34` is not a date; a full
  // 4-digit year across levels still is (`dob/3/14/1961`).
  {
    kind: 'date',
    re: /(?<!\d)(?<!\d[./-])(?<v>\d{1,2}([-/])\d{1,2}\2\d{4})(?!\d)(?![/.-]\d)/dg,
    accept: isUsDate,
    only: 'topic',
  },
  // Ages over 89 next to an age word (they must collapse to "90+").
  {
    kind: 'age',
    re: new RegExp(
      `${NOT_AFTER_LETTER}(?:age[ds]?|aged)${CONTEXT_SEP}(?<v>9\\d|1[0-2]\\d|130)(?!\\d)`,
      'dgi',
    ),
  },
  {
    kind: 'age',
    re: /(?<![\d.])(?<v>9\d|1[0-2]\d|130)[\s_-]{0,2}(?:y\/?o|y\.o\.|(?:years?|yrs?)[\s_-]?old)(?![A-Za-z])/dgi,
  },
  // MRN only with its prefix; per-site formats come from config.
  {
    kind: 'mrn',
    re: new RegExp(
      `${NOT_AFTER_LETTER}(?:mrn|mr#|medical[\\s_-]?record(?:[\\s_-]?(?:no|num|number))?)` +
        `${CONTEXT_SEP}(?<v>[A-Za-z0-9-]{0,32}\\d[A-Za-z0-9-]{0,32})`,
      'dgi',
    ),
  },
  {
    kind: 'ip',
    re: /(?<![\d.])(?<v>\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?!\d)(?!\.\d)/dg,
    accept: (v) => isIP(v) === 4,
  },
  // IPv6: tokenise hex-and-colon runs and let `net.isIP` decide.
  {
    kind: 'ip',
    re: /(?<![\w:.])(?<v>[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{0,40}:[0-9A-Fa-f.]{0,15})(?![\w:])/dg,
    accept: (v) => isIP(v.replace(/\.$/, '')) === 6,
  },
  {
    kind: 'url',
    re: /(?<![A-Za-z])(?<v>(?:https?|wss?|mqtts?):\/\/[^\s"'<>]{1,2048})/dgi,
  },
  {
    kind: 'vin',
    re: /(?<![A-Za-z0-9])(?<v>[A-HJ-NPR-Z0-9]{17})(?![A-Za-z0-9])/dg,
    accept: isVin,
  },
]

const ZIP_RULES: Record<Exclude<ZipMode, 'off'>, Rule> = {
  prefixed: {
    kind: 'zip',
    re: new RegExp(
      `${NOT_AFTER_LETTER}(?:zip|zipcode|zip[\\s_-]?code|postal[\\s_-]?code|postcode)` +
        `${CONTEXT_SEP}(?<v>\\d{5}(?:-\\d{4})?)(?!\\d)`,
      'dgi',
    ),
  },
  all: { kind: 'zip', re: /(?<![\d.])(?<v>\d{5}(?:-\d{4})?)(?!\d)(?!\.\d)/dg },
}

/** Compile a configured format; throws `SyntaxError` naming nothing of the input. */
function compileFormat(format: SiteFormat): Rule {
  const re = new RegExp(format.pattern, 'dg')
  if (re.test('')) throw new SyntaxError(`format ${format.name} matches the empty string`)
  return { kind: format.kind ?? 'mrn', re, format: format.name }
}

// Topics repeat: remember this many results, then start over.
const TOPIC_CACHE_MAX_ENTRIES = 4096

/** Runs the detectors; build one per config, reuse it for every check. */
export class PhiDetector {
  readonly #rules: readonly Rule[]
  // Keyed by client input, so a Map (never a plain object).
  readonly #topicCache = new Map<string, readonly Hit[]>()

  constructor(options: DetectorOptions = {}) {
    const zip = options.zip ?? 'prefixed'
    const extra = (options.formats ?? []).map(compileFormat)
    this.#rules = [...BASE_RULES, ...(zip === 'off' ? [] : [ZIP_RULES[zip]]), ...extra]
  }

  /**
   * Every hit in `text`, ordered by start. The detectors run on the text as
   * given and, when it holds percent-encoding or compatibility forms, on its
   * decoded form too (`jane.doe%40example.com`); hits in the decoded form
   * carry the span of the input they came from.
   */
  detect(text: string, source: TextSource = 'text'): Hit[] {
    const hits = this.#detectPlain(text, source)
    const decoded = decodeForScreening(text)
    if (decoded) {
      const seen = new Set(hits.map((h) => `${h.kind}:${h.start}:${h.end}`))
      for (const hit of this.#detectPlain(decoded.text, source)) {
        const start = decoded.starts[hit.start] ?? 0
        const end = decoded.ends[hit.end - 1] ?? text.length
        const key = `${hit.kind}:${start}:${end}`
        if (seen.has(key)) continue
        seen.add(key)
        hits.push({ ...hit, start, end })
      }
    }
    return hits.sort((a, b) => a.start - b.start || a.end - b.end)
  }

  #detectPlain(text: string, source: TextSource): Hit[] {
    const hits: Hit[] = []
    for (const rule of this.#rules) {
      if (rule.only && rule.only !== source) continue
      rule.re.lastIndex = 0
      for (const match of text.matchAll(rule.re)) {
        const span = match.indices?.groups?.v ?? match.indices?.[0]
        if (!span || span[1] <= span[0]) continue
        const value = text.slice(span[0], span[1])
        if (rule.accept && !rule.accept(value, text, span[0])) continue
        const kind = rule.kindAt ? rule.kindAt(text, span[0]) : rule.kind
        hits.push({ kind, start: span[0], end: span[1], format: rule.format })
      }
    }
    return hits
  }

  /**
   * Hits in a topic name or filter (dates read with `/` as a level
   * separator). Results are cached: the same topic is checked on every
   * publish and every delivery.
   */
  detectTopic(topic: string): readonly Hit[] {
    const cached = this.#topicCache.get(topic)
    if (cached) return cached
    const hits = Object.freeze(this.detect(topic, 'topic'))
    if (this.#topicCache.size >= TOPIC_CACHE_MAX_ENTRIES) this.#topicCache.clear()
    this.#topicCache.set(topic, hits)
    return hits
  }

  /** True when any detector fires. */
  hasPhi(text: string, source: TextSource = 'text'): boolean {
    return this.detect(text, source).length > 0
  }

  /** The topic with every level that a hit touches replaced by `***`. */
  maskTopic(topic: string): string {
    const hits = this.detectTopic(topic)
    if (hits.length === 0) return topic
    const levels = topic.split('/')
    let offset = 0
    return levels
      .map((level) => {
        const start = offset
        const end = offset + level.length
        offset = end + 1
        const touched = hits.some((h) => h.start < Math.max(end, start + 1) && h.end > start)
        return touched ? '***' : level
      })
      .join('/')
  }

  /** The text with every hit span replaced by `***` (client ids, free text). */
  maskText(text: string): string {
    const hits = this.detect(text)
    if (hits.length === 0) return text
    let out = ''
    let at = 0
    for (const hit of hits) {
      if (hit.end <= at) continue
      out += `${text.slice(at, Math.max(at, hit.start))}***`
      at = Math.max(at, hit.end)
    }
    return out + text.slice(at)
  }
}

/** The detector with default options (no configured formats, ZIP `prefixed`). */
export const defaultDetector = new PhiDetector()

/** Hits of the default detector in `text`. */
export function detect(text: string): Hit[] {
  return defaultDetector.detect(text)
}

/** Mask the levels of `topic` that the default detector flags: `clinic/pt/***\/hr`. */
export function maskTopic(topic: string): string {
  return defaultDetector.maskTopic(topic)
}
