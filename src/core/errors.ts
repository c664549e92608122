/**
 * An error a user can act on. `exitCode` follows the CLI convention: 2 for usage, configuration and
 * bad-input errors, 1 for everything else.
 */
export class CodiembError extends Error {
  readonly exitCode: number
  /** Extra structured facts for the --json envelope (e.g. the list of config problems). */
  readonly data?: unknown
  constructor(message: string, options: {exitCode?: number; name?: string; data?: unknown; cause?: unknown} = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = options.name ?? 'CodiembError'
    this.exitCode = options.exitCode ?? 1
    this.data = options.data
  }
}

/** The exit code an error maps to: its own `exitCode` when it has one (oclif's usage errors are 2). */
export function exitCodeOf(error: unknown): number {
  const e = error as {exitCode?: unknown; oclif?: {exit?: unknown}}
  if (typeof e?.exitCode === 'number') return e.exitCode
  if (typeof e?.oclif?.exit === 'number') return e.oclif.exit as number
  return 1
}
