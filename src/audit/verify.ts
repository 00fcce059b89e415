/**
 * `phimq audit verify`: checks a trail directory record by record (C27).
 *
 * For each record: its own `hash` covers its text, its `prevHash` is the
 * SHA-256 of the line before (across segments), event sequence numbers
 * rise by one, checkpoint signatures verify with a known key, and every
 * segment ends with a final checkpoint, except the one a running broker
 * is writing (`live`). A segment left open by a crash is sealed by the
 * next start with a checkpoint marked `recovered`: that is a warning
 * naming how many records were unsigned until then; a segment still open
 * with no broker writing it holds unsigned records and fails. A trail
 * whose oldest segments were deleted by retention must start at a hash
 * named by an `audit.segment-deleted` record.
 *
 * Verification only reads: it never signs, seals or appends.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  CHECKPOINT_TYPE,
  GENESIS_HASH,
  listSegments,
  readFirstLine,
  segmentNumber,
  unsealText,
  unsignText,
} from './segments.js'
import { sha256Hex } from './serialize.js'
import { keyIdOf, verifyText } from './signing.js'

/** Where a record is: segment file and 0-based line index in it. */
export interface RecordPosition {
  readonly segment: string
  readonly index: number
  readonly seq?: number | undefined
}

export interface VerifyProblem extends RecordPosition {
  readonly problem: string
}

export interface VerifyReport {
  readonly ok: boolean
  readonly segments: number
  readonly records: number
  readonly checkpoints: number
  /** Ids of the keys that signed the checkpoints seen. */
  readonly keyIds: string[]
  /** The earliest broken record, when any. */
  readonly firstBroken?: VerifyProblem | undefined
  readonly problems: VerifyProblem[]
  /** Not failures: e.g. an open last segment of a running broker. */
  readonly warnings: string[]
}

export interface VerifyOptions {
  readonly dir: string
  /**
   * Trusted public keys. Default: the `signing-key-*.pub.pem` copies in
   * `dir`; pass an out-of-band copy to defend against a replaced key file.
   */
  readonly publicKeys?: KeyObject[] | undefined
  /**
   * A broker is running and writing the last segment: that one may be
   * open, end in unsigned records and a half-written line. Default false:
   * every segment must be sealed.
   */
  readonly live?: boolean | undefined
}

/** Public keys kept beside the segments, by key id. */
export function loadTrailKeys(dir: string): KeyObject[] {
  return readdirSync(dir)
    .filter((n) => /^signing-key-[0-9a-f]+\.pub\.pem$/.test(n))
    .map((n) => createPublicKey(readFileSync(join(dir, n), 'utf8')))
}

interface State {
  expectedPrev: string | undefined
  lastSeq: number | undefined
  records: number
  checkpoints: number
  keyIds: Set<string>
  deletedHashes: Set<string>
  firstPrev: { at: RecordPosition; hash: string } | undefined
  problems: VerifyProblem[]
  warnings: string[]
}

/** Check a trail directory. Never throws on bad content: it reports it. */
export function verifyTrail(options: VerifyOptions): VerifyReport {
  const keys = new Map<string, KeyObject>()
  for (const key of options.publicKeys ?? loadTrailKeys(options.dir)) keys.set(keyIdOf(key), key)

  const segments = listSegments(options.dir)
  const state: State = {
    expectedPrev: undefined,
    lastSeq: undefined,
    records: 0,
    checkpoints: 0,
    keyIds: new Set(),
    deletedHashes: new Set(),
    firstPrev: undefined,
    problems: [],
    warnings: [],
  }

  segments.forEach((name, i) => {
    const previous = segments[i - 1]
    if (previous && segmentNumber(name) !== (segmentNumber(previous) ?? 0) + 1) {
      state.problems.push({ segment: name, index: 0, problem: 'segment missing before this one' })
    }
    const bytes = readFileSync(join(options.dir, name))
    const next = segments[i + 1]
    const recovery = next ? recoveryNote(join(options.dir, next), name) : undefined
    const live = next === undefined && options.live === true
    checkSegment({ name, bytes, live, recovery, keys, state })
  })

  // The oldest surviving record must start the chain or follow a recorded deletion.
  const first = state.firstPrev
  if (first && first.hash !== GENESIS_HASH && !state.deletedHashes.has(first.hash)) {
    state.problems.unshift({ ...first.at, problem: 'chain starts mid-way with no deletion record' })
  }

  const problems = state.problems
  return {
    ok: problems.length === 0,
    segments: segments.length,
    records: state.records,
    checkpoints: state.checkpoints,
    keyIds: [...state.keyIds],
    firstBroken: problems[0],
    problems,
    warnings: state.warnings,
  }
}

interface SegmentCheck {
  readonly name: string
  readonly bytes: Buffer
  /** The segment a running broker writes now: it may still be open. */
  readonly live: boolean
  /** Set when the next segment says this one was left open by a crash. */
  readonly recovery: { tornBytes: number } | undefined
  readonly keys: Map<string, KeyObject>
  readonly state: State
}

