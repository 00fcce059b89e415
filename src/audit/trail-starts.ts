/**
 * What the trail itself says about the processes that wrote it (C27).
 *
 * Every start of a trail opens a new segment whose first record is
 * `audit.started`, naming the broker environment and the config file the
 * process started with. `phimq audit` trusts these records, written by
 * the trail's owner and covered by its hash chain, over the config it is
 * handed on the command line: a copy of a `dev` config pointed at a
 * production data directory must not open the dev bypass.
 */
import { join } from 'node:path'
import { listSegments, parseRecordLine, readFirstLine, unsealText } from './segments.js'
import { sha256Hex } from './serialize.js'

/** One `audit.started` record that opens a segment. */
export interface TrailStart {
  readonly segment: string
  /** Absent when the record predates the field, or cannot be trusted. */
  readonly environment?: string | undefined
  /** Absolute path of the config file the writer started with. */
  readonly config?: string | undefined
}

/**
 * The `audit.started` records opening the segments of `dir`, oldest
 * first. A first line whose own hash does not match is returned as a start
 * with nothing known (the caller fails closed).
 */
export function readTrailStarts(dir: string): TrailStart[] {
  const starts: TrailStart[] = []
  for (const segment of listSegments(dir)) {
    const line = readFirstLine(join(dir, segment))
    if (line === undefined) continue
    const sealed = unsealText(line)
    if (!sealed || sha256Hex(sealed.body) !== sealed.hash) {
      starts.push({ segment })
      continue
    }
    const record = parseRecordLine(line)
    // Segments opened by rotation start with any record: not a start.
    if (record?.type !== 'audit.started') continue
    starts.push({
      segment,
      environment: typeof record.environment === 'string' ? record.environment : undefined,
      config: typeof record.config === 'string' ? record.config : undefined,
    })
  }
  return starts
}
