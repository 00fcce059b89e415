// mqbench: a small MQTT 3.1.1 load generator for brokers on loopback.
// Raw sockets, packets pre-encoded once with mqtt-packet, a minimal frame reader of its own,
// credit-based flow control (a bounded number of messages in flight end to end), one event loop.
//
// Workloads:
//   fanin    N publishers -> distinct topics sensors/<i>/hr, S subscribers on sensors/+/hr
//   fanout   1 publisher  -> one topic, N subscribers on that topic
//   latency  N publishers at a fixed total rate, 1 subscriber on sensors/+/hr, latency percentiles
//   conn     open N idle connections (plain or TLS with client cert), setup rate + broker memory
//
// Prints one JSON line on stdout with the results. bench/run.ts drives it; docs/performance.md
// explains the method. Started from the baseline generator in shared/bench (ours).

import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import tls from 'node:tls'
import { parseArgs } from 'node:util'
import mqtt from 'mqtt-packet'

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    tls: { type: 'boolean', default: false },
    pki: { type: 'string' }, // folder with ca.crt client.crt client.key
    pubs: { type: 'string' },
    subs: { type: 'string' },
    qos: { type: 'string', default: '0' },
    payload: { type: 'string', default: '64' },
    batch: { type: 'string', default: '10' }, // messages per write for throughput workloads
    window: { type: 'string' }, // max deliveries in flight end to end
    rate: { type: 'string', default: '5000' }, // latency workload, msgs/s total
    steps: {
      type: 'string',
      default: '2500,5000,7500,10000,12500,15000,20000,25000,30000,40000,50000,60000,80000,100000',
    }, // ramp workload
    'step-seconds': { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    conns: { type: 'string', default: '5000' },
    conc: { type: 'string', default: '100' }, // conn workload: handshakes in progress at once
    hold: { type: 'string', default: '3' }, // conn workload: seconds to hold before memory sample
    keepalive: { type: 'string', default: '60' },
    'broker-pid': { type: 'string' },
    label: { type: 'string', default: '' },
    'max-seconds': { type: 'string', default: '120' },
    'disjoint-ids': { type: 'boolean', default: false }, // give each publisher its own packet-id range
    // put before every client id: a broker that binds client ids to the certificate's id
    // (phimq's clientIdBinding: prefix) accepts many clients sharing one test certificate
    'client-id-prefix': { type: 'string', default: '' },
    // Clean Session 0: the broker keeps every client's session (and its QoS 1 state) in its store
    persistent: { type: 'boolean', default: false },
    // put before every topic: a broker that confines tenants to a topic prefix (phimq's policy)
    'topic-prefix': { type: 'string', default: '' },
  },
})
const workload = positionals[0]
if (!['fanin', 'fanout', 'latency', 'ramp', 'conn'].includes(workload)) {
  console.error('usage: node mqbench.mjs fanin|fanout|latency|ramp|conn [options]  (see README.md)')
  process.exit(2)
}
if (o.host !== '127.0.0.1' && o.host !== '::1' && o.host !== 'localhost') {
  console.error('mqbench only targets loopback')
  process.exit(2)
}
const hardStop = setTimeout(() => {
  emit({ error: 'hard time limit reached' })
  process.exit(3)
}, Number(o['max-seconds']) * 1000)
hardStop.unref()

const HOST = o.host
const PORT = Number(o.port || (o.tls ? 8883 : 1883))
const QOS = Number(o.qos)
const PAYLOAD = Math.max(16, Number(o.payload))
const BATCH = Math.max(1, Number(o.batch))
const DURATION = Number(o.duration)
const WARMUP = Number(o.warmup)
const BROKER_PID = o['broker-pid'] ? Number(o['broker-pid']) : null
const KEEPALIVE = Number(o.keepalive)
const CLIENT_ID_PREFIX = o['client-id-prefix']
const PERSISTENT = o.persistent
const TOPIC_PREFIX = o['topic-prefix']

