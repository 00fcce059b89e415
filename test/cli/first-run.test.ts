/**
 * Issue #8, first run: `phimq start` in an empty directory creates `.phimq`
 * (dev PKI, demo identities, policy, encrypted store, audit trail), listens
 * with mutual TLS only (C05, C09), and prints mosquitto lines that work as
 * printed. A second start reuses what exists.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { verifyTrail } from '../../src/audit/verify.js'
import { initDataDir } from '../../src/cli/init.js'
import { loadConfigFile } from '../../src/config/load.js'
import { InitError } from '../../src/errors.js'
import { runPhimq, type StartedPhimq, startPhimq } from '../helpers/phimq-process.js'
import { makeTempDir } from '../helpers/tmp.js'

const HAVE_MOSQUITTO = spawnSync('mosquitto_sub', ['--help']).error === undefined
const FREE_PORTS = ['--mqtts-port', '0', '--wss-port', '0', '--metrics-port', '0']

/** Run a printed shell line until it prints `until`, or exits, or `ms` pass. */
function runLine(
  line: string,
  cwd: string,
  ms: number,
): { done: Promise<{ code: number | null; out: string }>; ready: Promise<void> } {
  const child = spawn('bash', ['-c', `exec ${line}`], { cwd })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const timer = setTimeout(() => child.kill('SIGTERM'), ms)
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    }),
  )
  // mosquitto_sub prints nothing once subscribed: give it a moment after spawn.
  const ready = new Promise<void>((resolve) => setTimeout(resolve, 1500))
  return { done, ready }
}

/** The printed sub line gets `-C 1` so it exits after one message. */
async function pubSubRoundTrip(started: StartedPhimq, cwd: string): Promise<string> {
  assert.ok(started.subLine, 'a mosquitto_sub line is printed')
  assert.ok(started.pubLine, 'a mosquitto_pub line is printed')
  const sub = runLine(`${started.subLine} -C 1`, cwd, 15_000)
  await sub.ready
  const pub = await runLine(started.pubLine, cwd, 15_000).done
  assert.equal(pub.code, 0, `mosquitto_pub as printed succeeds: ${pub.out}`)
  const got = await sub.done
  assert.equal(got.code, 0, `mosquitto_sub as printed receives one message: ${got.out}`)
  return got.out
}

