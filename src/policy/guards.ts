/**
 * Guards that hold whatever the rules say (C16, C18), and the tenant prefix.
 * Each check returns the name of the rule that refuses, or `undefined`.
 */
import type { Identity } from '../broker/types.js'
import { levelsOf } from './topic-filter.js'

/** Compiled `policy.guards` and `policy.tenancy`. */
export interface GuardSettings {
  /** Wildcard guards and the `$SYS` guard; always on in `prod`. */
  readonly enabled: boolean
  readonly deviceRoles: ReadonlySet<string>
  readonly operationsRoles: ReadonlySet<string>
  readonly requireTenant: boolean
}

/** Rule names, as they appear in refusals and audit events. */
export const GuardRule = {
  NoIdentity: 'policy.no-identity',
  IdentityInvalid: 'policy.identity-invalid',
  TenantMissing: 'tenant.missing',
  CrossTenant: 'tenant.cross-tenant',
  WildcardPrefix: 'tenant.wildcard-prefix',
  DollarTopic: 'guard.dollar-topic',
  SysOperationsOnly: 'guard.sys-operations-only',
  WildcardRoot: 'guard.wildcard-root',
  DeviceMultiLevel: 'guard.device-multilevel',
} as const

function isOperations(g: GuardSettings, identity: Identity): boolean {
  return identity.role !== undefined && g.operationsRoles.has(identity.role)
}

/**
 * `$` topics: clients never publish to them; `$SYS` is readable only by an
 * operations role (and then only where a rule allows it).
 */
export function checkDollar(
  g: GuardSettings,
  identity: Identity,
  topic: string,
  action: 'publish' | 'subscribe',
): string | undefined {
  const first = levelsOf(topic)[0] ?? ''
  if (!first.startsWith('$')) return undefined
  if (action === 'publish') return GuardRule.DollarTopic
  if (first !== '$SYS') return GuardRule.DollarTopic
  if (g.enabled && !isOperations(g, identity)) return GuardRule.SysOperationsOnly
  return undefined
}

/**
 * Wildcard guards (C16): `#` alone, `+/#` or `{tenant}/#` is refused for
 * everyone; device roles may not use a multi-level wildcard at all.
 */
export function checkWildcards(
  g: GuardSettings,
  identity: Identity,
  filter: string,
): string | undefined {
  if (!g.enabled) return undefined
  const levels = levelsOf(filter)
  const [first, second] = levels
  const rootLike = first === '+' || (identity.tenant !== undefined && first === identity.tenant)
  if (filter === '#' || (levels.length === 2 && second === '#' && rootLike)) {
    return GuardRule.WildcardRoot
  }
  const isDevice = identity.role !== undefined && g.deviceRoles.has(identity.role)
  if (isDevice && levels.includes('#')) return GuardRule.DeviceMultiLevel
  return undefined
}

/**
 * The enforced tenant prefix (C18): a tenant's topics and filters begin with
 * the tenant as their first level. `$SYS` (already guarded) is exempt, and
 * identities without a tenant are bound by the rules alone.
 */
export function checkTenantPrefix(identity: Identity, topic: string): string | undefined {
  if (identity.tenant === undefined) return undefined
  const first = levelsOf(topic)[0] ?? ''
  if (first === '$SYS' || first === identity.tenant) return undefined
  return first === '+' || first === '#' ? GuardRule.WildcardPrefix : GuardRule.CrossTenant
}