// ---------- /proc helpers (broker and self CPU, memory) ----------
const CLK_TCK = 100
function procCpu(pid) {
  // seconds of user+system CPU, all threads
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / CLK_TCK
  } catch {
    return NaN
  }
}
function procMem(pid) {
  // kB
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const g = (k) => {
      const m = s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm'))
      return m ? Number(m[1]) : NaN
    }
    return { rssKb: g('VmRSS'), hwmKb: g('VmHWM') }
  } catch {
    return { rssKb: NaN, hwmKb: NaN }
  }
}
function sysStat() {
  // jiffies: total, idle+iowait, steal
  const l = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number)
  const total = l.reduce((a, b) => a + b, 0)
  return { total, idle: l[3] + l[4], steal: l[7] || 0 }
}
// CPU seconds of every other process on the host (not this one, not the broker): the other
// tenants of a shared machine, and kernel threads such as ksoftirqd
function othersCpu() {
  // Map pid -> CPU seconds
  const m = new Map()
  for (const d of fs.readdirSync('/proc')) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue
    const pid = Number(d)
    if (pid === process.pid || pid === BROKER_PID) continue
    const c = procCpu(pid)
    if (!Number.isNaN(c)) m.set(pid, c)
  }
  return m
}
function othersDelta(before) {
  // CPU used in the window by processes alive at its end
  let sum = 0
  for (const [pid, c] of othersCpu()) sum += Math.max(0, c - (before.get(pid) ?? 0))
  return sum
}
class CpuWindow {
  start() {
    this.t = performance.now()
    this.self = process.cpuUsage()
    this.sys = sysStat()
    this.broker = BROKER_PID ? procCpu(BROKER_PID) : NaN
    this.others = othersCpu()
  }
  stop() {
    const dt = (performance.now() - this.t) / 1000
    const su = process.cpuUsage(this.self)
    const sys = sysStat()
    const dTot = sys.total - this.sys.total
    const genCpuPct = round1((100 * (su.user + su.system)) / 1e6 / dt)
    const brokerCpuPct = BROKER_PID
      ? round1((100 * (procCpu(BROKER_PID) - this.broker)) / dt)
      : null
    const hostBusyPct = round1(100 * (1 - (sys.idle - this.sys.idle) / dTot) * (dTot > 0 ? 1 : 0))
    // Processes that ended inside the window (a neighbour's test run, a compiler) leave no
    // /proc entry to read, so the per-process sum misses them. The host's busy time does not:
    // busy share x cores - generator - broker is what everything else used.
    const byPid = round1((100 * othersDelta(this.others)) / dt)
    const byHost = round1(hostBusyPct * os.cpus().length - genCpuPct - (brokerCpuPct ?? 0))
    return {
      genCpuPct,
      brokerCpuPct,
      hostBusyPct,
      hostStealPct: round1((100 * (sys.steal - this.sys.steal)) / dTot),
      // the per-process sum rounds every process to 10 ms ticks: over a short window and
      // hundreds of processes it can pass what the cores could do, so cap it there
      otherCpuPct: round1(
        Math.min(Math.max(byPid, byHost), 100 * os.cpus().length - genCpuPct - (brokerCpuPct ?? 0)),
      ),
      otherCpuByPidPct: byPid,
    }
  }
}
const round1 = (x) => Math.round(x * 10) / 10
function pct(sorted, p) {
  if (sorted.length === 0) return null
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return Math.round(sorted[i] * 1000) / 1000
}
function emit(obj) {
  process.stdout.write(
    `${JSON.stringify({ workload, label: o.label, port: PORT, tls: o.tls, qos: QOS, ...obj })}\n`,
  )
}

// ---------- packet templates ----------
const enc = (p) => mqtt.generate(p)
function connectPacket(clientId) {
  return enc({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: !PERSISTENT,
    clientId: CLIENT_ID_PREFIX + clientId,
    keepalive: KEEPALIVE,
  })
}
function subscribePacket(topic, qos, messageId = 1) {
  return enc({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] })
}
const DISCONNECT = enc({ cmd: 'disconnect' })
// A publish template: payload bytes 0..7 carry the send time (float64, performance.now() ms),
// 8..11 the publisher index, 12..15 a per-publisher sequence number (gap/reorder detection).
function publishTemplate(topic, qos) {
  const payload = Buffer.alloc(PAYLOAD, 0x61)
  const buf = enc({
    cmd: 'publish',
    topic,
    payload,
    qos,
    messageId: qos > 0 ? 1 : undefined,
    retain: false,
    dup: false,
  })
  const payloadOff = buf.length - PAYLOAD
  return { buf, payloadOff, idOff: qos > 0 ? payloadOff - 2 : -1 }
}

