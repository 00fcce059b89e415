/**
 * The `phimq` command.
 */
import { PhimqError } from '../errors.js'
import { buildProgram } from './program.js'

export { buildProgram }

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
