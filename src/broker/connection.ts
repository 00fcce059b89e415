/**
 * One network connection: bytes in through the framer and the codec, packets
 * out with writes coalesced per tick. It knows the protocol state of the
 * connection (before CONNECT, connecting, open, closed) and dispatches each
 * packet to its handler in `handlers/`.
 */
import type { Duplex } from 'node:stream'
import { messageDeliveredEvent } from '../audit/build.js'
import type { Actor } from '../audit/events.js'
import {
  createParser,
  decodeFast,
  encodeBarePublish,
  encodePacket,
  type Packet,
  type Parser,
} from '../protocol/codec.js'
import { type FrameProblem, Framer } from '../protocol/framer.js'
import { checkInboundProperties } from '../protocol/properties.js'
import { ReasonCode } from '../protocol/reason-codes.js'
import type { TopicProblem } from '../protocol/topic.js'
import { checkPacketStrings } from '../protocol/utf8-fields.js'
import type { Broker } from './broker.js'
import type { ConnectionContext } from './broker-api.js'
import type { TimerHandle } from './clock.js'
import { dispatchPacket } from './handlers/dispatch.js'
import type { Logger } from './logger.js'
import type { Session } from './session.js'
import type { ClientInfo, Message, ProtocolVersion, Qos } from './types.js'

/** Bytes a slow reader may have waiting before QoS 0 messages to it are dropped. */
const WRITE_BUFFER_LIMIT_BYTES = 8 * 1024 * 1024
/** Packets held while CONNECT is being decided. */
const HELD_PACKETS_MAX = 64
/** How long a closing socket may linger before it is destroyed. */
const CLOSE_GRACE_MS = 2000

export type ConnectionState = 'new' | 'connecting' | 'open' | 'closed'

/** Why a connection ended, for the audit event and the will decision. */
export interface CloseCause {
  /** `client`, `server`, `keepalive`, `socket`, `takeover`, `protocol`, `timeout`. */
  readonly cause: string
  readonly reasonCode?: number | undefined
  /** Publish the will? Defaults: yes unless the client sent DISCONNECT 0x00. */
  readonly sendWill?: boolean | undefined
}

let nextConnectionId = 1

export class Connection {
  readonly id = nextConnectionId++
  readonly context: ConnectionContext
  readonly broker: Broker
  state: ConnectionState = 'new'
  version: ProtocolVersion = 4
  clientId = ''
  clientInfo: ClientInfo | undefined
  session: Session | undefined
  log: Logger

  // Negotiated at CONNECT (MQTT 5 properties; 3.1.1 keeps the defaults).
  clientReceiveMaximum = 65_535
  clientMaximumPacketSize = Number.POSITIVE_INFINITY
  requestProblemInformation = true
  keepAliveSeconds = 0
  /** Inbound Topic Alias mapping [MQTT-3.3.2-10]. */
  readonly topicAliases = new Map<number, string>()
  /** What `checkTopicName` said of the PUBLISH being handled. */
  topicProblem: TopicProblem | undefined
  /** Inbound QoS 1/2 PUBLISHes not yet acknowledged by us. */
  inboundUnacked = 0
  /** Acknowledgements waiting for the store; later ones queue behind them. */
  pendingAcks = 0
  will: Message | undefined
  willDelaySeconds = 0
  /** Session Expiry Interval sent in CONNECT (0 if absent), for the DISCONNECT rule. */
  connectSessionExpiry = 0

  readonly #stream: Duplex
  readonly #framer: Framer
  #parser: Parser
  #held: Buffer[] | undefined
  #corked = false
  #lastActivity: number
  #timer: TimerHandle | undefined
  #closeTimer: NodeJS.Timeout | undefined

