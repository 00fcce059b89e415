/**
 * `phimq store` commands against a real config, master key file and
 * database: key listing, rotation with re-encrypt, crypto-erase, and the
 * lock that keeps them off a running broker's database (issue #5).
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { Command } from 'commander'
import { registerStoreCommands } from '../../src/cli/store.js'
import { loadConfigFile } from '../../src/config/load.js'
import { sqliteStoreFromConfig } from '../../src/store/sqlite-from-config.js'

interface Cli {
  dir: string
  config: string
  run(...args: string[]): Promise<{ out: string[]; err: string[] }>
  cleanup(): Promise<void>
}

async function cli(audit = 'audit: { sink: jsonl }'): Promise<Cli> {
  const dir = await mkdtemp(join(tmpdir(), 'phimq-cli-'))
  const config = join(dir, 'phimq.yaml')
  await writeFile(
    config,
    [
      'environment: dev',
      'dataDir: data',
      'listeners:',
      '  - { name: dev, type: tcp, port: 0 }',
      'store:',
      '  type: sqlite',
      '  masterKeyFile: master.key',
      audit,
      '',
    ].join('\n'),
  )
  return {
    dir,
    config,
    async run(...args) {
      const out: string[] = []
      const err: string[] = []
      const program = new Command().exitOverride()
      registerStoreCommands(program, { out: (l) => out.push(l), err: (l) => err.push(l) })
      await program.parseAsync(['store', ...args], { from: 'user' })
      return { out, err }
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

/** Seed the configured store with two tenants' queued messages. */
async function seed(config: string): Promise<void> {
  const store = sqliteStoreFromConfig(loadConfigFile(config))
  await store.open()
  for (const tenant of ['clinic-a', 'clinic-b']) {
    const clientId = `${tenant}-dev`
    store.saveSession({
      clientId,
      protocolVersion: 5,
      sessionExpirySeconds: 600,
      identity: { id: clientId, tenant },
    })
    for (let seq = 1; seq <= 4; seq++) {
      const message = { topic: 't', payload: Buffer.from('x'), qos: 1 as const, retain: false }
      store.pushMessage(clientId, { seq, state: 'queued', message })
    }
  }
  await store.close()
}

