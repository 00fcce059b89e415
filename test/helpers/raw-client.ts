/**
 * A raw MQTT client for packet-exact tests: a real loopback socket, packets
 * built by `mqtt-packet`'s `generate` and read back by its `parser`. It does
 * nothing on its own (no PINGREQ, no acknowledgements), so a test sees and
 * sends every byte.
 */
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import mqttPacket, { type IConnackPacket, type IConnectPacket, type Packet } from 'mqtt-packet'

type Waiter = {
  readonly cmd: string | undefined
  readonly resolve: (p: Packet) => void
  readonly reject: (e: Error) => void
  readonly timer: NodeJS.Timeout
}

export class RawClient {
  readonly socket: Socket
  readonly version: 4 | 5
  /** The Client Identifier this client sent in CONNECT (empty if none yet). */
  clientId = ''
  /** Packets received and not yet taken by `next`. */
  readonly inbox: Packet[] = []
  /** Resolves when the server closed the socket (or it errored). */
  readonly closed: Promise<void>
  /** Every packet received, as raw bytes, in order (for byte-exact checks). */
  readonly frames: Buffer[] = []
  #waiters: Waiter[] = []
  #isClosed = false
  #pending = Buffer.alloc(0)

  private constructor(socket: Socket, version: 4 | 5) {
    this.socket = socket
    this.version = version
    const parser = mqttPacket.parser({ protocolVersion: version })
    parser.on('packet', (p: Packet) => this.#onPacket(p))
    socket.on('data', (chunk: Buffer) => {
      this.#frame(chunk)
      parser.parse(chunk)
    })
    socket.on('error', () => {})
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#isClosed = true
        for (const w of this.#waiters) {
          clearTimeout(w.timer)
          w.reject(new Error(`socket closed while waiting for ${w.cmd ?? 'a packet'}`))
        }
        this.#waiters = []
        resolve()
      })
    })
  }

  /** Open a socket to the broker on `port`. */
  static async open(port: number, version: 4 | 5 = 5): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    return new RawClient(socket, version)
  }

  /** Open, send CONNECT and wait for CONNACK. */
  static async connected(
    port: number,
    version: 4 | 5,
    connect: Partial<IConnectPacket> = {},
  ): Promise<{ client: RawClient; connack: IConnackPacket }> {
    const client = await RawClient.open(port, version)
    const connack = await client.connect(connect)
    return { client, connack }
  }

  #frame(chunk: Buffer): void {
    let buf = Buffer.concat([this.#pending, chunk])
    for (;;) {
      let length = 0
      let multiplier = 1
      let at = 1
      let complete = false
      while (at < buf.length && at <= 4) {
        const byte = buf[at++] as number
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        if ((byte & 0x80) === 0) {
          complete = true
          break
        }
      }
      if (!complete || buf.length < at + length) break
      this.frames.push(Buffer.from(buf.subarray(0, at + length)))
      buf = buf.subarray(at + length)
    }
    this.#pending = Buffer.from(buf)
  }

  get isClosed(): boolean {
    return this.#isClosed
  }

  #onPacket(packet: Packet): void {
    const at = this.#waiters.findIndex((w) => w.cmd === undefined || w.cmd === packet.cmd)
    if (at >= 0) {
      const [w] = this.#waiters.splice(at, 1)
      if (w) {
        clearTimeout(w.timer)
        w.resolve(packet)
        return
      }
    }
    this.inbox.push(packet)
  }

  /** Encode and send a packet at this client's protocol level. */
  send(packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet, { protocolVersion: this.version }))
  }

  /** Send bytes as they are. */
  write(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** Send CONNECT (clean, keep alive 0 unless given) and wait for CONNACK. */
  async connect(fields: Partial<IConnectPacket> = {}): Promise<IConnackPacket> {
    this.clientId = fields.clientId ?? ''
    this.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: this.version,
      clean: true,
      clientId: '',
      keepalive: 0,
      ...fields,
    } as IConnectPacket)
    return (await this.next('connack')) as IConnackPacket
  }

  /** The next packet (of type `cmd`, if given; others stay in the inbox). */
  next(cmd?: string, timeoutMs = 3000): Promise<Packet> {
    const at = this.inbox.findIndex((p) => cmd === undefined || p.cmd === cmd)
    if (at >= 0) return Promise.resolve(this.inbox.splice(at, 1)[0] as Packet)
    if (this.#isClosed) return Promise.reject(new Error(`closed, no ${cmd ?? 'packet'}`))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.timer !== timer)
        reject(new Error(`no ${cmd ?? 'packet'} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiters.push({ cmd, resolve, reject, timer })
    })
  }

  /** Everything that arrives within `ms` (the inbox included), taken out. */
  async drain(ms: number): Promise<Packet[]> {
    await new Promise((resolve) => setTimeout(resolve, ms))
    return this.inbox.splice(0)
  }

  /**
   * Wait for `count` packets of type `cmd` (up to `timeoutMs` each), then
   * `settleMs` more for any extra ones; returns every one of that type. The
   * inbox is emptied. Fewer than `count` is returned, not thrown, so the
   * caller's assertion shows what arrived.
   */
  async collect(cmd: string, count: number, settleMs = 100, timeoutMs = 3000): Promise<Packet[]> {
    const got: Packet[] = []
    try {
      while (got.length < count) got.push(await this.next(cmd, timeoutMs))
    } catch {
      // Reported by the caller's assertion.
    }
    const rest = await this.drain(settleMs)
    return [...got, ...rest.filter((p) => p.cmd === cmd)]
  }

  /** Wait until the server closes the socket; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('socket still open')), timeoutMs)
    })
    try {
      await Promise.race([this.closed, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Close our side at once, without DISCONNECT (an abnormal close). */
  destroy(): void {
    this.socket.destroy()
  }
}

/** Poll `predicate` until it holds or `timeoutMs` passes (then carry on; assertions tell). */
export async function waitFor(predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!predicate() && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * Wait until the broker has handled the close of every closed client in
 * `clients` (it learns of an abrupt close asynchronously).
 */
export function closesHandled(
  live: () => readonly string[],
  clients: readonly RawClient[],
): Promise<void> {
  return waitFor(() => {
    const open = live()
    return clients.every((c) => !c.isClosed || !open.includes(c.clientId))
  })
}

function readVarint(buf: Buffer, at: number): [value: number, next: number] {
  let value = 0
  let multiplier = 1
  let i = at
  for (;;) {
    const byte = buf[i++] as number
    value += (byte & 0x7f) * multiplier
    multiplier *= 128
    if ((byte & 0x80) === 0) return [value, i]
  }
}

/** Bytes each MQTT 5 property identifier takes after it (-1: string, -2: pair, -3: varint). */
const PROPERTY_SIZES = new Map<number, number>([
  [0x01, 1],
  [0x02, 4],
  [0x03, -1],
  [0x08, -1],
  [0x09, -1],
  [0x0b, -3],
  [0x23, 2],
  [0x26, -2],
])

/**
 * The User Properties of a raw 5.0 PUBLISH frame as name/value pairs in wire
 * order (`mqtt-packet` groups them by name, which loses the order).
 */
export function publishUserProperties(frame: Buffer): Array<[string, string]> {
  const qos = ((frame[0] as number) >> 1) & 3
  let [, at] = readVarint(frame, 1)
  at += 2 + frame.readUInt16BE(at)
  if (qos > 0) at += 2
  const [length, start] = readVarint(frame, at)
  const end = start + length
  const pairs: Array<[string, string]> = []
  const readString = (i: number): [string, number] => {
    const n = frame.readUInt16BE(i)
    return [frame.toString('utf8', i + 2, i + 2 + n), i + 2 + n]
  }
  at = start
  while (at < end) {
    const id = frame[at++] as number
    const size = PROPERTY_SIZES.get(id)
    if (size === undefined) throw new Error(`unexpected property 0x${id.toString(16)}`)
    if (size === -2) {
      const [name, afterName] = readString(at)
      const [value, afterValue] = readString(afterName)
      pairs.push([name, value])
      at = afterValue
    } else if (size === -1) {
      at += 2 + frame.readUInt16BE(at)
    } else if (size === -3) {
      at = readVarint(frame, at)[1]
    } else {
      at += size
    }
  }
  return pairs
}
