/** A pino destination that keeps each line, for log assertions. */
export function collector(): { lines: string[]; write(s: string): void } {
  const lines: string[] = []
  return { lines, write: (s: string) => lines.push(s) }
}
