/**
 * The `policy` section of the config: topic rules, topic classes, guards,
 * tenancy, PHI detector formats and pseudonym keys. `docs/policy.md`
 * describes each key. The static checks (placeholders, wildcards, PHI in
 * the config's own topic patterns, names) run here, so a bad policy is a
 * config error with its key path and line.
 */
import { z } from 'zod'
import { checkPolicy } from '../policy/check.js'

/** Names of rules, classes and roles: lower-case words with dashes. */
const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'use a-z, 0-9, ".", "_" and "-"')

/** A topic pattern: MQTT wildcards plus `{tenant}`, `{id}`, `{role}` as whole levels. */
const pattern = z.string().min(1).max(1024)

/** Match on an identity value: exact, or a glob where `*` is any run of characters. */
const glob = z.string().min(1).max(128)

const qos = z.union([z.literal(0), z.literal(1), z.literal(2)])

/** One rule: who, allow or deny, which actions, which topics, with what limits (C15). */
export const ruleSchema = z.strictObject({
  /** Stable name; a refusal by this rule is audited as `policy.rule.<name>`. */
  name,
  effect: z.enum(['allow', 'deny']).default('allow'),
  /** Which identities the rule binds; an empty `who` binds every identity. */
  who: z
    .strictObject({ tenant: glob.optional(), role: glob.optional(), id: glob.optional() })
    .prefault({}),
  actions: z.array(z.enum(['publish', 'subscribe'])).min(1),
  topics: z.array(pattern).min(1),
  maxQos: qos.default(1),
  /** Whether RETAIN=1 is allowed; topic classes may still refuse it. */
  retain: z.boolean().default(false),
  /** `$share` groups this rule lets its identities join; none by default (C17). */
  shareGroups: z.array(glob).default([]),
})

/** A documented, expiring exception to "no retained PHI" (C23). */
export const retainExceptionSchema = z.strictObject({
  topic: pattern,
  /** The documented clinical need (C23). */
  reason: z.string().min(10).max(500),
  /** When the exception lapses: an RFC 3339 date-time or a date (UTC midnight). */
  expires: z.union([z.iso.datetime({ offset: true }), z.iso.date()]),
})

/** How a class screens payloads: JSON fields (C22), or binary with a reason. */
export const payloadRuleSchema = z.discriminatedUnion('format', [
  z.strictObject({
    format: z.literal('json'),
    /** Top-level fields allowed through (C22). */
    fields: z.array(z.string().min(1).max(128)).min(1),
    /** Fields not listed: dropped from the message, or the message refused. */
    unknownFields: z.enum(['drop', 'refuse']).default('drop'),
    /** Fields replaced by a keyed HMAC-SHA-256 pseudonym with the tenant's key. */
    pseudonymize: z.array(z.string().min(1).max(128)).default([]),
  }),
  z.strictObject({
    format: z.literal('binary'),
    /** Why this PHI payload cannot be screened by field (e.g. an ECG waveform). */
    reason: z.string().min(10).max(500),
  }),
])

/** A topic class: lifetimes, limits and payload rule for its topics (C22–C24). */
export const topicClassSchema = z.strictObject({
  name,
  /** PHI classes: no retain except by exception, payload rule required. */
  phi: z.boolean().default(true),
  topics: z.array(pattern).min(1),
  retain: z.boolean().default(false),
  retainExceptions: z.array(retainExceptionSchema).default([]),
  messageExpiry: z
    .strictObject({
      defaultSeconds: z.number().int().min(1).max(4_294_967_295).default(3600),
      maxSeconds: z.number().int().min(1).max(4_294_967_295).default(86_400),
    })
    .prefault({}),
  maxQos: qos.default(2),
  maxPayloadBytes: z.number().int().min(0).max(268_435_455).optional(),
  /** Required MQTT 5 Content Type (media type, parameters ignored). */
  contentType: z.string().min(1).max(255).optional(),
  payload: payloadRuleSchema.optional(),
})

/** A configured identifier format for the PHI detectors (Appendix A rows 8–13). */
export const siteFormatSchema = z.strictObject({
  name,
  /** JavaScript regular expression source; must not match the empty string. */
  pattern: z.string().min(1).max(512),
  kind: z.enum(['mrn', 'health-plan', 'account', 'license', 'device']).default('mrn'),
})

/** A tenant's pseudonym key, from a file or an environment variable (C22). */
export const pseudonymKeySchema = z
  .strictObject({
    tenant: z.string().min(1).max(128),
    /** Carried in every pseudonym so keys can rotate. */
    keyId: z.string().regex(/^[A-Za-z0-9._-]{1,32}$/),
    /** A file holding the key (relative to the config file), or an environment variable. */
    file: z.string().min(1).optional(),
    env: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .optional(),
    encoding: z.enum(['base64', 'hex']).default('base64'),
  })
  .refine((k) => (k.file === undefined) !== (k.env === undefined), {
    message: 'set exactly one of file or env',
  })

/** The `policy` section; see docs/policy.md. */
export const policySchema = z
  .strictObject({
    tenancy: z
      .strictObject({
        /** Every topic of a tenant's client begins with its tenant as the first level. */
        mode: z.literal('prefix').default('prefix'),
        /** Refuse identities that carry no tenant. */
        requireTenant: z.boolean().default(true),
      })
      .prefault({}),
    guards: z
      .strictObject({
        /** Guards may be turned off only outside `prod` (checked when the gate is built). */
        enabled: z.boolean().default(true),
        deviceRoles: z.array(name).default(['device']),
        operationsRoles: z.array(name).default(['operations']),
      })
      .prefault({}),
    rules: z.array(ruleSchema).default([]),
    classes: z.array(topicClassSchema).default([]),
    /** Class for topics no class pattern matches; absent = built-in strict PHI defaults. */
    defaultClass: name.optional(),
    detectors: z
      .strictObject({
        zip: z.enum(['off', 'prefixed', 'all']).default('prefixed'),
        formats: z.array(siteFormatSchema).default([]),
      })
      .prefault({}),
    pseudonymKeys: z.array(pseudonymKeySchema).default([]),
    sessions: z
      .strictObject({
        /** Cap on Session Expiry for every client (C24). */
        expiryMaxSeconds: z.number().int().min(0).max(4_294_967_295).default(86_400),
        byRole: z
          .array(
            z.strictObject({
              role: name,
              expiryMaxSeconds: z.number().int().min(0).max(4_294_967_295),
            }),
          )
          .default([]),
      })
      .prefault({}),
  })
  .superRefine((policy, ctx) => {
    for (const problem of checkPolicy(policy)) {
      ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message })
    }
  })

/** The validated `policy` section and its parts. */
export type PolicyConfig = z.infer<typeof policySchema>
export type RuleConfig = z.infer<typeof ruleSchema>
export type TopicClassConfig = z.infer<typeof topicClassSchema>
export type PseudonymKeyConfig = z.infer<typeof pseudonymKeySchema>
export type PayloadRuleConfig = z.infer<typeof payloadRuleSchema>
