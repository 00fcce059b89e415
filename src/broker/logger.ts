/**
 * The logger the core is handed: a pino-compatible subset. Without one the
 * core is silent. Messages are a small fixed vocabulary; context goes in the
 * first argument's fields, never payload bytes.
 */
export interface Logger {
  debug(fields: object, message: string): void
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
  child(bindings: object): Logger
}

/** Drops everything. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
}