// ---------- frame reader ----------
// Calls onPacket(b0, buf, bodyStart, bodyLen) for each complete MQTT packet.
function frameReader(onPacket) {
  let rest = null
  return function push(chunk) {
    const b = rest ? Buffer.concat([rest, chunk]) : chunk
    const len = b.length
    let pos = 0
    for (;;) {
      if (pos + 2 > len) break
      let i = pos + 1
      let mult = 1
      let rem = 0
      let byte
      let ok = true
      do {
        if (i >= len) {
          ok = false
          break
        }
        byte = b[i++]
        rem += (byte & 127) * mult
        mult *= 128
      } while (byte & 128)
      if (!ok || i + rem > len) break
      onPacket(b[pos], b, i, rem)
      pos = i + rem
    }
    rest = pos < len ? b.subarray(pos) : null
  }
}

// ---------- connections ----------
let tlsCtx = null
function secureContext() {
  if (!tlsCtx) {
    const p = (f) => fs.readFileSync(path.join(o.pki, f))
    tlsCtx = tls.createSecureContext({
      ca: p('ca.crt'),
      cert: p('client.crt'),
      key: p('client.key'),
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    })
  }
  return tlsCtx
}
// Opens a socket, sends CONNECT, resolves after CONNACK 0. onPacket gets every later packet.
function openClient(clientId, onPacket) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    let sock
    const sendConnect = () => {
      sock.setNoDelay(true)
      sock.write(connectPacket(clientId))
    }
    if (o.tls) {
      sock = tls.connect(
        { host: HOST, port: PORT, secureContext: secureContext(), servername: 'localhost' },
        sendConnect,
      )
    } else {
      sock = net.connect({ host: HOST, port: PORT }, sendConnect)
    }
    let connected = false
    const client = { sock, id: clientId, connectMs: 0 }
    const push = frameReader((b0, b, i, n) => {
      if (!connected) {
        if (b0 >> 4 === 2 && b[i + 1] === 0) {
          connected = true
          client.connectMs = performance.now() - t0
          resolve(client)
        } else
          reject(
            new Error(`${clientId}: unexpected first packet 0x${b0.toString(16)} rc=${b[i + 1]}`),
          )
        return
      }
      onPacket(b0, b, i, n, client)
    })
    sock.on('data', push)
    sock.on('error', (e) => {
      if (!connected) reject(e)
      else client.error = e
    })
    sock.on('close', () => {
      client.closed = true
      if (!connected) reject(new Error(`${clientId}: closed before CONNACK`))
    })
  })
}
async function subscribe(client, topic, qos) {
  await new Promise((resolve) => {
    client.onSuback = resolve
    client.sock.write(subscribePacket(topic, qos))
  })
}
async function inBatches(n, conc, fn) {
  // run fn(i) for i<n with at most conc in progress
  const out = new Array(n)
  let next = 0
  async function lane() {
    while (next < n) {
      const i = next++
      out[i] = await fn(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(conc, n) }, lane))
  return out
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------- throughput workloads (fanin, fanout) and latency ----------
async function pubsub() {
  const isFanout = workload === 'fanout'
  const isRamp = workload === 'ramp'
  const isLatency = workload === 'latency' || isRamp // open loop
  const nPubs = isFanout ? 1 : Number(o.pubs || 100)
  const nSubs = isFanout ? Number(o.subs || 100) : Number(o.subs || 1)
  const fanFactor = nSubs // every subscriber gets every message
  const WINDOW = Number(o.window || (isFanout ? 20000 : 2000)) // deliveries in flight
  const subTopic = TOPIC_PREFIX + (isFanout ? 'bcast/all/hr' : 'sensors/+/hr')

  // state
  let delivered = 0 // deliveries seen by subscribers
  let published = 0 // publishes written by publishers
  let pubAcks = 0
  let measuring = false
  let lat = new Float64Array(1 << 20)
  let nLat = 0
  const latStride = isLatency ? 1 : 7
  let latTick = 0
  let gaps = 0
  let reorders = 0
  let running = false
  let rr = 0
  let pumping = false
  let stallLost = 0
  let lastDelivered = 0
  let lastProgress = performance.now()

  // subscribers
  const onSubPacket = (b0, b, i, _n, client) => {
    const type = b0 >> 4
    if (type === 3) {
      const qos = (b0 >> 1) & 3
      let p = i + 2 + b.readUInt16BE(i)
      if (qos > 0) {
        const id = b.readUInt16BE(p)
        p += 2
        client.acks.push(0x40, 0x02, id >> 8, id & 0xff)
      }
      delivered++
      const pi = b.readUInt32LE(p + 8)
      const seq = b.readUInt32LE(p + 12)
      const last = client.lastSeq[pi]
      if (seq > last + 1) gaps += seq - last - 1
      else if (seq <= last) reorders++
      if (seq > last) client.lastSeq[pi] = seq
      if (measuring && ++latTick >= latStride) {
        latTick = 0
        if (nLat < lat.length) lat[nLat++] = performance.now() - b.readDoubleLE(p)
      }
    } else if (type === 9) {
      if (client.onSuback) {
        const f = client.onSuback
        client.onSuback = null
        f()
      }
    }
  }
  const subs = await inBatches(nSubs, 50, async (k) => {
    const c = await openClient(`bs${k}-${process.pid}`, onSubPacket)
    c.acks = []
    c.lastSeq = new Int32Array(nPubs)
    // flush PUBACKs once per received chunk (after the frame reader ran)
    c.sock.on('data', () => {
      if (c.acks.length) {
        c.sock.write(Buffer.from(c.acks))
        c.acks.length = 0
      }
      if (!isLatency) pump()
    })
    await subscribe(c, subTopic, QOS)
    return c
  })

  // publishers
  const onPubPacket = (b0) => {
    if (b0 >> 4 === 4) pubAcks++
  }
  const pubs = await inBatches(nPubs, 50, async (k) => {
    const c = await openClient(`bp${k}-${process.pid}`, onPubPacket)
    c.tpl = publishTemplate(TOPIC_PREFIX + (isFanout ? 'bcast/all/hr' : `sensors/${k}/hr`), QOS)
    c.tpl.buf.writeUInt32LE(k, c.tpl.payloadOff + 8)
    // packet ids: by default every publisher counts 1..65535 like independent devices do;
    // --disjoint-ids gives each publisher its own range (no two publishers share an id at once)
    const span = Math.floor(65535 / nPubs)
    c.idLo = o['disjoint-ids'] ? k * span + 1 : 1
    c.idHi = o['disjoint-ids'] ? (k + 1) * span : 65535
    c.nextId = c.idLo
    c.seq = 0
    c.sock.on('drain', () => {
      if (!isLatency) pump()
    })
    return c
  })
  await sleep(300) // let subscriptions settle

  // writes k messages from publisher c in one buffer, stamping the send time
  function writeBatch(c, k) {
    const { buf, payloadOff, idOff } = c.tpl
    const L = buf.length
    const out = Buffer.allocUnsafe(L * k)
    const now = performance.now()
    for (let j = 0; j < k; j++) {
      const off = j * L
      buf.copy(out, off)
      out.writeDoubleLE(now, off + payloadOff)
      out.writeUInt32LE(++c.seq, off + payloadOff + 12)
      if (idOff >= 0) {
        const id = c.nextId
        c.nextId = id >= c.idHi ? c.idLo : id + 1
        out.writeUInt16BE(id, off + idOff)
      }
    }
    published += k
    return c.sock.write(out)
  }

  // closed-loop pump for throughput workloads: keep <= WINDOW deliveries in flight
  function pump() {
    if (!running || pumping) return
    pumping = true
    let blocked = 0
    while (blocked < nPubs) {
      const inflight = published * fanFactor - delivered - stallLost
      if (inflight + BATCH * fanFactor > WINDOW) break
      const c = pubs[rr]
      rr = (rr + 1) % nPubs
      if (c.sock.writableNeedDrain) {
        blocked++
        continue
      }
      blocked = 0
      writeBatch(c, BATCH)
    }
    pumping = false
  }
  // stall guard: if nothing arrives for 1 s while the window is full, count the gap as lost
  const stallTimer = setInterval(() => {
    if (delivered !== lastDelivered) {
      lastDelivered = delivered
      lastProgress = performance.now()
      return
    }
    if (running && performance.now() - lastProgress > 1000) {
      const inflight = published * fanFactor - delivered - stallLost
      if (inflight > 0) {
        stallLost += inflight
        lastProgress = performance.now()
        pump()
      }
    }
  }, 250)

  // open-loop pacer for the latency workload
  let pacer = null
  function startPacer(rate = Number(o.rate)) {
    if (pacer) clearTimeout(pacer)
    const t0 = performance.now()
    let sent = 0
    const tick = () => {
      if (!running) return
      const due = Math.floor(((performance.now() - t0) / 1000) * rate) - sent
      if (due > 0) {
        // spread over publishers, one write per publisher per tick
        const per = Math.floor(due / nPubs)
        let extra = due - per * nPubs
        for (let n = 0; n < nPubs; n++) {
          const k = per + (extra > 0 ? 1 : 0)
          if (extra > 0) extra--
          if (k > 0) writeBatch(pubs[rr], k)
          rr = (rr + 1) % nPubs
        }
        sent += due
      }
      pacer = setTimeout(tick, 1)
    }
    tick()
  }

  // ramp: open-loop steps of increasing rate; the highest step delivered in full, without
  // sequence gaps and without a growing backlog, is the maximum sustained rate
  async function ramp() {
    const steps = o.steps.split(',').map(Number)
    const stepS = Number(o['step-seconds'])
    const table = []
    let best = null
    for (const rate of steps) {
      startPacer(rate)
      await sleep(1000)
      const cpu = new CpuWindow()
      cpu.start()
      const d0 = delivered
      const p0 = published
      const g0 = gaps
      nLat = 0
      measuring = true
      const tm = performance.now()
      await sleep(stepS * 1000)
      const dt = (performance.now() - tm) / 1000
      measuring = false
      const d = (delivered - d0) / dt
      const pb = (published - p0) / dt
      const l = lat.subarray(0, nLat).slice().sort()
      const row = {
        rate,
        deliveredPerSec: Math.round(d),
        publishedPerSec: Math.round(pb),
        gaps: gaps - g0,
        p50: pct(l, 50),
        p99: pct(l, 99),
        ...cpu.stop(),
      }
      row.ok = row.gaps === 0 && d >= 0.98 * pb && pb >= 0.95 * rate && (row.p99 ?? 1e9) < 500
      table.push(row)
      if (!row.ok) break
      best = row
    }
    running = false
    if (pacer) clearTimeout(pacer)
    const brokerMem = BROKER_PID ? procMem(BROKER_PID) : {}
    emit({
      pubs: nPubs,
      subs: nSubs,
      payload: PAYLOAD,
      stepSeconds: stepS,
      maxSustainedPerSec: best ? best.rate : 0,
      atMax: best,
      firstFailing: table.find((r) => !r.ok) || null,
      steps: table,
      lostTotal: published * fanFactor - delivered,
      seqGaps: gaps,
      brokerRssKb: brokerMem.rssKb ?? null,
      brokerHwmKb: brokerMem.hwmKb ?? null,
    })
    clearInterval(stallTimer)
    for (const c of [...pubs, ...subs]) {
      c.sock.write(DISCONNECT)
      c.sock.end()
    }
  }

  running = true
  if (isRamp) return ramp()
  if (isLatency) startPacer()
  else pump()
  await sleep(WARMUP * 1000)
  const cpu = new CpuWindow()
  cpu.start()
  const d0 = delivered
  const p0 = published
  const a0 = pubAcks
  const l0 = stallLost
  measuring = true
  const tm = performance.now()
  await sleep(DURATION * 1000)
  const dt = (performance.now() - tm) / 1000
  measuring = false
  const d1 = delivered
  const p1 = published
  const a1 = pubAcks
  const l1 = stallLost
  const usage = cpu.stop()
  running = false
  if (pacer) clearTimeout(pacer)
  // drain: wait up to 3 s for in-flight deliveries
  const tDrain = performance.now()
  while (published * fanFactor - delivered - stallLost > 0 && performance.now() - tDrain < 3000)
    await sleep(50)
  clearInterval(stallTimer)
  const brokerMem = BROKER_PID ? procMem(BROKER_PID) : {}
  lat = lat.subarray(0, nLat).sort()
  const lost = published * fanFactor - delivered
  emit({
    pubs: nPubs,
    subs: nSubs,
    payload: PAYLOAD,
    batch: isLatency ? null : BATCH,
    window: isLatency ? null : WINDOW,
    targetRate: isLatency ? Number(o.rate) : null,
    seconds: round1(dt),
    deliveredPerSec: Math.round((d1 - d0) / dt),
    publishedPerSec: Math.round((p1 - p0) / dt),
    pubAcksPerSec: QOS > 0 ? Math.round((a1 - a0) / dt) : null,
    stallsLostInWindow: l1 - l0,
    lostTotal: lost,
    seqGaps: gaps,
    seqReorders: reorders,
    latencyMs: {
      samples: nLat,
      p50: pct(lat, 50),
      p90: pct(lat, 90),
      p99: pct(lat, 99),
      p999: pct(lat, 99.9),
      max: pct(lat, 100),
    },
    ...usage,
    brokerRssKb: brokerMem.rssKb ?? null,
    brokerHwmKb: brokerMem.hwmKb ?? null,
    genRssKb: Math.round(process.memoryUsage().rss / 1024),
  })
  for (const c of [...pubs, ...subs]) {
    c.sock.write(DISCONNECT)
    c.sock.end()
  }
}

// ---------- connection workload ----------
async function connWorkload() {
  const N = Number(o.conns)
  const C = Number(o.conc)
  const memBefore = BROKER_PID ? procMem(BROKER_PID) : {}
  const cpu = new CpuWindow()
  cpu.start()
  const t0 = performance.now()
  let failed = 0
  const clients = await inBatches(N, C, async (i) => {
    try {
      return await openClient(`bc${i}-${process.pid}`, () => {})
    } catch (_e) {
      failed++
      return null
    }
  })
  const setupS = (performance.now() - t0) / 1000
  const usage = cpu.stop()
  const ok = clients.filter(Boolean)
  await sleep(Number(o.hold) * 1000)
  const alive = ok.filter((c) => !c.closed).length
  const memAfter = BROKER_PID ? procMem(BROKER_PID) : {}
  const ms = ok.map((c) => c.connectMs).sort((a, b) => a - b)
  emit({
    conns: N,
    concurrency: C,
    connected: ok.length,
    failed,
    aliveAfterHold: alive,
    setupSeconds: Math.round(setupS * 1000) / 1000,
    connPerSec: Math.round(ok.length / setupS),
    connectMs: { p50: pct(ms, 50), p99: pct(ms, 99), max: pct(ms, 100) },
    ...usage,
    brokerRssBeforeKb: memBefore.rssKb ?? null,
    brokerRssAfterKb: memAfter.rssKb ?? null,
    // no live connection, no per-connection figure (not RSS growth / 1)
    brokerKbPerConn:
      BROKER_PID && alive > 0
        ? Math.round(((memAfter.rssKb - memBefore.rssKb) / alive) * 100) / 100
        : null,
    genRssKb: Math.round(process.memoryUsage().rss / 1024),
  })
  for (const c of ok) c.sock.destroy()
}

try {
  if (workload === 'conn') await connWorkload()
  else await pubsub()
  setTimeout(() => process.exit(0), 200)
} catch (e) {
  emit({ error: String(e?.message ? e.message : e) })
  process.exit(1)
}
