/**
 * Audit events: one typed union keyed by `type`. Producers fill the fields
 * below; the sink stamps `time`, `seq` and `node`. No event ever holds
 * payload bytes; topics are masked by the producer when a PHI detector
 * flags them.
 */
import type { Identity } from '../broker/types.js'

/** Who did it: the client as the broker knows it. */
export interface Actor {
  readonly clientId: string
  readonly identity?: Identity | undefined
  readonly listener: string
  readonly remoteAddress: string
}

interface Base<T extends string> {
  readonly type: T
}

export type AuditEvent =
  | (Base<'client.connected'> & {
      actor: Actor
      protocolVersion: number
      cleanStart: boolean
      sessionPresent: boolean
      sessionExpirySeconds: number
    })
  | (Base<'client.disconnected'> & {
      actor: Actor
      /** `client` (DISCONNECT), `server`, `keepalive`, `socket`, `takeover`, `protocol`. */
      cause: string
      reasonCode?: number | undefined
    })
  | (Base<'connect.refused'> & {
      remoteAddress: string
      listener: string
      clientId?: string | undefined
      reasonCode: number
      rule: string
    })
  | (Base<'protocol.violation'> & {
      remoteAddress: string
      listener: string
      clientId?: string | undefined
      reasonCode: number
      /** The rule broken, e.g. `MQTT-3.3.2-2`. */
      rule: string
    })
  | (Base<'publish.denied'> & {
      actor: Actor
      topic: string
      qos: number
      retain: boolean
      reasonCode: number
      rule: string
    })
  | (Base<'subscribe.allowed'> & { actor: Actor; filter: string; qos: number })
  | (Base<'subscribe.denied'> & {
      actor: Actor
      filter: string
      reasonCode: number
      rule: string
    })
  | (Base<'unsubscribe'> & { actor: Actor; filter: string })
  | (Base<'retained.set'> & { actor?: Actor | undefined; topic: string; bytes: number })
  | (Base<'retained.cleared'> & { actor?: Actor | undefined; topic: string })
  | (Base<'session.taken-over'> & { actor: Actor })
  | (Base<'session.expired'> & { clientId: string })
  | (Base<'message.dropped'> & {
      clientId: string
      topic: string
      /** `queue-full`, `expired`, `denied`, `too-large`, `receive-maximum` */
      reason: string
    })
  | (Base<'will.published'> & { clientId: string; topic: string })
  | (Base<'will.denied'> & { clientId: string; topic: string; rule: string })
  | (Base<'tenant.cross-tenant'> & {
      actor: Actor
      /** `connect` (will), `publish` or `subscribe`. */
      op: string
      /** Topic or filter, masked by the PHI detectors. */
      topic: string
      rule: string
      severity: 'high'
    })
  | (Base<'policy.reloaded'> & {
      version: number
      /** Names of rules, classes and key tenants added, removed or changed. */
      changes: Record<string, string[]>
    })
  | (Base<'policy.reload-refused'> & {
      /** Why, one line per problem; config paths, never topic values unmasked. */
      problems: string[]
    })

export type AuditEventType = AuditEvent['type']

/** An event as stored: stamped by the sink. */
export type StampedAuditEvent = AuditEvent & {
  /** RFC 3339 UTC with milliseconds. */
  readonly time: string
  /** Monotonic per node. */
  readonly seq: number
  readonly node: string
}
