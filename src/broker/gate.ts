/**
 * The `Gate` seam: the core asks it whether an action is allowed and with
 * what limits. Policy, PHI guards and quarantine all sit behind it. Refusals
 * carry the MQTT reason code to send and a rule name for the audit trail.
 */
import type { ClientInfo, Message, Qos } from './types.js'

/** A refusal: the reason code goes on the wire, `rule` into the audit event. */
export interface Refusal {
  readonly allow: false
  readonly reasonCode: number
  /** Stable name of the rule that refused, e.g. `policy.default-deny`. */
  readonly rule: string
}

export interface ConnectRequest extends ClientInfo {
  readonly cleanStart: boolean
  readonly keepAliveSeconds: number
  readonly sessionExpirySeconds: number
  readonly password?: Buffer | undefined
  readonly will?: Message | undefined
  /** CONNECT User Properties (5.0), as name/value pairs; the gate screens them (C21). */
  readonly userProperties?: ReadonlyArray<readonly [string, string]> | undefined
}

export type ConnectVerdict =
  | {
      readonly allow: true
      /** Cap on the session expiry this client may have, in seconds. */
      readonly sessionExpiryMaxSeconds?: number | undefined
    }
  | Refusal

export type PublishVerdict =
  | {
      readonly allow: true
      /** The message to route; the gate may have rewritten it. */
      readonly message: Message
    }
  | Refusal

export type SubscribeVerdict =
  | {
      readonly allow: true
      /** The highest QoS granted; never above the requested one. */
      readonly maxQos: Qos
    }
  | Refusal

export interface SubscribeRequest {
  /** The topic filter without any `$share/{group}/` prefix. */
  readonly filter: string
  readonly shareGroup?: string | undefined
  readonly qos: Qos
}

/** Decides, for the core, what each client may do. */
export interface Gate {
  /** At CONNECT, after the protocol checks and before the session is touched. */
  authorizeConnect(request: ConnectRequest): ConnectVerdict | Promise<ConnectVerdict>
  /**
   * Inbound PUBLISH, after topic alias resolution; also wills when they are
   * sent. `now` is the clock as read once for this message, when the caller
   * has it (the gate reads its own clock otherwise).
   */
  authorizePublish(client: ClientInfo, message: Message, now?: number): PublishVerdict
  /** Each topic filter of a SUBSCRIBE. */
  authorizeSubscribe(client: ClientInfo, request: SubscribeRequest): SubscribeVerdict
  /** Each delivery to a subscriber, including retained and queued messages; `now` as above. */
  authorizeDelivery(client: ClientInfo, message: Message, now?: number): boolean
  /**
   * The topic (or filter) as it may appear in logs and audit events: levels
   * a PHI detector flags replaced by `***` (C21, C26). Absent = unchanged.
   */
  maskTopic?(topic: string): string
  /** The client id as it may appear in logs and audit events (C26). */
  maskClientId?(clientId: string): string
}

/** Lets everything through: for development and protocol tests only. */
export const allowAllGate: Gate = {
  authorizeConnect: () => ({ allow: true }),
  authorizePublish: (_client, message) => ({ allow: true, message }),
  authorizeSubscribe: (_client, request) => ({ allow: true, maxQos: request.qos }),
  authorizeDelivery: () => true,
}
