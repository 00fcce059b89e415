import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import type { StampedAuditEvent } from '../../src/audit/events.js'
import {
  eventId,
  formatCef,
  formatJsonLine,
  formatSyslog,
  frameOctetCounted,
} from '../../src/audit/formats.js'
import { formatOcsf } from '../../src/audit/ocsf.js'
import { formatOtlpLogRecord, otlpLogsRequest, toOtlpLogRecord } from '../../src/audit/otlp.js'
import { actor } from './helpers.js'

const time = '2026-06-01T12:00:00.123Z'
const stamp = (seq: number) => ({ time, seq, node: 'node-a' })

/** Synthetic events; one carries every character the formats must escape. */
const EVENTS: StampedAuditEvent[] = [
  {
    type: 'client.connected',
    actor: actor('pump-1'),
    protocolVersion: 5,
    cleanStart: true,
    sessionPresent: false,
    sessionExpirySeconds: 0,
    ...stamp(1),
  },
  {
    type: 'publish.denied',
    actor: actor('pump-1'),
    topic: 'clinic-a/odd|pipe\\slash=eq"quote]bracket',
    qos: 1,
    retain: false,
    reasonCode: 0x87,
    rule: 'policy.default-deny',
    ...stamp(2),
  },
  {
    type: 'connect.refused',
    remoteAddress: '192.0.2.7',
    listener: 'mqtts',
    reasonCode: 0x86,
    rule: 'auth.password\nsecond-line',
    ...stamp(3),
  },
  {
    type: 'alert.raised',
    rule: 'wildcard-subscribe',
    severity: 'high',
    subject: 'app-1',
    observed: 1,
    threshold: 0,
    windowSeconds: 0,
    ...stamp(4),
  },
]

const FORMATS: Array<[string, (e: StampedAuditEvent) => string]> = [
  ['events.jsonl', formatJsonLine],
  ['events.cef', (e) => formatCef(e, { version: '0.1.0' })],
  ['events.syslog', (e) => formatSyslog(e, { hostname: 'broker-1.example', procId: '4242' })],
  ['events.ocsf.jsonl', (e) => formatOcsf(e, { version: '0.1.0' })],
  ['events.otlp.jsonl', formatOtlpLogRecord],
]

