/**
 * What the layers above see of the core: the options it is built with and
 * the context a listener hands it with each new connection.
 */
import type { Duplex } from 'node:stream'
import type { AuditSink } from '../audit/sink.js'
import type { Store } from '../store/store.js'
import type { Clock } from './clock.js'
import type { Gate } from './gate.js'
import type { Logger } from './logger.js'
import type { Identity } from './types.js'

/** Limits the core enforces; see `limitsSchema` in `src/config/schema.ts` for defaults. */
export interface BrokerLimits {
  maxPacketSizeBytes: number
  maxTopicLengthBytes: number
  maxTopicLevels: number
  maxSubscriptionsPerClient: number
  receiveMaximum: number
  maxInflightMessages: number
  /** Queue cap of a session whose client is away (C24: drop oldest, audited). */
  maxQueuedMessages: number
  /**
   * Queue cap while the client is connected: it reads, so the queue is a
   * buffer for bursts, not a store; still bounded and audited (issue #7).
   */
  maxQueuedMessagesOnline: number
  maxQueuedBytes: number
  topicAliasMaximum: number
  sessionExpiryMaxSeconds: number
  connectTimeoutSeconds: number
  maxKeepAliveSeconds: number
  /** Retained messages the broker holds at most, over all topics. */
  maxRetainedMessages: number
  /** Payload bytes of all retained messages together. */
  maxRetainedBytes: number
}

export interface BrokerOptions {
  nodeId?: string
  gate?: Gate
  store?: Store
  audit?: AuditSink
  clock?: Clock
  logger?: Logger
  limits?: Partial<BrokerLimits>
  /**
   * Back-pressure from the evidence layer: while it returns false (the audit
   * trail cannot write), new connections get 0x88 and publishes 0x80 rather
   * than going unrecorded.
   */
  acceptingWork?: (() => boolean) | undefined
  /** Emit `publish.allowed` and `message.delivered` events (summarized by the sink). */
  auditTraffic?: boolean | undefined
}

/** TLS facts of the connection, filled by the transport layer. */
export interface TlsFacts {
  readonly protocol: string
  readonly cipher: string
  /** SHA-256 fingerprint of the peer certificate, hex with colons. */
  readonly fingerprint256?: string | undefined
}

/** Handed to the core by a listener with each accepted connection. */
export interface ConnectionContext {
  /** The listener's configured name. */
  readonly listener: string
  readonly remoteAddress: string
  /** Mapped from the client certificate; absent on plaintext dev listeners. */
  readonly identity?: Identity | undefined
  /**
   * How the MQTT Client Identifier must relate to `identity.id`:
   * `equal` (default when an identity is present), `prefix`, or `free`.
   */
  readonly clientIdBinding?: 'equal' | 'prefix' | 'free' | undefined
  readonly tls?: TlsFacts | undefined
}

/** The running engine, as listeners and operations tools use it. */
export interface BrokerHandle {
  /** Take over a connected stream; the core owns it from now on. */
  handleConnection(stream: Duplex, context: ConnectionContext): void
  /**
   * Close a live client from the server side (revocation, quarantine). 5.0
   * clients get DISCONNECT with `reasonCode`; the will is not sent.
   * Returns false when no such client is connected.
   */
  disconnectClient(clientId: string, reasonCode: number, options?: { sendWill?: boolean }): boolean
  /** Client ids of the live connections matching `predicate`. */
  listClients(
    predicate?: (c: { clientId: string; identity?: Identity | undefined }) => boolean,
  ): string[]
}
