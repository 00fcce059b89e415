/**
 * Certificate → identity mapping (control C10). An ordered list of rules;
 * the first rule whose source fields are present decides. SAN URI comes
 * first by default, then the subject's O / OU / CN.
 *
 * - `san-uri` / `san-dns`: `pattern` with `{tenant}`, `{role}`, `{id}`
 *   placeholders, matched against each SAN value of that type. Each
 *   placeholder matches one segment (no `:`, `.` or `/`).
 * - `subject`: `tenant`, `role`, `id` templates naming `{CN}`, `{O}`, `{OU}`.
 *
 * Fields absent from a pattern take the rule's literal `tenant` / `role`.
 */
import type { Identity } from '../broker/types.js'
import type { CertificateFields } from './certificate-fields.js'
import { isSafeIdentityValue } from './values.js'

export type IdentityRule =
  | {
      readonly from: 'san-uri' | 'san-dns'
      readonly pattern: string
      readonly tenant?: string | undefined
      readonly role?: string | undefined
    }
  | {
      readonly from: 'subject'
      readonly id: string
      readonly tenant: string
      readonly role: string
    }

/** Default rules: the phimq SAN URI, else O / OU / CN. */
export const DEFAULT_IDENTITY_RULES: readonly IdentityRule[] = [
  { from: 'san-uri', pattern: 'urn:phimq:{tenant}:{role}:{id}' },
  { from: 'subject', tenant: '{O}', role: '{OU}', id: '{CN}' },
]

/** A mapped identity with all three parts present. */
export interface MappedIdentity extends Identity {
  readonly tenant: string
  readonly role: string
  readonly id: string
}

/** Why a certificate did not map; goes into the `tls.handshake` audit event. */
export type IdentityRefusal =
  | 'IDENTITY_UNMAPPED'
  | 'IDENTITY_AMBIGUOUS'
  | 'IDENTITY_FORBIDDEN_VALUE'

export type MappingResult =
  | { readonly ok: true; readonly identity: MappedIdentity; readonly rule: number }
  | { readonly ok: false; readonly reason: IdentityRefusal }

const PLACEHOLDERS = ['tenant', 'role', 'id'] as const
type Part = (typeof PLACEHOLDERS)[number]

/** A compiled mapper; build once per listener. */
export class IdentityMapper {
  readonly #rules: ReadonlyArray<(f: CertificateFields) => Candidate>

  constructor(rules: readonly IdentityRule[] = DEFAULT_IDENTITY_RULES) {
    this.#rules = rules.map(compileRule)
  }

  /** Map certificate fields to an identity, or say why not. */
  map(fields: CertificateFields): MappingResult {
    for (const [index, rule] of this.#rules.entries()) {
      const found = rule(fields)
      if (found === 'no-match') continue
      if (found === 'ambiguous') return { ok: false, reason: 'IDENTITY_AMBIGUOUS' }
      // The first matching rule decides: a forbidden value is refused, not
      // passed over to a weaker rule.
      const { tenant, role, id } = found
      if (![tenant, role, id].every(isSafeIdentityValue)) {
        return { ok: false, reason: 'IDENTITY_FORBIDDEN_VALUE' }
      }
      return { ok: true, identity: Object.freeze({ tenant, role, id }), rule: index }
    }
    return { ok: false, reason: 'IDENTITY_UNMAPPED' }
  }
}

type Candidate = MappedIdentity | 'no-match' | 'ambiguous'

function compileRule(rule: IdentityRule): (f: CertificateFields) => Candidate {
  if (rule.from === 'subject') return (f) => fromSubject(rule, f)
  const regex = patternToRegex(rule.pattern)
  return (f) => {
    const values = rule.from === 'san-uri' ? f.sanUris : f.sanDns
    const found = new Map<string, MappedIdentity>()
    for (const value of values) {
      const groups = regex.exec(value)?.groups
      if (!groups) continue
      const identity = {
        tenant: groups.tenant ?? rule.tenant ?? '',
        role: groups.role ?? rule.role ?? '',
        id: groups.id ?? '',
      }
      found.set(`${identity.tenant}\u0000${identity.role}\u0000${identity.id}`, identity)
    }
    if (found.size > 1) return 'ambiguous'
    return found.values().next().value ?? 'no-match'
  }
}

/** Literal text escaped; each placeholder one segment without `:` `.` `/`. */
function patternToRegex(pattern: string): RegExp {
  let source = ''
  for (const piece of pattern.split(/(\{(?:tenant|role|id)\})/)) {
    const name = /^\{(tenant|role|id)\}$/.exec(piece)?.[1] as Part | undefined
    source += name ? `(?<${name}>[^:./]+)` : piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${source}$`, 'i')
}

function fromSubject(
  rule: Extract<IdentityRule, { from: 'subject' }>,
  fields: CertificateFields,
): Candidate {
  const parts = new Map<Part, string>()
  for (const part of PLACEHOLDERS) {
    const value = fillTemplate(rule[part], fields.subject)
    if (value === 'no-match' || value === 'ambiguous') return value
    parts.set(part, value)
  }
  return { tenant: parts.get('tenant')!, role: parts.get('role')!, id: parts.get('id')! }
}

function fillTemplate(
  template: string,
  subject: ReadonlyMap<string, readonly string[]>,
): string | 'no-match' | 'ambiguous' {
  let missing = false
  let ambiguous = false
  const out = template.replace(/\{(CN|O|OU)\}/g, (_, field: string) => {
    const values = subject.get(field) ?? []
    if (values.length === 0) missing = true
    if (values.length > 1) ambiguous = true
    return values[0] ?? ''
  })
  if (ambiguous) return 'ambiguous'
  return missing ? 'no-match' : out
}
