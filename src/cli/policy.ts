/**
 * `phimq policy check` and `phimq policy explain`: validate the policy of a
 * config file, and ask it what it would decide for one identity and topic.
 * The work is in plain functions (tested); commander only parses flags.
 */
import { dirname } from 'node:path'
import type { Command } from 'commander'
import type { Identity, Qos } from '../broker/types.js'
import { loadConfigFile } from '../config/load.js'
import { ConfigError } from '../errors.js'
import { PolicyGate } from '../policy/policy-gate.js'
import { reasonCodeName } from '../protocol/reason-codes.js'

/** Build the gate of a config file; throws the named error that stops `start`. */
export function loadPolicyGate(
  configPath: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): PolicyGate {
  const loaded = loadConfigFile(configPath)
  const policy = loaded.config.policy
  if (policy === undefined) throw new ConfigError(`config ${loaded.source} has no policy section`)
  const baseDir = dirname(loaded.source)
  return new PolicyGate({ policy, environment: loaded.config.environment, baseDir, env })
}

/** One line saying the policy is valid and how much it holds. */
export function checkPolicyFile(
  configPath: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const loaded = loadConfigFile(configPath)
  loadPolicyGate(configPath, env)
  const p = loaded.config.policy
  return `policy ok: ${p?.rules.length ?? 0} rules, ${p?.classes.length ?? 0} classes`
}

/** Parse `tenant=acme,role=device,id=dev-1`. */
export function parseIdentity(text: string): Identity {
  const fields = new Map<string, string>()
  for (const part of text.split(',')) {
    const at = part.indexOf('=')
    if (at <= 0) throw new ConfigError(`identity: expected key=value, got ${part}`)
    fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim())
  }
  const id = fields.get('id')
  if (id === undefined) throw new ConfigError('identity: id is required')
  return { id, tenant: fields.get('tenant'), role: fields.get('role') }
}

/** What `explain` asks the gate about. */
export interface ExplainRequest {
  readonly identity: Identity
  readonly publish?: string | undefined
  readonly subscribe?: string | undefined
  readonly share?: string | undefined
  readonly qos: Qos
  /** Payload for `publish`, as text; default `{}`. */
  readonly payload?: string | undefined
  readonly contentType?: string | undefined
}

/** What the gate decides, as one line: `allow ...` or `deny 0x87 NotAuthorized rule`. */
export function explain(gate: PolicyGate, request: ExplainRequest): string {
  const client = {
    clientId: request.identity.id,
    identity: request.identity,
    listener: 'cli',
    remoteAddress: '127.0.0.1',
    protocolVersion: 5 as const,
  }
  if (request.subscribe !== undefined) {
    const v = gate.authorizeSubscribe(client, {
      filter: request.subscribe,
      shareGroup: request.share,
      qos: request.qos,
    })
    return v.allow ? `allow subscribe, qos ${v.maxQos}` : describeRefusal(v)
  }
  if (request.publish !== undefined) {
    const v = gate.authorizePublish(client, {
      topic: request.publish,
      payload: Buffer.from(request.payload ?? '{}'),
      qos: request.qos,
      retain: false,
      properties: { contentType: request.contentType ?? 'application/json' },
    })
    if (!v.allow) return describeRefusal(v)
    const expiry = v.message.expiresAt === undefined ? 'none' : new Date(v.message.expiresAt)
    return `allow publish, expires ${expiry instanceof Date ? expiry.toISOString() : expiry}`
  }
  throw new ConfigError('explain: give --publish TOPIC or --subscribe FILTER')
}

function describeRefusal(v: { reasonCode: number; rule: string }): string {
  const code = `0x${v.reasonCode.toString(16).padStart(2, '0')}`
  return `deny ${code} ${reasonCodeName(v.reasonCode)} ${v.rule}`
}

/** Add `phimq policy check` and `phimq policy explain` to the program. */
export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('check and query the topic policy')

  policy
    .command('check')
    .description('validate the policy section (rules, classes, keys) of a config file')
    .option('-c, --config <file>', 'configuration file', 'phimq.yaml')
    .action((opts: { config: string }) => {
      console.log(checkPolicyFile(opts.config))
    })

  policy
    .command('explain')
    .description('show what the policy decides for one identity and topic')
    .option('-c, --config <file>', 'configuration file', 'phimq.yaml')
    .requiredOption('-i, --identity <fields>', 'tenant=...,role=...,id=...')
    .option('--publish <topic>', 'a Topic Name to publish to')
    .option('--subscribe <filter>', 'a Topic Filter to subscribe to')
    .option('--share <group>', 'the $share group of the subscription')
    .option('--qos <n>', 'QoS', '1')
    .option('--payload <json>', 'payload to publish', '{}')
    .action((opts: Record<string, string | undefined>) => {
      const gate = loadPolicyGate(opts.config ?? 'phimq.yaml')
      const qos = Number(opts.qos ?? '1')
      if (qos !== 0 && qos !== 1 && qos !== 2) throw new ConfigError('--qos: 0, 1 or 2')
      const line = explain(gate, {
        identity: parseIdentity(opts.identity ?? ''),
        publish: opts.publish,
        subscribe: opts.subscribe,
        share: opts.share,
        qos,
        payload: opts.payload,
      })
      console.log(line)
    })
}
