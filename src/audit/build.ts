/**
 * Event builders for the core: they take what the core holds (a client, a
 * message) and keep only what the audit trail may see. The payload becomes
 * its length; nothing else of it is read (C26).
 */
import type { ClientInfo, Message } from '../broker/types.js'
import type { Actor, AuditEvent } from './events.js'

/** The audit `Actor` of a connected client (the username is not kept). */
export function actorOf(client: ClientInfo): Actor {
  return {
    clientId: client.clientId,
    identity: client.identity,
    listener: client.listener,
    remoteAddress: client.remoteAddress,
  }
}

/** `publish.allowed` for an inbound PUBLISH the gate let through. */
export function publishAllowedEvent(client: ClientInfo, message: Message): AuditEvent {
  return {
    type: 'publish.allowed',
    actor: actorOf(client),
    topic: message.topic,
    qos: message.qos,
    retain: message.retain,
    bytes: message.payload.length,
  }
}

/** `message.delivered` for one message sent to a subscriber. */
export function messageDeliveredEvent(client: ClientInfo, message: Message): AuditEvent {
  return {
    type: 'message.delivered',
    actor: actorOf(client),
    topic: message.topic,
    qos: message.qos,
    bytes: message.payload.length,
  }
}
