/**
 * The `phimq` program: every command, without running it (main.ts runs it;
 * reference-docs.ts prints its help into docs/cli.md).
 */
import { Command } from 'commander'
import { registerAuditCommands } from './audit.js'
import { registerAuditorCommands } from './auditor.js'
import { registerDemoCommands } from './demo.js'
import { registerInitCommands } from './init.js'
import { registerPkiCommands } from './pki.js'
import { registerPolicyCommands } from './policy.js'
import { registerStartCommand } from './start.js'
import { registerStoreCommands } from './store.js'

/** Build the `phimq` command with all its subcommands. */
export function buildProgram(): Command {
  const program = new Command()
  program.name('phimq').description('MQTT broker for protected health information')

  registerInitCommands(program)
  registerStartCommand(program)
  registerAuditCommands(program)
  registerAuditorCommands(program)
  registerDemoCommands(program)
  registerPkiCommands(program)
  registerPolicyCommands(program)
  registerStoreCommands(program)
  return program
}
