/**
 * Undo the encodings a client can use to slip an identifier past the
 * pattern detectors (C21): percent-encoding (`jane.doe%40example.com`),
 * double percent-encoding (`%2540`), and compatibility forms of characters
 * (fullwidth `＠` and digits, folded by NFKC one code point at a time).
 *
 * The decoded text carries, for each of its UTF-16 code units, the span of
 * the input it came from, so a hit found in the decoded text can be masked
 * in the input. Decoding is tolerant: a `%` not followed by two hex digits,
 * or bytes that are not valid UTF-8, stay as they are. `+` is not read as a
 * space: that is form encoding, not topic or client id encoding.
 */

/** Decoded text and, per code unit, the `[start, end)` input span it came from. */
export interface DecodedText {
  readonly text: string
  readonly starts: readonly number[]
  readonly ends: readonly number[]
}

// `%2540` needs two passes; a third catches `%252540`. More is noise.
const PERCENT_PASSES_MAX = 3

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The byte of `%XX` at `at`, or undefined. */
function hexByteAt(text: string, at: number): number | undefined {
  if (text.charCodeAt(at) !== 0x25) return undefined
  const hex = text.slice(at + 1, at + 3)
  return /^[0-9A-Fa-f]{2}$/.test(hex) ? Number.parseInt(hex, 16) : undefined
}

/** Bytes in the UTF-8 sequence a lead byte starts; 0 for a byte that cannot lead. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1
  if (lead >= 0xc2 && lead <= 0xdf) return 2
  if (lead >= 0xe0 && lead <= 0xef) return 3
  if (lead >= 0xf0 && lead <= 0xf4) return 4
  return 0
}

/** The character of the `%XX` sequence at `at`, with its input length, or undefined. */
function decodeSequenceAt(text: string, at: number): { char: string; length: number } | undefined {
  const lead = hexByteAt(text, at)
  if (lead === undefined) return undefined
  const count = sequenceLength(lead)
  if (count === 0) return undefined
  const bytes = [lead]
  for (let k = 1; k < count; k++) {
    const next = hexByteAt(text, at + 3 * k)
    if (next === undefined) return undefined
    bytes.push(next)
  }
  try {
    return { char: utf8.decode(Uint8Array.from(bytes)), length: 3 * count }
  } catch {
    return undefined
  }
}

/** One output being built: text plus per-code-unit spans of the step's input. */
class Builder {
  text = ''
  readonly starts: number[] = []
  readonly ends: number[] = []
  changed = false

  push(chars: string, start: number, end: number): void {
    this.text += chars
    for (let i = 0; i < chars.length; i++) {
      this.starts.push(start)
      this.ends.push(end)
    }
  }
}

/** One percent-decoding pass, or undefined when nothing was decoded. */
function percentPass(text: string): DecodedText | undefined {
  if (!text.includes('%')) return undefined
  const out = new Builder()
  let i = 0
  while (i < text.length) {
    const seq = decodeSequenceAt(text, i)
    if (seq) {
      out.push(seq.char, i, i + seq.length)
      out.changed = true
      i += seq.length
    } else {
      out.push(text[i] as string, i, i + 1)
      i++
    }
  }
  return out.changed ? out : undefined
}

/** NFKC per code point (fullwidth `＠` → `@`, `５` → `5`), or undefined when nothing changed. */
function compatibilityPass(text: string): DecodedText | undefined {
  // Plain ASCII has no compatibility forms: skip the walk.
  if (!/[\u0080-\uffff]/.test(text)) return undefined
  const out = new Builder()
  let i = 0
  for (const char of text) {
    const folded = char.normalize('NFKC')
    if (folded !== char) out.changed = true
    out.push(folded, i, i + char.length)
    i += char.length
  }
  return out.changed ? out : undefined
}

/** `next` (spans in `prev.text`) with its spans moved onto `prev`'s input. */
function compose(prev: DecodedText | undefined, next: DecodedText): DecodedText {
  if (!prev) return next
  const starts = next.starts.map((s) => prev.starts[s] ?? 0)
  const ends = next.ends.map((e) => prev.ends[e - 1] ?? 0)
  return { text: next.text, starts, ends }
}

/**
 * `text` with percent-encoding and compatibility forms undone, or undefined
 * when decoding changes nothing (the caller then screens `text` alone).
 */
export function decodeForScreening(text: string): DecodedText | undefined {
  let decoded: DecodedText | undefined
  let current = text
  for (let pass = 0; pass < PERCENT_PASSES_MAX; pass++) {
    const step = percentPass(current)
    if (!step) break
    decoded = compose(decoded, step)
    current = step.text
  }
  const folded = compatibilityPass(current)
  if (folded) decoded = compose(decoded, folded)
  return decoded
}
