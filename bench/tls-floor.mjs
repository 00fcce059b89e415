// The memory floor of Node's TLS for the conn-mtls workload (docs/performance.md): a TLS 1.3
// server with client certificates and nothing else, which answers every MQTT CONNECT with a
// CONNACK and then holds the socket. What a broker on Node's TLSSocket cannot go below.
//   node bench/tls-floor.mjs --pki DIR --port N
//   node bench/mqbench.mjs conn --tls --pki DIR --port N --broker-pid <its pid>
import { constants } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import tls from 'node:tls'
import { parseArgs } from 'node:util'

const { values: o } = parseArgs({ options: { pki: { type: 'string' }, port: { type: 'string' } } })
const pem = (f) => fs.readFileSync(path.join(o.pki ?? '.', f))
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00])
const server = tls.createServer(
  {
    cert: pem('server.crt'),
    key: pem('server.key'),
    ca: pem('ca.crt'),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    // as phimq: no session tickets, no Nagle
    secureOptions: constants.SSL_OP_NO_TICKET,
    noDelay: true,
  },
  (socket) => {
    socket.once('data', () => socket.write(CONNACK))
    socket.on('error', () => socket.destroy())
  },
)
server.listen(Number(o.port ?? 28883), '127.0.0.1', () => {
  console.log(`tls floor pid ${process.pid} listening ${server.address().port}`)
})
