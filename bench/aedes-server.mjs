// Reference broker for the benchmark: Aedes with its default options, in-memory persistence,
// one plain TCP listener and (optionally) one TLS 1.3 listener that requires a client certificate.
// Aedes is the project's exact-pinned dev dependency. Loopback only.
//
//   node bench/aedes-server.mjs [--port 1883]
//        [--tls-port 8883 --pki /tmp/mqbench/pki] [--nodelay]

import fs from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

const { values: o } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '1883' },
    'tls-port': { type: 'string' },
    pki: { type: 'string' },
    nodelay: { type: 'boolean', default: false },
  },
})
if (o.host !== '127.0.0.1' && o.host !== '::1') throw new Error('loopback only')

const req = createRequire(import.meta.url)
const aedesEntry = req.resolve('aedes')
const { Aedes } = await import(pathToFileURL(aedesEntry).href)
const aedesVersion = JSON.parse(
  fs.readFileSync(path.join(path.dirname(aedesEntry), 'package.json'), 'utf8'),
).version

const broker = await Aedes.createBroker()
broker.on('clientError', () => {})
broker.on('connectionError', () => {})

const handle = o.nodelay
  ? (s) => {
      s.setNoDelay(true)
      broker.handle(s)
    }
  : broker.handle
const plain = net.createServer(handle)
plain.listen(Number(o.port), o.host)

let secure = null
if (o['tls-port']) {
  const p = (f) => fs.readFileSync(path.join(o.pki, f))
  secure = tls.createServer(
    {
      key: p('server.key'),
      cert: p('server.crt'),
      ca: p('ca.crt'),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    handle,
  )
  secure.on('tlsClientError', () => {})
  secure.listen(Number(o['tls-port']), o.host)
}

console.error(
  `aedes ${aedesVersion} node ${process.version} pid ${process.pid} listening ${o.host}:${o.port}` +
    (secure ? ` tls:${o['tls-port']}` : ''),
)

function stop() {
  plain.close()
  if (secure) secure.close()
  broker.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 1000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
