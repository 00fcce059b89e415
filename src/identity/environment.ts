/**
 * The environment a certificate was issued for (control C18: "cert `env`
 * attribute must match broker env"). It travels as its own SAN URI,
 * `urn:phimq:env:<env>`, beside the identity URI, so certificates issued
 * before it existed keep mapping as they did.
 */

/** SAN URIs with this prefix carry the environment, never an identity. */
export const ENV_URI_PREFIX = 'urn:phimq:env:'

/** An environment name: lower-case letters, digits, inner hyphens; at most 32. */
const ENV_NAME = /^[a-z][a-z0-9-]{0,31}$/

/** Why a certificate's environment does not fit the broker's. */
export type EnvRefusal = 'ENV_MISSING' | 'ENV_MISMATCH'

/** True when `name` may be written as a certificate environment. */
export function isEnvName(name: string): boolean {
  return ENV_NAME.test(name)
}

/** The SAN URI for `env` (validate with `isEnvName` first). */
export function envUri(env: string): string {
  return `${ENV_URI_PREFIX}${env}`
}

/** The environment a SAN URI names, or undefined when it is not an env URI. */
export function envOfUri(uri: string): string | undefined {
  if (uri.slice(0, ENV_URI_PREFIX.length).toLowerCase() !== ENV_URI_PREFIX) return undefined
  return uri.slice(ENV_URI_PREFIX.length).toLowerCase()
}

/**
 * C18 at the handshake. A certificate naming another environment than the
 * broker's (or several) is refused; one naming none is refused only when
 * `require` is set (default in `prod`), so older certificates keep working
 * in `dev`. Without a broker environment nothing is checked.
 */
export function checkCertificateEnv(
  envs: readonly string[],
  brokerEnv: string | undefined,
  require: boolean,
): EnvRefusal | undefined {
  if (brokerEnv === undefined) return undefined
  const named = new Set(envs)
  if (named.size === 0) return require ? 'ENV_MISSING' : undefined
  if (named.size > 1 || !named.has(brokerEnv)) return 'ENV_MISMATCH'
  return undefined
}