describe('export formats (C28)', () => {
  for (const [file, format] of FORMATS) {
    it(`${file} matches its golden file`, () => {
      const path = new URL(`../fixtures/audit-export/${file}`, import.meta.url)
      const text = `${EVENTS.map(format).join('\n')}\n`
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, text)
      assert.equal(text, readFileSync(path, 'utf8'))
    })
  }

  it('OCSF JSON: auth events are class 3002 in category 3, with the same event id (C28)', () => {
    const [connected, publishDenied, refused, alert] = EVENTS.map((e) =>
      JSON.parse(formatOcsf(e)),
    ) as Array<Record<string, unknown> & { metadata: { uid: string } }>
    assert.equal(connected?.class_uid, 3002)
    assert.equal(connected?.category_uid, 3)
    assert.equal(connected?.type_uid, 300201)
    assert.equal(connected?.status_id, 1)
    assert.equal(refused?.class_uid, 3002)
    assert.equal(refused?.status_id, 2, 'a refused CONNECT is a failed logon')
    assert.equal(refused?.status_code, '0x86')
    assert.equal(publishDenied?.class_uid, 6003)
    assert.equal(publishDenied?.status_id, 2)
    assert.equal(alert?.class_uid, 2004)
    assert.equal(alert?.severity_id, 4)
    EVENTS.forEach((e, i) => {
      const o = [connected, publishDenied, refused, alert][i]
      assert.equal(o?.metadata.uid, eventId(e))
    })
  })

  it('OTLP log records: time in ns, severity by event, structured body, the same event id (C28)', () => {
    const [connected, publishDenied, , alert] = EVENTS.map(toOtlpLogRecord)
    assert.equal(connected?.timeUnixNano, '1780315200123000000')
    assert.deepEqual(
      [connected, publishDenied, alert].map((r) => [r?.severityNumber, r?.severityText]),
      [
        [9, 'INFO'],
        [13, 'WARN'],
        [17, 'ERROR'],
      ],
    )
    const body = publishDenied?.body as { kvlistValue: { values: { key: string }[] } }
    assert.ok(body.kvlistValue.values.some((kv) => kv.key === 'topic'))
    EVENTS.forEach((e) => {
      const attrs = toOtlpLogRecord(e).attributes
      assert.deepEqual(attrs.find((a) => a.key === 'event.id')?.value, { stringValue: eventId(e) })
      assert.deepEqual(attrs.find((a) => a.key === 'event.name')?.value, { stringValue: e.type })
    })
    const request = otlpLogsRequest([connected as never], { version: '0.1.0' }) as {
      resourceLogs: { scopeLogs: { scope: unknown; logRecords: unknown[] }[] }[]
    }
    const scopeLogs = request.resourceLogs[0]?.scopeLogs[0]
    assert.deepEqual(scopeLogs?.scope, { name: 'phimq.audit', version: '0.1.0' })
    assert.equal(scopeLogs?.logRecords.length, 1)
  })

  it('every format carries the same event id', () => {
    for (const e of EVENTS) {
      const id = eventId(e)
      assert.equal((JSON.parse(formatJsonLine(e)) as { id: string }).id, id)
      assert.match(formatCef(e), new RegExp(` externalId=${id} `))
      assert.match(formatSyslog(e), new RegExp(`\\[phimq@32473 id="${id}"`))
      assert.equal((JSON.parse(formatOcsf(e)) as { metadata: { uid: string } }).metadata.uid, id)
      const otlp = JSON.parse(formatOtlpLogRecord(e)) as {
        attributes: { key: string; value: { stringValue?: string } }[]
      }
      assert.equal(otlp.attributes.find((a) => a.key === 'event.id')?.value.stringValue, id)
    }
  })

  it('CEF escapes | and \\ in the header and \\, = and line breaks in extensions', () => {
    const e = {
      ...(EVENTS[1] as StampedAuditEvent),
      type: 'publish.denied',
    } as StampedAuditEvent
    const line = formatCef(e, { vendor: 'ac|me\\', product: 'p' })
    assert.ok(line.startsWith('CEF:0|ac\\|me\\\\|p|'))
    assert.match(line, / cs1=clinic-a\/odd\|pipe\\\\slash\\=eq"quote\]bracket /)
    const refused = formatCef(EVENTS[2] as StampedAuditEvent)
    assert.match(refused, / reason=auth.password\\nsecond-line /)
    assert.equal(refused.includes('\n'), false)
  })

  it('syslog header fields stay within RFC 5424 limits and printable ASCII', () => {
    const line = formatSyslog(EVENTS[0] as StampedAuditEvent, {
      hostname: `h${'x'.repeat(300)}`,
      appName: 'a p p'.repeat(20),
      procId: 'p'.repeat(200),
    })
    const fields = line.split(' ')
    const [pri, , hostname, app, procId, msgId] = fields.map(String) as [
      string,
      string,
      string,
      string,
      string,
      string,
    ]
    assert.equal(pri, '<110>1')
    assert.equal(hostname.length, 255)
    assert.ok(app.length <= 48 && !app.includes(' '))
    assert.equal(procId.length, 128)
    assert.ok(msgId.length <= 32)
    assert.match(line, /^<\d{1,3}>1 2026-06-01T12:00:00\.123Z /)
  })

  it('syslog escapes ", \\ and ] in structured-data values', () => {
    const e = { ...(EVENTS[0] as StampedAuditEvent), node: 'n"o\\d]e' } as StampedAuditEvent
    assert.match(formatSyslog(e), /node="n\\"o\\\\d\\]e"\]/)
  })

  it('octet counting prefixes the byte length of the UTF-8 message (RFC 5425 4.3)', () => {
    const frame = frameOctetCounted('\uFEFFé')
    assert.equal(frame.toString('utf8'), '5 \uFEFFé')
  })

  it('no format writes payload bytes even when a producer passes them (C26)', () => {
    const leaky = {
      ...EVENTS[1],
      payload: Buffer.from('078-05-1120'),
    } as unknown as StampedAuditEvent
    for (const [, format] of FORMATS) assert.equal(format(leaky).includes('078-05-1120'), false)
  })
})
