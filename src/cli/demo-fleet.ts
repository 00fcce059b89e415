/**
 * The parts of `phimq demo` that do not touch the broker: synthetic FHIR R4
 * Observations from four kinds of home device, what a home gateway strips
 * and aggregates before forwarding, and the de-identified aggregates the
 * analytics consumer may read. All data is synthetic: random values, a
 * pseudonymous patient reference, a made-up serial number.
 */
import { createHash } from 'node:crypto'

const LOINC = 'http://loinc.org'
const UCUM = 'http://unitsofmeasure.org'
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category'

/** One LOINC-coded quantity: what a device measures. */
interface Measure {
  readonly loinc: string
  readonly display: string
  /** UCUM code and the short unit shown to people. */
  readonly ucum: string
  readonly unit: string
  /** Metric name on the de-identified feed (`{tenant}/deid/<metric>`). */
  readonly metric: string
  readonly lo: number
  readonly hi: number
}

/** A kind of home device. Intervals are demo-shortened (real: hours or a day). */
export interface DeviceKind {
  /** Last level of its topics. */
  readonly kind: 'bp' | 'spo2' | 'glucose' | 'weight'
  readonly label: string
  readonly everyMs: number
  readonly category: 'vital-signs' | 'laboratory'
  /** The Observation code; with `components` a panel. */
  readonly code: { readonly loinc: string; readonly display: string }
  readonly value?: Measure
  readonly components?: readonly Measure[]
  /** The gateway forwards the mean of each window instead of every sample. */
  readonly aggregate: boolean
}

export const DEVICE_KINDS: readonly DeviceKind[] = [
  {
    kind: 'bp',
    label: 'blood-pressure cuff',
    everyMs: 3000,
    category: 'vital-signs',
    code: { loinc: '85354-9', display: 'Blood pressure panel with all children optional' },
    components: [
      measure('8480-6', 'Systolic blood pressure', 'mm[Hg]', 'mmHg', 'sys', 110, 140),
      measure('8462-4', 'Diastolic blood pressure', 'mm[Hg]', 'mmHg', 'dia', 70, 90),
    ],
    aggregate: false,
  },
  {
    kind: 'spo2',
    label: 'pulse oximeter',
    everyMs: 1000,
    category: 'vital-signs',
    code: { loinc: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
    value: measure('59408-5', 'Oxygen saturation', '%', '%', 'spo2', 94, 99),
    aggregate: true,
  },
  {
    kind: 'glucose',
    label: 'glucose meter',
    everyMs: 4000,
    category: 'laboratory',
    code: { loinc: '41653-7', display: 'Glucose [Mass/volume] in Capillary blood by Glucometer' },
    value: measure('41653-7', 'Glucose', 'mg/dL', 'mg/dL', 'glucose', 80, 140),
    aggregate: false,
  },
  {
    kind: 'weight',
    label: 'weight scale',
    everyMs: 5000,
    category: 'vital-signs',
    code: { loinc: '29463-7', display: 'Body weight' },
    value: measure('29463-7', 'Body weight', 'kg', 'kg', 'weight', 60, 90),
    aggregate: false,
  },
]

/** How many device kinds one home has: devices 1-4 are home 1, 5-8 home 2 … */
const DEVICES_PER_HOME = DEVICE_KINDS.length

function measure(
  loinc: string,
  display: string,
  ucum: string,
  unit: string,
  metric: string,
  lo: number,
  hi: number,
): Measure {
  return { loinc, display, ucum, unit, metric, lo, hi }
}

function rand(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1))
}

function coding(loinc: string, display: string): object {
  return { coding: [{ system: LOINC, code: loinc, display }] }
}

function quantity(m: Measure, value: number): object {
  return { value, unit: m.unit, system: UCUM, code: m.ucum }
}

/** Device ids of the fleet: `bp-001`, `spo2-002`, … cycling through the kinds. */
export function fleetIds(devices: number): string[] {
  return Array.from({ length: devices }, (_, i) => {
    const kind = DEVICE_KINDS[i % DEVICE_KINDS.length] as DeviceKind
    return `${kind.kind}-${String(i + 1).padStart(3, '0')}`
  })
}

/** The kind of a fleet device id. */
export function kindOf(id: string): DeviceKind {
  const found = DEVICE_KINDS.find((k) => id.startsWith(`${k.kind}-`))
  if (!found) throw new RangeError('not a fleet device id')
  return found
}

/**
 * A pseudonymous patient reference for the home of device `index`: a hash of
 * a made-up home number, so no real identifier is behind it.
 */
export function patientReference(tenant: string, index: number): string {
  const home = Math.floor(index / DEVICES_PER_HOME)
  const hash = createHash('sha256').update(`${tenant}:synthetic-home:${home}`).digest('hex')
  return `Patient/pseudo-${hash.slice(0, 12)}`
}

