/**
 * A raw TCP client for bad-input tests: writes any bytes, decodes what the
 * broker answers with `mqtt-packet`, and reports when the broker closes.
 */
import { once } from 'node:events'
import { connect as netConnect, type Socket } from 'node:net'
import mqttPacket, { type Packet } from 'mqtt-packet'

export class RawSocket {
  /** Every packet the broker sent, in order. */
  readonly received: Packet[] = []
  /** Set when the broker's side is gone (end, close or reset). */
  closed = false
  readonly #socket: Socket
  readonly #parser: ReturnType<typeof mqttPacket.parser>
  #waiters: Array<() => void> = []

  private constructor(socket: Socket, version: 4 | 5) {
    this.#socket = socket
    this.#parser = mqttPacket.parser({ protocolVersion: version })
    this.#parser.on('packet', (packet) => {
      this.received.push(packet)
      this.#wake()
    })
    this.#parser.on('error', () => this.#wake())
    socket.on('data', (chunk: Buffer) => this.#parser.parse(chunk))
    // Our writes after the broker closed may fail; that is expected.
    socket.on('error', () => this.#markClosed())
    socket.on('end', () => this.#markClosed())
    socket.on('close', () => this.#markClosed())
  }

  /** Open a connection; `version` is how the broker's answers are decoded. */
  static async open(port: number, version: 4 | 5): Promise<RawSocket> {
    const socket = netConnect(port, '127.0.0.1')
    await once(socket, 'connect')
    return new RawSocket(socket, version)
  }

  /** Write bytes; ignored once the broker has closed. */
  send(bytes: Buffer): void {
    if (!this.#socket.destroyed) this.#socket.write(bytes)
  }

  /** Write and report whether the kernel accepted it without an error. */
  async sendAll(bytes: Buffer): Promise<void> {
    if (this.#socket.destroyed) return
    await new Promise<void>((resolve) => this.#socket.write(bytes, () => resolve()))
  }

  /** Wait for the next packet of type `cmd`; undefined on timeout or close. */
  async next(cmd: Packet['cmd'], timeoutMs = 2000): Promise<Packet | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.received.find((p) => p.cmd === cmd)
      if (found) return found
      if (this.closed || Date.now() >= deadline) return undefined
      await this.#wait(deadline - Date.now())
    }
  }

  /** Wait until the broker closes; false if it is still open after the timeout. */
  async waitClosed(timeoutMs = 1000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!this.closed && Date.now() < deadline) await this.#wait(deadline - Date.now())
    return this.closed
  }

  destroy(): void {
    this.#socket.destroy()
  }

  #markClosed(): void {
    this.closed = true
    this.#wake()
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(ms, 1))
      this.#waiters.push(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }
}
