/**
 * The `phimq` command.
 */
import { PhimqError } from '../errors.js'
import { buildProgram } from './program.js'

export { buildProgram }

/**
 * `phimq audit search ... | head`: a reader that stops early closes the
 * pipe; that is the reader's choice, not our error. Exit quietly with the
 * exit code set so far instead of dying on an unhandled EPIPE.
 */
export function exitQuietlyOnBrokenPipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    process.exit()
  })
}

export async function main(argv: string[]): Promise<void> {
  exitQuietlyOnBrokenPipe()
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
