/**
 * Which identity values are allowed (control C10). A value with an MQTT
 * wildcard, a level separator, `$` or NUL could turn a policy placeholder
 * such as `%client` into a wildcard or a system topic later, so it is refused.
 */

/** Characters never allowed in a tenant, role or id. */
export const FORBIDDEN_IDENTITY_CHARS: ReadonlySet<string> = new Set(['+', '#', '/', '$', '\u0000'])

/** Longest identity value accepted, in UTF-16 code units. */
export const IDENTITY_VALUE_MAX_LENGTH = 128

/** True when `value` is non-empty, short enough and free of forbidden characters. */
export function isSafeIdentityValue(value: string): boolean {
  if (value.length === 0 || value.length > IDENTITY_VALUE_MAX_LENGTH) return false
  for (const ch of value) if (FORBIDDEN_IDENTITY_CHARS.has(ch)) return false
  return true
}