  constructor(broker: Broker, stream: Duplex, context: ConnectionContext) {
    this.broker = broker
    this.context = context
    this.#stream = stream
    this.log = broker.log.child({ conn: this.id, listener: context.listener })
    this.#lastActivity = broker.clock.now()
    this.#parser = this.#makeParser(4)
    this.#framer = new Framer(broker.limits.maxPacketSizeBytes, {
      onPacket: (raw) => this.#onRawPacket(raw),
      onProblem: (problem, size) => this.#onFrameProblem(problem, size),
    })
    stream.on('data', (chunk: Buffer) => this.#onData(chunk))
    stream.on('error', () => this.close({ cause: 'socket' }))
    stream.on('close', () => this.close({ cause: 'socket' }))
    stream.on('end', () => this.close({ cause: 'socket' }))
    stream.on('drain', () => this.session?.pump())
    // A socket that sends no CONNECT in time is closed.
    this.#timer = broker.clock.schedule(broker.limits.connectTimeoutSeconds * 1000, () => {
      if (this.state === 'new' || this.state === 'connecting') this.close({ cause: 'timeout' })
    })
  }

  get isOpen(): boolean {
    return this.state === 'open'
  }

  /** Audit actor for this connection. */
  get actor(): Actor {
    return {
      clientId: this.clientId,
      identity: this.context.identity,
      listener: this.context.listener,
      remoteAddress: this.context.remoteAddress,
    }
  }

  #makeParser(version: ProtocolVersion): Parser {
    const parser = createParser(version)
    parser.on('packet', (packet: Packet) => this.#onPacket(packet))
    parser.on('error', (err: Error) => {
      this.#parseError = err
    })
    return parser
  }

  #parseError: Error | undefined
  #currentRaw: Buffer | undefined

  #takeParseError(): Error | undefined {
    const error = this.#parseError
    this.#parseError = undefined
    return error
  }

  /** Switch the codec to the level CONNECT announced. */
  setVersion(version: ProtocolVersion): void {
    this.version = version
    if (version !== 4) this.#parser = this.#makeParser(version)
  }

  #onData(chunk: Buffer): void {
    if (this.state === 'closed') return
    this.#lastActivity = this.broker.clock.now()
    this.#framer.push(chunk)
  }

  #onFrameProblem(problem: FrameProblem, size: number): void {
    if (problem === 'too-large') {
      this.violation(ReasonCode.PacketTooLarge, 'MQTT-3.1.2-24', `packet of ${size} bytes`)
    } else {
      this.violation(ReasonCode.MalformedPacket, 'MQTT-1.5.5-1', 'bad remaining length')
    }
  }

  #onRawPacket(raw: Buffer): void {
    if (this.state === 'closed') return
    if (this.#held) {
      // CONNECT is being decided: hold what follows it, within bounds.
      if (this.#held.length >= HELD_PACKETS_MAX) {
        this.violation(
          ReasonCode.ReceiveMaximumExceeded,
          'phimq.held-packets',
          'too many early packets',
        )
        return
      }
      this.#held.push(Buffer.from(raw))
      return
    }
    // Strings, lengths and properties on the raw bytes: mqtt-packet decodes
    // ill-formed UTF-8 silently and keeps only some duplicates.
    const bad = checkPacketStrings(raw, this.version)
    if (bad !== undefined) {
      this.violation(bad.reasonCode, bad.rule, bad.message)
      return
    }
    this.#currentRaw = raw
    if (this.state === 'open') {
      const fast = decodeFast(raw, this.version)
      if (fast) {
        dispatchPacket(this, fast)
        this.#currentRaw = undefined
        return
      }
    }
    this.#parseError = undefined
    this.#parser.parse(raw)
    this.#currentRaw = undefined
    const error = this.#takeParseError()
    if (error && (this.state as ConnectionState) !== 'closed') {
      this.#handleDecodeError(raw, error.message)
    }
  }

  /** The raw bytes of the packet being handled (valid during the handler). */
  get currentRaw(): Buffer | undefined {
    return this.#currentRaw
  }

  #handleDecodeError(raw: Buffer, rule: string): void {
    // An unsupported protocol level gets its CONNACK before the close [MQTT-3.1.2-2].
    if (this.state === 'new' && raw[0] === 0x10 && /protocol version/i.test(rule)) {
      this.writeRaw(Buffer.from([0x20, 0x02, 0x00, 0x01]))
      this.broker.auditRefusal(this, ReasonCode.UnsupportedProtocolVersion, 'MQTT-3.1.2-2')
      this.close({ cause: 'protocol', sendWill: false })
      return
    }
    this.violation(ReasonCode.MalformedPacket, 'mqtt-packet', rule.toLowerCase())
  }

  #onPacket(packet: Packet): void {
    if (this.state === 'closed') return
    const level = packet.cmd === 'connect' && packet.protocolVersion === 5 ? 5 : this.version
    const badProps = checkInboundProperties(packet, level)
    if (badProps !== undefined) {
      this.violation(badProps.reasonCode, badProps.rule, badProps.message)
      return
    }
    dispatchPacket(this, packet)
  }

  /** Hold packets that arrive while CONNECT is decided. */
  holdPackets(): void {
    this.#held = []
  }

  /** Process what was held, in order. */
  releaseHeld(): void {
    const held = this.#held
    this.#held = undefined
    if (!held) return
    for (const raw of held) {
      if (this.state === 'closed') return
      this.#onRawPacket(raw)
    }
  }

  /** Start the keep-alive watch: 1.5 times the interval [MQTT-3.1.2-22]. */
  startKeepAlive(seconds: number): void {
    this.#timer?.cancel()
    this.#timer = undefined
    this.keepAliveSeconds = seconds
    if (seconds === 0) return
    const limitMs = seconds * 1500
    const check = (): void => {
      if (this.state === 'closed') return
      const idle = this.broker.clock.now() - this.#lastActivity
      if (idle >= limitMs) {
        this.close({ cause: 'keepalive', reasonCode: ReasonCode.KeepAliveTimeout })
        return
      }
      this.#timer = this.broker.clock.schedule(limitMs - idle, check)
    }
    this.#timer = this.broker.clock.schedule(limitMs, check)
  }

  /** Write bytes, coalescing every write of this tick into one. */
  writeRaw(bytes: Buffer): void {
    if (this.state === 'closed') return
    if (!this.#corked) {
      this.#corked = true
      this.#stream.cork()
      process.nextTick(() => {
        this.#corked = false
        this.#stream.uncork()
      })
    }
    this.#stream.write(bytes)
  }

  /** Encode and write a control packet. */
  send(packet: Packet): void {
    if (this.state === 'closed') return
    const bytes = encodePacket(packet, this.version)
    if (bytes.length > this.clientMaximumPacketSize) {
      // [MQTT-3.1.2-25] never send more than the client accepts; drop the
      // optional properties first [MQTT-3.4.2-2 and alike].
      const props = (packet as { properties?: Record<string, unknown> }).properties
      if (props) {
        delete props.reasonString
        delete props.userProperties
        const smaller = encodePacket(packet, this.version)
        if (smaller.length <= this.clientMaximumPacketSize) this.writeRaw(smaller)
      }
      return
    }
    this.writeRaw(bytes)
  }

  /**
   * Send an application message. Returns false when it was not sent because
   * it exceeds the client's Maximum Packet Size (or the client reads too
   * slowly for QoS 0).
   */
  sendPublish(
    message: Message,
    qos: Qos,
    retain: boolean,
    subIds: readonly number[] | undefined,
    packetId: number,
    dup: boolean,
  ): boolean {
    if (this.state !== 'open') return false
    if (qos === 0 && this.#stream.writableLength > WRITE_BUFFER_LIMIT_BYTES) {
      this.broker.dropped(this.clientId, message, 'slow-reader')
      return false
    }
    const bytes = this.broker.encodePublish(
      message,
      this.version,
      qos,
      retain,
      subIds,
      packetId,
      dup,
    )
    if (bytes.length > this.clientMaximumPacketSize) {
      this.broker.dropped(this.clientId, message, 'too-large')
      return false
    }
    this.writeRaw(bytes)
    if (this.broker.auditTraffic) {
      this.broker.emit(messageDeliveredEvent(this.clientInfo as ClientInfo, message))
    }
    return true
  }

  /** No store commit to wait for and no earlier acknowledgement queued. */
  get canAcknowledgeNow(): boolean {
    return this.pendingAcks === 0 && !this.broker.store.durable
  }

  /**
   * Send an acknowledgement once the store has committed what came before
   * it; acknowledgements leave in the order their packets arrived
   * [MQTT-4.6.0-2, MQTT-4.6.0-3].
   */
  acknowledge(send: () => void): void {
    if (this.canAcknowledgeNow) {
      send()
      return
    }
    this.pendingAcks++
    this.broker.store.afterCommit(() => {
      this.pendingAcks--
      if (this.state === 'open') send()
    })
  }

  sendPubrel(packetId: number): void {
    this.writeRaw(Buffer.from([0x62, 0x02, packetId >> 8, packetId & 0xff]))
  }

  /**
   * A protocol violation: in 5.0, after CONNACK, DISCONNECT with the reason
   * code first [MQTT-4.13.1-1]; always close, and audit it once.
   */
  violation(reasonCode: number, rule: string, detail: string): void {
    if (this.state === 'closed') return
    this.log.warn({ event: 'protocol.violation', rule, reasonCode, detail }, 'protocol violation')
    this.broker.auditViolation(this, reasonCode, rule)
    this.close({ cause: 'protocol', reasonCode })
  }

  /** Close the connection once; the broker decides about session and will. */
  close(cause: CloseCause): void {
    if (this.state === 'closed') return
    const wasOpen = this.state === 'open'
    // A server-side close tells a 5.0 client why; the client's own DISCONNECT is not echoed.
    const serverSide = cause.cause !== 'socket' && cause.cause !== 'client'
    if (wasOpen && this.version === 5 && cause.reasonCode !== undefined && serverSide) {
      this.send({ cmd: 'disconnect', reasonCode: cause.reasonCode })
    }
    this.state = 'closed'
    this.#framer.stop()
    this.#held = undefined
    this.#timer?.cancel()
    this.#timer = undefined
    const stream = this.#stream
    if (this.#corked) {
      this.#corked = false
      stream.uncork()
    }
    stream.end()
    // A peer that does not close its side is cut off after a grace period.
    this.#closeTimer = setTimeout(() => stream.destroy(), CLOSE_GRACE_MS)
    this.#closeTimer.unref()
    stream.once('close', () => clearTimeout(this.#closeTimer))
    this.broker.connectionClosed(this, cause, wasOpen)
  }
}

/** Decoded QoS of a packet, narrowed. */
export function qosOf(n: number | undefined): Qos {
  return n === 1 || n === 2 ? n : 0
}

// Re-exported for handlers that build PUBLISH bytes themselves.
export { encodeBarePublish }