function checkSegment({ name, bytes, live, recovery, keys, state }: SegmentCheck): void {
  const end = bytes.lastIndexOf(0x0a) + 1
  const lines = bytes.subarray(0, end).toString('utf8').split('\n')
  lines.pop()
  const tornBytes = bytes.length - end
  if (tornBytes > 0) {
    if (live) {
      state.warnings.push(`${name}: a record is being written (${tornBytes} bytes so far)`)
    } else if (recovery?.tornBytes === tornBytes) {
      // An older trail: the restart noted the tear but did not seal the segment (below).
      state.warnings.push(`${name} ends with ${tornBytes} torn bytes from a crash`)
    } else {
      // A line without its newline, not declared by a restart: an edit, or
      // a crash no broker has recovered from yet.
      state.problems.push({ segment: name, index: lines.length, problem: 'incomplete last line' })
    }
  }

  let closed: Record<string, unknown> | undefined
  let sinceCheckpoint = 0
  lines.forEach((line, index) => {
    state.records++
    if (closed) {
      state.problems.push({ segment: name, index, problem: 'record after the final checkpoint' })
    }
    const record = checkRecord(name, index, line, keys, state)
    if (record?.type === CHECKPOINT_TYPE) {
      sinceCheckpoint = 0
      if (record.final === true) closed = record
    } else sinceCheckpoint++
    state.expectedPrev = sha256Hex(line)
  })

  if (closed?.recovered === true) {
    const unsigned = typeof closed.unsignedRecords === 'number' ? closed.unsignedRecords : 0
    const torn = typeof closed.tornBytes === 'number' ? closed.tornBytes : 0
    state.warnings.push(
      `${name} was left open by a crash and sealed at the next start: ` +
        `${unsigned} record(s) were unsigned before the seal` +
        (torn > 0 ? `, ${torn} torn bytes cut` : ''),
    )
  }
  if (closed) return
  if (live) {
    state.warnings.push(`${name} is open (the running broker writes it)`)
    if (sinceCheckpoint > 0) {
      state.warnings.push(
        `${sinceCheckpoint} record(s) after the last checkpoint are not signed yet`,
      )
    }
    return
  }
  // Not sealed and nobody writing it: its tail is unsigned and could be rewritten.
  const why = recovery
    ? 'left open by a crash and never sealed'
    : 'not closed by a final checkpoint (left open by a crash? start the broker to seal it)'
  state.problems.push({
    segment: name,
    index: Math.max(0, lines.length - 1),
    problem: `segment ${why}: ${sinceCheckpoint} record(s) not signed`,
  })
}

/** The crash note of `segment` in the `audit.started` record opening the next one. */
function recoveryNote(nextPath: string, segment: string): { tornBytes: number } | undefined {
  const first = readFirstLine(nextPath)
  if (first === undefined) return undefined
  try {
    const record = JSON.parse(first) as Record<string, unknown>
    if (record.type !== 'audit.started' || record.recoveredSegment !== segment) return undefined
    return { tornBytes: typeof record.tornBytes === 'number' ? record.tornBytes : 0 }
  } catch {
    return undefined
  }
}

function checkRecord(
  segment: string,
  index: number,
  line: string,
  keys: Map<string, KeyObject>,
  state: State,
): Record<string, unknown> | undefined {
  const fail = (problem: string, seq?: number): undefined => {
    state.problems.push({ segment, index, seq, problem })
    return undefined
  }

  const sealed = unsealText(line)
  if (!sealed) return fail('record has no hash')
  if (sha256Hex(sealed.body) !== sealed.hash) return fail('record hash mismatch (record altered)')

  let record: Record<string, unknown>
  try {
    record = JSON.parse(line) as Record<string, unknown>
  } catch {
    return fail('record is not json')
  }
  const seq = typeof record.seq === 'number' ? record.seq : undefined

  const prevHash = String(record.prevHash)
  if (state.expectedPrev === undefined) {
    state.firstPrev = { at: { segment, index, seq }, hash: prevHash }
  } else if (prevHash !== state.expectedPrev) {
    fail('prevHash does not match the previous record', seq)
  }

  if (record.type === CHECKPOINT_TYPE) {
    checkCheckpoint(segment, index, sealed.body, record, keys, state)
  } else if (seq === undefined) {
    fail('event has no sequence number')
  } else {
    if (state.lastSeq !== undefined && seq !== state.lastSeq + 1) {
      fail(`sequence jumps from ${state.lastSeq} to ${seq}`, seq)
    }
    state.lastSeq = seq
  }

  if (record.type === 'audit.segment-deleted' && typeof record.lastHash === 'string') {
    state.deletedHashes.add(record.lastHash)
  }
  return record
}

function checkCheckpoint(
  segment: string,
  index: number,
  body: string,
  record: Record<string, unknown>,
  keys: Map<string, KeyObject>,
  state: State,
): void {
  const fail = (problem: string): void => {
    state.problems.push({ segment, index, problem })
  }
  state.checkpoints++
  const keyId = String(record.keyId)
  state.keyIds.add(keyId)

  const signed = unsignText(body)
  const key = keys.get(keyId)
  if (!signed) fail('checkpoint has no signature')
  else if (!key) fail(`checkpoint signed by unknown key ${keyId}`)
  else if (!verifyText(key, signed.signed, signed.sig)) fail('checkpoint signature invalid')

  if (record.segment !== segment) fail('checkpoint names another segment')
  if (record.records !== index) fail('checkpoint record count does not match')
}
