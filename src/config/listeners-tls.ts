/**
 * Config schema of the TLS listeners: `mqtts` (MQTT over TLS) and `wss`
 * (MQTT over WebSocket over TLS). File paths are relative to the config
 * file. See docs/listeners.md.
 */
import { z } from 'zod'

const path = z.string().min(1)

/** How certificate fields become `{ tenant, role, id }` (control C10). */
export const identityRuleSchema = z.discriminatedUnion('from', [
  z.strictObject({
    from: z.literal('san-uri'),
    /** With `{tenant}`, `{role}`, `{id}` placeholders. */
    pattern: z.string().min(1),
    tenant: z.string().min(1).optional(),
    role: z.string().min(1).optional(),
  }),
  z.strictObject({
    from: z.literal('san-dns'),
    pattern: z.string().min(1),
    tenant: z.string().min(1).optional(),
    role: z.string().min(1).optional(),
  }),
  z.strictObject({
    from: z.literal('subject'),
    /** Templates naming `{CN}`, `{O}`, `{OU}`. */
    tenant: z.string().min(1),
    role: z.string().min(1),
    id: z.string().min(1),
  }),
])

export const tlsFilesSchema = z.strictObject({
  /** Server certificate chain (PEM), reloaded when the file changes. */
  cert: path,
  /** Server private key (PEM), reloaded with the certificate. */
  key: path,
  /** CA bundle that client certificates must chain to (C09). */
  ca: path,
  /** CRL files (PEM; one may hold several CRLs), reloaded on change and on an interval (C11). */
  crl: z.array(path).default([]),
  /** `default`: Appendix C "on" suites; `constrained` adds AES-CCM (C07). */
  profile: z.enum(['default', 'constrained']).default('default'),
  /** TLS 1.2 is the floor; 1.3 is always offered (C06). */
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  /** Milliseconds a client has to finish the handshake. */
  handshakeTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  /** How often cert, key, CRL and deny-list files are checked for change. */
  reloadPollMs: z.number().int().min(50).max(600_000).default(2000),
})

export const revocationSchema = z.strictObject({
  /** CRLs are re-read at least this often even without a file change. */
  crlRefreshSeconds: z.number().int().min(1).default(3600),
  /** A CRL past its nextUpdate: `refuse` every client (fail closed) or `allow` with the old list. */
  crlStale: z.enum(['refuse', 'allow']).default('refuse'),
  /** File of SHA-256 fingerprints refused at once, one per line (`#` comments). */
  denyListFile: path.optional(),
})

export const tlsListenerLimitsSchema = z.strictObject({
  maxConnections: z.number().int().min(1).default(10_000),
  /** New connections per source address within `rateWindowSeconds`. */
  connectionsPerAddress: z.number().int().min(1).default(30),
  rateWindowSeconds: z.number().int().min(1).max(3600).default(10),
})

export const certLifetimeSchema = z.strictObject({
  /** Client certs of role `device` living longer than this are flagged (C12). */
  deviceMaxDays: z.number().int().min(1).default(90),
  /** Other client certs living longer than this are flagged. */
  otherMaxDays: z.number().int().min(1).default(397),
  /** `warn` accepts and audits; `deny` refuses the handshake. */
  action: z.enum(['warn', 'deny']).default('warn'),
})

/** Client-certificate OCSP and server stapling (C11). */
export const ocspSchema = z.strictObject({
  /** `if-present`: check certificates naming a responder; `require`: refuse those that name none. */
  mode: z.enum(['off', 'if-present', 'require']).default('if-present'),
  /** Used instead of the certificate's AIA responder. */
  responderUrl: z.url().optional(),
  timeoutMs: z.number().int().min(100).max(30_000).default(2000),
  /** Timeout, error or `unknown`: `refuse` (fail closed) or `allow`. */
  failure: z.enum(['refuse', 'allow']).default('refuse'),
  maxCacheSeconds: z.number().int().min(0).default(3600),
  recheckSeconds: z.number().int().min(1).default(300),
  staple: z.boolean().default(true),
})

const tlsListenerBase = {
  name: z.string().min(1).max(64),
  host: z.string().min(1).default('127.0.0.1'),
  tls: tlsFilesSchema,
  identity: z
    .strictObject({
      rules: z.array(identityRuleSchema).min(1).optional(),
      /**
       * Refuse client certificates without a `urn:phimq:env:<env>` SAN URI
       * (C18). Default: on in `prod`, off elsewhere. A certificate naming
       * another environment than the broker's is refused either way.
       */
      requireEnv: z.boolean().optional(),
    })
    .prefault({}),
  /** How the MQTT Client Identifier must relate to the certificate's id (C10). */
  clientIdBinding: z.enum(['equal', 'prefix', 'free']).default('equal'),
  revocation: revocationSchema.prefault({}),
  limits: tlsListenerLimitsSchema.prefault({}),
  certLifetime: certLifetimeSchema.prefault({}),
  ocsp: ocspSchema.prefault({}),
}

/** MQTT over TLS, default port 8883. */
export const mqttsListenerSchema = z.strictObject({
  ...tlsListenerBase,
  type: z.literal('mqtts'),
  port: z.number().int().min(0).max(65535).default(8883),
})

/** MQTT over WebSocket over TLS, default port 8884, path `/mqtt`. */
export const wssListenerSchema = z.strictObject({
  ...tlsListenerBase,
  type: z.literal('wss'),
  port: z.number().int().min(0).max(65535).default(8884),
  path: z.string().startsWith('/').default('/mqtt'),
  /** Largest WebSocket message; a little above the default max MQTT packet. */
  maxPayloadBytes: z.number().int().min(1024).max(268_435_460).default(1_048_640),
  /** When set, browsers from other origins are refused. */
  allowedOrigins: z.array(z.string().min(1)).optional(),
})

export type MqttsListenerConfig = z.infer<typeof mqttsListenerSchema>
export type WssListenerConfig = z.infer<typeof wssListenerSchema>
export type TlsListenerConfig = MqttsListenerConfig | WssListenerConfig
