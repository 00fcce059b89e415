/**
 * The `phimq` command.
 */
import { Command } from 'commander'
import { loadConfigFile } from '../config/load.js'
import { PhimqError } from '../errors.js'
import { createLogger } from '../monitor/logger.js'
import { startServer } from '../server.js'
import { registerAuditCommands } from './audit.js'
import { registerPkiCommands } from './pki.js'
import { registerPolicyCommands } from './policy.js'
import { registerStoreCommands } from './store.js'

export function buildProgram(): Command {
  const program = new Command()
  program.name('phimq').description('MQTT broker for protected health information')

  program
    .command('start')
    .description('start the broker')
    .option('-c, --config <file>', 'configuration file', 'phimq.yaml')
    .action(async (opts: { config: string }) => {
      const loaded = loadConfigFile(opts.config)
      const logger = createLogger({
        level: loaded.config.log.level,
        base: { node: loaded.config.nodeId },
      })
      const server = await startServer(loaded, { logger })
      console.log(`phimq ready ${server.listeners.map((l) => l.url).join(' ')}`)
      const stop = (): void => {
        void server.close().then(() => process.exit(0))
      }
      process.on('SIGHUP', () => {
        const result = server.reloadPolicy()
        if (result.ok)
          logger.info({ event: 'policy.reload', changed: result.changed }, 'policy reloaded')
        else logger.warn({ event: 'policy.reload', errors: result.errors }, 'policy reload refused')
      })
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
  registerAuditCommands(program)
  registerPkiCommands(program)
  registerPolicyCommands(program)
  registerStoreCommands(program)
  return program
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (err) {
    if (err instanceof PhimqError) {
      console.error(`phimq: ${err.message} [${err.code}]`)
      process.exitCode = 2
      return
    }
    throw err
  }
}

await main(process.argv)