describe('phimq store commands', () => {
  it('init-master-key writes a 0600 key file once and never overwrites it', async () => {
    const c = await cli()
    try {
      const file = join(c.dir, 'master.key')
      await c.run('init-master-key', '--out', file)
      assert.equal((await stat(file)).mode & 0o777, 0o600)
      assert.match(await readFile(file, 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/)
      await assert.rejects(c.run('init-master-key', '--out', file), {
        code: 'PHIMQ_CONFIG_INVALID',
      })
    } finally {
      await c.cleanup()
    }
  })

  it('rotate-key, reencrypt and keys move a tenant to a new key and delete the old one', async () => {
    const c = await cli()
    try {
      await c.run('init-master-key', '--out', join(c.dir, 'master.key'))
      await seed(c.config)
      const rotated = await c.run('rotate-key', '-c', c.config, '--tenant', 'clinic-a')
      assert.match(rotated.out.join('\n'), /tenant clinic-a: new data key \d+/)

      const job = await c.run('reencrypt', '-c', c.config, '--batch-size', '3')
      assert.deepEqual(job.err, ['reencrypt 0/4', 'reencrypt 3/4', 'reencrypt 4/4'])
      assert.match(job.out.join('\n'), /re-encrypted 4 records, dropped 0 unreadable/)

      const keys = (await c.run('keys', '-c', c.config)).out.slice(1).map((l) => l.split('\t'))
      const data = keys.filter((k) => k[1] === 'data')
      assert.deepEqual(data.map((k) => [k[2], k[3], k[4]]).sort(), [
        ['active', 'clinic-a', '4'],
        ['active', 'clinic-b', '4'],
      ])
      const audit = await readFile(join(c.dir, 'data', 'audit.jsonl'), 'utf8')
      assert.match(audit, /"type":"store.key-rotated","tenant":"clinic-a"/)
      assert.match(audit, /"type":"store.reencrypted","records":4/)
    } finally {
      await c.cleanup()
    }
  })

  it('erase-tenant needs --yes, then destroys the tenant and audits it', async () => {
    const c = await cli()
    try {
      await c.run('init-master-key', '--out', join(c.dir, 'master.key'))
      await seed(c.config)
      await assert.rejects(c.run('erase-tenant', '-c', c.config, '--tenant', 'clinic-b'), /--yes/)
      await assert.rejects(c.run('erase-tenant', '-c', c.config, '--yes'), /exactly one/)
      const erased = await c.run('erase-tenant', '-c', c.config, '--tenant', 'clinic-b', '--yes')
      assert.match(erased.out[0] ?? '', /1 keys destroyed, 4 records and 1 sessions deleted/)

      const store = sqliteStoreFromConfig(loadConfigFile(c.config))
      const snapshot = await store.open()
      assert.deepEqual(
        snapshot.sessions.map((s) => s.session.clientId),
        ['clinic-a-dev'],
      )
      await store.close()
      const audit = await readFile(join(c.dir, 'data', 'audit.jsonl'), 'utf8')
      assert.match(audit, /"type":"store.tenant-erased","tenant":"clinic-b","keys":1/)
    } finally {
      await c.cleanup()
    }
  })

  it('rewrap moves the store to a new master key file and audits both fingerprints', async () => {
    const c = await cli()
    try {
      await c.run('init-master-key', '--out', join(c.dir, 'master.key'))
      await c.run('init-master-key', '--out', join(c.dir, 'next.key'))
      await seed(c.config)
      await assert.rejects(c.run('rewrap', '-c', c.config), /exactly one/)
      const done = await c.run(
        'rewrap',
        '-c',
        c.config,
        '--new-master-key-file',
        join(c.dir, 'next.key'),
      )
      assert.match(
        done.out[0] ?? '',
        /^\d+ data keys re-wrapped under master key local:[0-9a-f]{16}/,
      )

      await assert.rejects(c.run('keys', '-c', c.config), { code: 'PHIMQ_MASTER_KEY_INVALID' })
      await rename(join(c.dir, 'next.key'), join(c.dir, 'master.key'))
      const keys = await c.run('keys', '-c', c.config)
      assert.equal(keys.out.filter((l) => l.includes('\tdata\t')).length, 2)
      const audit = await readFile(join(c.dir, 'data', 'audit.jsonl'), 'utf8')
      assert.match(
        audit,
        /"type":"store.master-key-rotated","from":"local:[0-9a-f]{16}","to":"local:/,
      )
    } finally {
      await c.cleanup()
    }
  })

  it('writes its audit events to the default hash-chained audit trail', async () => {
    const c = await cli('')
    try {
      await c.run('init-master-key', '--out', join(c.dir, 'master.key'))
      await seed(c.config)
      await c.run('rotate-key', '-c', c.config, '--default-tenant')
      const dir = join(c.dir, 'data', 'audit')
      const segments = await Promise.all(
        (await readdir(dir)).map((name) => readFile(join(dir, name), 'utf8')),
      )
      assert.match(segments.join('\n'), /"type":"store.key-rotated"/)
    } finally {
      await c.cleanup()
    }
  })

  it('refuses to touch a database the running broker holds (PHIMQ_STORE_BUSY)', async () => {
    const c = await cli()
    try {
      await c.run('init-master-key', '--out', join(c.dir, 'master.key'))
      const running = sqliteStoreFromConfig(loadConfigFile(c.config))
      await running.open()
      try {
        await assert.rejects(c.run('keys', '-c', c.config), { code: 'PHIMQ_STORE_BUSY' })
      } finally {
        await running.close()
      }
    } finally {
      await c.cleanup()
    }
  })
})