describe('first run: phimq start in an empty directory', {
  skip: HAVE_MOSQUITTO ? false : 'mosquitto-clients not installed (apt mosquitto-clients)',
}, () => {
  const tmp = makeTempDir('phimq-firstrun-')
  after(() => tmp.remove())
  let caRoot = ''

  it('creates .phimq, prints phimq ready and mosquitto lines that deliver a message (C05, C09)', async () => {
    const started = await startPhimq(FREE_PORTS, tmp.dir)
    try {
      assert.match(started.stdout(), /initialising \.phimq/)
      assert.ok(
        started.urls.some((u) => u.startsWith('mqtts://127.0.0.1:')),
        started.urls.join(' '),
      )
      assert.ok(
        started.urls.some((u) => u.startsWith('wss://127.0.0.1:')),
        started.urls.join(' '),
      )
      const data = join(tmp.dir, '.phimq')
      for (const f of [
        'phimq.yaml',
        'ca/root.crt',
        'tls/server.crt',
        'clients/demo-device.crt',
        'clients/demo-app.crt',
        'store.db',
      ]) {
        assert.ok(existsSync(join(data, f)), `${f} exists`)
      }
      for (const secret of [
        'ca-passphrase.dev',
        'keys/master.key',
        'tls/server.key',
        'clients/demo-device.key',
      ]) {
        assert.equal(statSync(join(data, secret)).mode & 0o077, 0, `${secret} is mode 0600`)
      }
      const loaded = loadConfigFile(join(data, 'phimq.yaml'))
      assert.equal(loaded.config.environment, 'dev')
      assert.equal(loaded.config.store.type, 'sqlite')
      caRoot = readFileSync(join(data, 'ca', 'root.crt'), 'utf8')

      const out = await pubSubRoundTrip(started, tmp.dir)
      assert.match(out, /^demo\/rpm\/demo-device\/vitals\/hr \{"hr":72,"unit":"bpm"\}/)
      assert.ok(existsSync(join(data, 'audit')), 'the audit trail directory exists')
    } finally {
      assert.equal(await started.stop(), 0, 'SIGTERM stops it cleanly')
    }
  })

  it('refuses a plaintext MQTT connection on the mqtts port (C05)', async () => {
    const started = await startPhimq(FREE_PORTS, tmp.dir)
    try {
      const port = started.port('mqtts')
      const plain = await runLine(
        `mosquitto_pub -h 127.0.0.1 -p ${port} -i demo-device -t demo/rpm/demo-device/vitals/hr -m '{"hr":1}'`,
        tmp.dir,
        10_000,
      ).done
      assert.notEqual(plain.code, 0, `a plaintext publish fails: ${plain.out}`)
    } finally {
      await started.stop()
    }
  })

  it('reuses the data directory on a second start: same CA, no new init, messages still flow', async () => {
    assert.ok(caRoot !== '', 'the first test ran')
    const started = await startPhimq(FREE_PORTS, tmp.dir)
    try {
      assert.doesNotMatch(started.stdout(), /initialising/)
      assert.equal(readFileSync(join(tmp.dir, '.phimq', 'ca', 'root.crt'), 'utf8'), caRoot)
      const out = await pubSubRoundTrip(started, tmp.dir)
      assert.match(out, /"hr":72/)
      const second = await runPhimq(['start', ...FREE_PORTS], tmp.dir)
      assert.equal(second.code, 2, 'a second broker on the same directory is refused')
      assert.match(second.stderr, /another phimq \(pid \d+\) is running on/)
    } finally {
      await started.stop()
    }
    // The refused second start did not touch the trail (C27).
    const report = verifyTrail({ dir: join(tmp.dir, '.phimq', 'audit') })
    assert.ok(report.ok, JSON.stringify(report.problems))
  })

  it("the README tour's audit commands read the dev trail with --no-auditor, and nothing without it (C27)", async () => {
    assert.ok(caRoot !== '', 'the first test ran')
    const search = await runPhimq(
      ['audit', 'search', '--no-auditor', '--dir', '.phimq/audit'],
      tmp.dir,
    )
    assert.equal(search.code, 0, search.stderr)
    assert.match(search.stdout, /client\.connected demo-device/)
    const verify = await runPhimq(
      ['audit', 'verify', '--no-auditor', '--dir', '.phimq/audit'],
      tmp.dir,
    )
    assert.equal(verify.code, 0, verify.stderr)
    assert.match(verify.stdout, /^audit trail ok/)
    const bare = await runPhimq(['audit', 'search', '--dir', '.phimq/audit'], tmp.dir)
    assert.equal(bare.code, 2)
    assert.equal(bare.stdout, '')
    assert.match(bare.stderr, /--no-auditor in this dev environment.*\[PHIMQ_AUDITOR_DENIED\]/)
  })

  it('phimq demo: FHIR Observations flow device > gateway > $share clinical app and de-identified analytics; every forbidden try is refused, audited and alerted', async () => {
    const started = await startPhimq(FREE_PORTS, tmp.dir)
    try {
      const mqttsUrl = started.urls.find((u) => u.startsWith('mqtts://'))
      assert.ok(mqttsUrl)
      const r = await runPhimq(
        ['demo', '--url', mqttsUrl, '--devices', '4', '--seconds', '4'],
        tmp.dir,
      )
      const out = r.stdout
      assert.equal(r.code, 0, `${out}\n${r.stderr}`)
      assert.match(out, /\rdemo \d+s left \| devices \d+ > gateway/, 'a progress line')

      const num = (re: RegExp): number[] => {
        const m = re.exec(out)
        assert.ok(m, `${re} in\n${out}`)
        return m.slice(1).map(Number)
      }
      const [devices] = num(/4 devices published (\d+) FHIR Observations/)
      assert.ok((devices ?? 0) >= 4, 'each of the four kinds published at least once')
      for (const kind of [
        'blood-pressure cuff',
        'pulse oximeter',
        'glucose meter',
        'weight scale',
      ]) {
        assert.match(out, new RegExp(`${kind} \\d+`))
      }
      const [received, forwarded, , stripped] = num(
        /gateway gw-001 received (\d+), forwarded (\d+) \((\d+) oximeter samples averaged\), stripped (\d+) fields/,
      )
      assert.equal(received, devices, 'the gateway got every device message')
      assert.equal(stripped, 2 * (devices ?? 0), 'serial and note stripped from each')
      const [clinical, of, leaks] = num(
        /clinical app received (\d+) of (\d+) via \$share\/clinical \(clinical-1 \d+, clinical-2 \d+\); serials or notes seen: (\d+)/,
      )
      assert.equal(of, forwarded)
      assert.equal(clinical, forwarded, 'the shared group got every forwarded message once')
      assert.equal(leaks, 0)
      const [analytics, deid] = num(/analytics-1 received (\d+) of (\d+) de-identified/)
      assert.ok((deid ?? 0) > 0, 'de-identified cohort means were published')
      assert.equal(analytics, deid)
      const [delivered, expected] = num(/delivered (\d+) of (\d+) expected deliveries/)
      assert.equal(delivered, expected)

      const tries: Array<[string, string]> = [
        ['analytics-1 subscribes to PHI vitals', 'Not authorized'],
        ['demo-device subscribe #', 'Not authorized'],
        ['demo-device PHI in a topic', 'Topic Name invalid'],
        ['demo-device retained PHI', 'Not authorized'],
        ['demo-device cross-tenant publish', 'Not authorized'],
        ['demo-device publish to another device', 'Not authorized'],
      ]
      for (const [what, seen] of tries) {
        assert.match(out, new RegExp(`${what.replace('#', '\\#')}: ${seen}`))
      }
      assert.match(out, /lapsed-device connects with an expired certificate: (?!NOT refused)/)
      // Read back from the audit trail by the demo: one record per refusal, by rule.
      for (const rule of [
        'subscribe.denied policy.default-deny',
        'subscribe.denied guard.wildcard-root',
        'publish.denied phi.topic.mrn',
        'publish.denied class.vitals.retain',
        'publish.denied tenant.cross-tenant',
        'publish.denied policy.default-deny',
        'tls.handshake CERT_HAS_EXPIRED',
      ]) {
        assert.match(out, new RegExp(`  ${rule}: 1\n`))
      }
      assert.match(out, /alerts raised: .*wildcard-subscribe \(high\) 1/)
      assert.match(out, /alerts raised: .*cross-tenant \(high\) 1/)
      assert.match(out, /audit trail ok/)
    } finally {
      await started.stop()
    }
  })
})

