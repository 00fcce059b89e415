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
  /** Packets received and not yet taken by `next`. */
  readonly inbox: Packet[] = []
  /** Resolves when the server closed the socket (or it errored). */
  readonly closed: Promise<void>
  #waiters: Waiter[] = []
  #isClosed = false

  private constructor(socket: Socket, version: 4 | 5) {
    this.socket = socket
    this.version = version
    const parser = mqttPacket.parser({ protocolVersion: version })
    parser.on('packet', (p: Packet) => this.#onPacket(p))
    socket.on('data', (chunk: Buffer) => parser.parse(chunk))
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