/**
 * One reading as a device sends it to its home gateway: a FHIR R4
 * Observation, plus the device serial and a free-text note, which are
 * identifiers and must not leave the home (the gateway strips them).
 */
export function deviceObservation(kind: DeviceKind, subject: string, serial: string): object {
  const obs: Record<string, unknown> = {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: CATEGORY, code: kind.category }] }],
    code: coding(kind.code.loinc, kind.code.display),
    subject: { reference: subject },
    effectiveDateTime: new Date().toISOString(),
    device: { identifier: { system: 'urn:phimq:demo:serial', value: serial } },
    note: [{ text: 'synthetic reading from phimq demo' }],
  }
  if (kind.value) obs.valueQuantity = quantity(kind.value, rand(kind.value.lo, kind.value.hi))
  if (kind.components) {
    obs.component = kind.components.map((m) => ({
      code: coding(m.loinc, m.display),
      valueQuantity: quantity(m, rand(m.lo, m.hi)),
    }))
  }
  return obs
}

/** What the gateway forwards; everything else stays in the home. */
const FORWARDED_FIELDS: ReadonlySet<string> = new Set([
  'resourceType',
  'status',
  'category',
  'code',
  'subject',
  'effectiveDateTime',
  'effectivePeriod',
  'valueQuantity',
  'component',
])

/** Keep only the forwarded fields; say how many were removed. */
export function stripForForward(obs: Record<string, unknown>): {
  obs: Record<string, unknown>
  stripped: number
} {
  const kept: Record<string, unknown> = {}
  let stripped = 0
  for (const [key, value] of Object.entries(obs)) {
    if (FORWARDED_FIELDS.has(key)) kept[key] = value
    else stripped++
  }
  return { obs: kept, stripped }
}

/** Fields that must never reach a clinical app from the gateway. */
export function leakedFields(obs: Record<string, unknown>): string[] {
  return Object.keys(obs).filter((k) => !FORWARDED_FIELDS.has(k))
}

/**
 * The gateway's window for a sampling device: one Observation over
 * `effectivePeriod` whose value is the mean of the samples (rounded).
 */
export function meanObservation(samples: Array<Record<string, unknown>>): Record<string, unknown> {
  const first = samples[0] as Record<string, unknown>
  const last = samples[samples.length - 1] as Record<string, unknown>
  const values = samples.map((s) => (s.valueQuantity as { value: number }).value)
  const mean = values.reduce((a, b) => a + b, 0) / values.length
  const { effectiveDateTime: _drop, ...rest } = first
  return {
    ...rest,
    effectivePeriod: { start: first.effectiveDateTime, end: last.effectiveDateTime },
    valueQuantity: { ...(first.valueQuantity as object), value: Math.round(mean * 10) / 10 },
  }
}

/** Metric values of one forwarded Observation: `[metric, value, unit]`. */
export function metricsOf(
  obs: Record<string, unknown>,
  kind: DeviceKind,
): [string, number, string][] {
  const out: [string, number, string][] = []
  const value = (obs.valueQuantity as { value?: unknown } | undefined)?.value
  if (kind.value && typeof value === 'number') out.push([kind.value.metric, value, kind.value.unit])
  const components = Array.isArray(obs.component) ? obs.component : []
  kind.components?.forEach((m, i) => {
    const v = (components[i] as { valueQuantity?: { value?: unknown } } | undefined)?.valueQuantity
    if (typeof v?.value === 'number') out.push([m.metric, v.value, m.unit])
  })
  return out
}

/** Smallest count of readings behind one de-identified aggregate (small cells suppressed). */
export const DEID_MIN_READINGS = 2

/**
 * Collects metric values and yields de-identified aggregates: the cohort
 * mean with its count and unit, no subject, no device, no time.
 */
export class CohortAggregator {
  readonly #sums = new Map<string, { sum: number; n: number; unit: string }>()

  add(metric: string, value: number, unit: string): void {
    const cell = this.#sums.get(metric) ?? { sum: 0, n: 0, unit }
    cell.sum += value
    cell.n++
    this.#sums.set(metric, cell)
  }

  /** Aggregates with at least `DEID_MIN_READINGS` readings; those cells start again. */
  take(cohort: string): Array<{ metric: string; payload: object }> {
    const out: Array<{ metric: string; payload: object }> = []
    for (const [metric, cell] of this.#sums) {
      if (cell.n < DEID_MIN_READINGS) continue
      const value = Math.round((cell.sum / cell.n) * 10) / 10
      out.push({ metric, payload: { cohort, metric, value, unit: cell.unit, n: cell.n } })
      this.#sums.delete(metric)
    }
    return out
  }
}