describe('phimq init and start-up errors', () => {
  const tmp = makeTempDir('phimq-init-')
  after(() => tmp.remove())

  it('init --prod writes a prod config with four CAs and no demo identities that validates', async () => {
    const dir = join(tmp.dir, 'prod')
    await initDataDir({ dir, prod: true, passphrase: 'synthetic-test-passphrase' })
    const loaded = loadConfigFile(join(dir, 'phimq.yaml'))
    assert.equal(loaded.config.environment, 'prod')
    for (const ca of ['devices', 'apps', 'admins', 'server']) {
      assert.ok(existsSync(join(dir, 'ca', ca, 'root.crt')), `${ca} CA`)
    }
    assert.equal(existsSync(join(dir, 'clients')), false, 'no demo identities')
    assert.equal(existsSync(join(dir, 'ca-passphrase.dev')), false, 'no passphrase on disk')
    // C18: what init --prod issues names its environment.
    const server = new X509Certificate(readFileSync(join(dir, 'tls', 'server.crt')))
    assert.match(server.subjectAltName ?? '', /URI:urn:phimq:env:prod/)
  })

  it('init --prod without a passphrase says to set PHIMQ_CA_PASSPHRASE', async () => {
    const env = { ...process.env }
    delete env.PHIMQ_CA_PASSPHRASE
    const r = await runPhimq(['init', '--prod', '--dir', 'p2'], tmp.dir, env)
    assert.equal(r.code, 2)
    assert.match(r.stderr, /PHIMQ_CA_PASSPHRASE/)
  })

  it('init refuses an initialised directory and names what to do', async () => {
    const dir = join(tmp.dir, 'twice')
    await initDataDir({ dir })
    // C18: the dev PKI's demo identities name their environment.
    const device = new X509Certificate(readFileSync(join(dir, 'clients', 'demo-device.crt')))
    assert.match(device.subjectAltName ?? '', /URI:urn:phimq:env:dev/)
    await assert.rejects(initDataDir({ dir }), (err: unknown) => {
      assert.ok(err instanceof InitError)
      assert.match(err.message, /already initialised.*phimq start/)
      return true
    })
  })

  it('a port in use stops start with what is wrong and what to change', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const address = blocker.address()
    assert.ok(address !== null && typeof address === 'object')
    try {
      const r = await runPhimq(
        [
          'start',
          '--dir',
          'busy',
          '--mqtts-port',
          String(address.port),
          '--wss-port',
          '0',
          '--metrics-port',
          '0',
        ],
        tmp.dir,
      )
      assert.equal(r.code, 2)
      assert.match(r.stderr, /cannot bind 127\.0\.0\.1:\d+ \[PHIMQ_LISTEN_FAILED\]/)
      assert.match(r.stderr, /what to do: .*change listeners\[\]\.port in busy\/phimq\.yaml/)
    } finally {
      blocker.close()
    }
  })

  it('a broken config stops start naming the key and what to run', async () => {
    const dir = join(tmp.dir, 'broken')
    await initDataDir({ dir, mqttsPort: 0, wssPort: 0, metricsPort: 0 })
    const file = join(dir, 'phimq.yaml')
    const text = readFileSync(file, 'utf8').replace('environment: dev', 'environment: staging')
    const { writeFileSync } = await import('node:fs')
    writeFileSync(file, text)
    const r = await runPhimq(['start', '--dir', 'broken'], tmp.dir)
    assert.equal(r.code, 2)
    assert.match(r.stderr, /environment \(line \d+\)/)
    assert.match(r.stderr, /what to do: fix the named keys/)
  })
})
