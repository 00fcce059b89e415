/**
 * A prompt that does not echo what is typed (auditor passwords and
 * one-time codes). Only on a terminal: with stdin a pipe or a file it
 * answers `undefined` at once, so scripts never hang waiting for input.
 */

/** Ask on stderr, read one line from the terminal without echo. */
export function promptHidden(question: string): Promise<string | undefined> {
  const input = process.stdin
  if (!input.isTTY) return Promise.resolve(undefined)
  process.stderr.write(question)
  return new Promise((resolve) => {
    let text = ''
    const finish = (value: string | undefined): void => {
      input.off('data', onData)
      input.setRawMode(false)
      input.pause()
      process.stderr.write('\n')
      resolve(value)
    }
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          finish(text)
          return
        }
        // Ctrl-C, Ctrl-D: give up; the caller treats it as no answer.
        if (ch === '\u0003' || ch === '\u0004') {
          finish(undefined)
          return
        }
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1)
        else text += ch
      }
    }
    input.setRawMode(true)
    input.setEncoding('utf8')
    input.on('data', onData)
    input.resume()
  })
}
