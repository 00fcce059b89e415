/** Binding helpers shared by the TLS listeners. */
import type { AddressInfo, Server } from 'node:net'
import { ListenError } from '../errors.js'

/** Bind and resolve with the port; a bind failure becomes `ListenError`. */
export function listen(server: Server, host: string, port: number, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new ListenError(`listener ${name} cannot bind ${host}:${port}`, { cause: err }))
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
