/**
 * Interop: the Mosquitto command-line clients (OpenSSL underneath) connect
 * to the mqtts listener with device certificates from our PKI and exchange
 * a message through the broker core (C09, C10).
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { MemoryAuditSink } from '../../src/audit/sink.js'
import { Broker } from '../../src/broker/broker.js'
import { createMqttsListener } from '../../src/transport/mqtts-listener.js'
import { makePki, type Pki, waitFor } from '../helpers/tls-fixture.js'
import { makeTempDir } from '../helpers/tmp.js'

/** Run a command without blocking the event loop (the broker is in this process). */
function run(
  cmd: string,
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { timeout: 10_000 })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

const HAVE_MOSQUITTO = spawnSync('mosquitto_pub', ['--help']).error === undefined

describe('mosquitto_pub / mosquitto_sub over mqtts', {
  skip: HAVE_MOSQUITTO ? false : 'mosquitto-clients not installed',
}, () => {
  const tmp = makeTempDir('phimq-mosq-')
  const audit = new MemoryAuditSink()
  let pki: Pki
  let broker: Broker
  let listener: Awaited<ReturnType<typeof createMqttsListener>>

  before(async () => {
    pki = await makePki(join(tmp.dir, 'pki'))
    broker = new Broker({ audit, nodeId: 'test' })
    await broker.start()
    listener = await createMqttsListener(
      { name: 'devices', host: '127.0.0.1', port: 0, ...pki.paths, crl: [pki.paths.crl] },
      broker,
      { audit },
    )
  })
  after(async () => {
    await listener.close()
    await broker.close()
    tmp.remove()
  })

  async function files(id: string): Promise<string[]> {
    const issued = await pki.ca.issueCertificate({ kind: 'device', tenant: 'acme', id })
    const cert = join(tmp.dir, `${id}.crt`)
    const key = join(tmp.dir, `${id}.key`)
    writeFileSync(cert, issued.chainPem)
    writeFileSync(key, issued.keyPem, { mode: 0o600 })
    return ['--cafile', pki.paths.ca, '--cert', cert, '--key', key, '-i', id]
  }

  it('a message goes from mosquitto_pub to mosquitto_sub with device certificates', async () => {
    const common = ['-h', '127.0.0.1', '-p', String(listener.port), '-V', 'mqttv5', '-q', '1']
    const sub = spawn('mosquitto_sub', [
      ...common,
      ...(await files('sub-1')),
      '-t',
      'acme/x',
      '-C',
      '1',
      '-W',
      '10',
    ])
    let out = ''
    sub.stdout.on('data', (d) => {
      out += d
    })
    const exited = new Promise<number | null>((resolve) => sub.on('close', resolve))
    await waitFor(
      () => audit.ofType('subscribe.allowed').find((e) => e.actor.clientId === 'sub-1'),
      8000,
      'mosquitto_sub subscribed',
    )
    const pub = await run('mosquitto_pub', [
      ...common,
      ...(await files('pub-1')),
      '-t',
      'acme/x',
      '-m',
      'synthetic-reading',
    ])
    assert.equal(pub.status, 0, pub.stderr)
    assert.equal(await exited, 0)
    assert.equal(out.trim(), 'synthetic-reading')
    const accepted = audit.ofType('tls.handshake').filter((e) => e.result === 'accepted')
    assert.deepEqual(accepted.map((e) => e.identity?.id).sort(), ['pub-1', 'sub-1'])
  })

  it('mosquitto_pub with a client id other than its certificate id is refused (C10)', async () => {
    const args = ['-h', '127.0.0.1', '-p', String(listener.port), '-V', 'mqttv5']
    const creds = await files('pub-2')
    // -i given twice: the last one wins, so the id no longer matches the certificate.
    const pub = await run('mosquitto_pub', [
      ...args,
      ...creds,
      '-i',
      'someone-else',
      '-t',
      'acme/x',
      '-m',
      'x',
    ])
    assert.notEqual(pub.status, 0)
    assert.match(pub.stderr, /not authori[sz]ed/i)
  })
})
