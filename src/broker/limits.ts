/**
 * Default limits of the core. The config schema takes its defaults from here.
 */
import type { BrokerLimits } from './broker-api.js'

export const DEFAULT_LIMITS: Readonly<BrokerLimits> = Object.freeze({
  maxPacketSizeBytes: 1_048_576,
  maxTopicLengthBytes: 1024,
  maxTopicLevels: 32,
  maxSubscriptionsPerClient: 100,
  receiveMaximum: 32,
  maxInflightMessages: 32,
  maxQueuedMessages: 1000,
  maxQueuedMessagesOnline: 10_000,
  maxQueuedBytes: 10 * 1024 * 1024,
  topicAliasMaximum: 16,
  sessionExpiryMaxSeconds: 86_400,
  connectTimeoutSeconds: 10,
  maxKeepAliveSeconds: 1200,
  maxRetainedMessages: 100_000,
  maxRetainedBytes: 64 * 1024 * 1024,
})

/** Longest Client Identifier accepted, in bytes. */
export const CLIENT_ID_MAX_BYTES = 256
