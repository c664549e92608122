/**
 * The errors codiemb reports to its user, and the exit codes they map to.
 *
 * Every error class codiemb exports extends CodiembError, so the CLI can tell a reported failure
 * (printed as its message, without a stack) from a bug, and so one rule gives the exit code:
 *
 *   2  EXIT_USER_ERROR: the request is wrong and the user must change it: a bad flag or argument, an
 *      invalid configuration, malformed input data, a missing file or model, an unknown registry
 *      entry, a backend that is not available, an output path that cannot be written (read-only,
 *      under a file: fileSystemError). This is CodiembError's default.
 *   1  EXIT_FAILURE: the request was fine but carrying it out failed: the network or the Hugging Face
 *      Hub (`data pull` listing or downloads, size/sha256 checks), or an internal failure such as a
 *      tokenizer rejecting a text the data layer accepted. ExecutionError and its subclasses carry 1;
 *      HubError carries 1 unless the repository request itself is wrong (bad id, no such repository).
 *
 *   130 / 143  a run stopped by SIGINT (Ctrl-C) / SIGTERM: 128 + the signal's number, as a shell
 *      reports a process the signal killed. InterruptedError carries them.
 *
 * Errors that are not CodiembErrors (a TypeError, a plain Error from a library) are internal
 * failures and exit 1 as well; oclif's own usage errors (unknown flag, missing argument) exit 2.
 */

import {basename, dirname} from 'node:path'
import {parseTempName} from './temp-names.js'

/** Exit code for errors the user fixes by changing the command, the configuration or the input. */
export const EXIT_USER_ERROR = 2
/** Exit code for a valid request that failed while running (network, remote service, internal). */
export const EXIT_FAILURE = 1

export interface CodiembErrorOptions {
  /** The process exit code (default EXIT_USER_ERROR). */
  exitCode?: number
  /** The error's name in messages and the --json envelope (subclasses set their own). */
  name?: string
  /** Extra structured facts for the --json envelope (e.g. the list of config problems). */
  data?: unknown
  cause?: unknown
}

/** An error a user can act on: usage, configuration, bad input or missing files (exit code 2 unless told otherwise). */
export class CodiembError extends Error {
  readonly exitCode: number
  /** Extra structured facts for the --json envelope (e.g. the list of config problems). */
  readonly data?: unknown
  constructor(message: string, options: CodiembErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = options.name ?? 'CodiembError'
    this.exitCode = options.exitCode ?? EXIT_USER_ERROR
    this.data = options.data
  }
}

/**
 * A valid request that failed while it ran — the network, a remote service, an integrity check, or
 * an internal step (exit code 1): running it again, or reporting a bug, is the remedy, not editing
 * the input.
 */
export class ExecutionError extends CodiembError {
  constructor(message: string, options: Omit<CodiembErrorOptions, 'exitCode'> = {}) {
    super(message, {name: 'ExecutionError', ...options, exitCode: EXIT_FAILURE})
  }
}

/** The signals that ask a run to stop, and their exit codes (128 + the signal's number). */
export const SIGNAL_EXIT_CODES = {SIGINT: 130, SIGTERM: 143} as const
export type StopSignal = keyof typeof SIGNAL_EXIT_CODES

/**
 * The run was stopped on request — Ctrl-C (SIGINT), SIGTERM, or an aborted AbortSignal handed to a
 * library engine — before it finished; exit code 130 or 143. Whatever it wrote is complete (the
 * atomic writes of src/core/fs-atomic.ts) and its temporaries are gone; `data` says what is left
 * to resume from, where the command knows (train: the step and the checkpoint).
 */
export class InterruptedError extends CodiembError {
  constructor(
    readonly signal: StopSignal,
    message = `interrupted by ${signal}`,
    options: Omit<CodiembErrorOptions, 'exitCode' | 'name'> = {},
  ) {
    super(message, {...options, name: 'InterruptedError', exitCode: SIGNAL_EXIT_CODES[signal]})
  }
}

/**
 * The InterruptedError an aborted AbortSignal stands for: its reason when that is one (the CLI
 * aborts with one naming the signal), else one for SIGINT — a library caller's plain
 * `controller.abort()` is a stop request like Ctrl-C.
 */
export function interruptionOf(signal: AbortSignal): InterruptedError {
  const reason: unknown = signal.reason
  return reason instanceof InterruptedError ? reason : new InterruptedError('SIGINT', 'interrupted: the run was aborted', {cause: reason})
}

/** Throws interruptionOf(signal) when `signal` is aborted: the check an engine makes between two units of its work. */
export function stopIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw interruptionOf(signal)
}


/**
 * The exit code an error maps to: its own `exitCode` when it has one (oclif's usage errors are 2),
 * 2 for a file-system error about a path (see fileSystemError), else EXIT_FAILURE.
 */
export function exitCodeOf(error: unknown): number {
  const e = error as {exitCode?: unknown; oclif?: {exit?: unknown}}
  if (typeof e?.exitCode === 'number') return e.exitCode
  if (typeof e?.oclif?.exit === 'number') return e.oclif.exit as number
  if (fileSystemError(error)) return EXIT_USER_ERROR
  return EXIT_FAILURE
}

/**
 * What the path-related errors of Node's fs calls mean. They are the user's to fix (exit 2): an
 * output in a read-only or missing place, a file where a directory belongs. Errors of the machine
 * rather than the request (ENOSPC, EIO, EMFILE) are not here: they stay failures (exit 1).
 */
const PATH_ERRORS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'it is a directory',
  EEXIST: 'it already exists',
  ENOTEMPTY: 'the directory is not empty',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
}

const ACTIONS: Record<string, string> = {
  open: 'open',
  mkdir: 'create directory',
  mkdtemp: 'create directory',
  rename: 'move into place',
  unlink: 'remove',
  rmdir: 'remove',
  rm: 'remove',
  scandir: 'list directory',
  stat: 'read',
  lstat: 'read',
  read: 'read',
  write: 'write',
  copyfile: 'copy to',
  symlink: 'link',
}

/**
 * What could not be done, in the user's terms: a temporary sibling (core/fs-atomic.ts, how every
 * output is written) stands for writing into its directory; any other path is named as it is.
 */
function failedAction(syscall: string, path: string): {what: string; path: string} {
  if (parseTempName(basename(path))) return {what: `cannot write into ${dirname(path)}`, path: dirname(path)}
  return {what: `cannot ${ACTIONS[syscall] ?? syscall} ${path}`, path}
}

/**
 * A Node file-system error about a path (EACCES, EROFS, ENOENT, ENOTDIR …) as the CodiembError a user
 * reads: exit code 2, named FileSystemError, saying what could not be done to which path and why
 * (`data`: code, syscall, path). Undefined for any other error.
 */
export function fileSystemError(error: unknown): CodiembError | undefined {
  const e = error as {code?: unknown; syscall?: unknown; path?: unknown; dest?: unknown; message?: unknown}
  if (error instanceof CodiembError || typeof e?.code !== 'string' || !(e.code in PATH_ERRORS) || typeof e.syscall !== 'string') return undefined
  const raw = typeof e.dest === 'string' && e.syscall === 'rename' && e.code !== 'ENOENT' ? e.dest : typeof e.path === 'string' ? e.path : undefined
  if (raw === undefined) return new CodiembError(String(e.message), {name: 'FileSystemError', data: {code: e.code, syscall: e.syscall}, cause: error})
  const {what, path} = failedAction(e.syscall, raw)
  return new CodiembError(`${what}: ${PATH_ERRORS[e.code]} (${e.code})`, {name: 'FileSystemError', data: {code: e.code, syscall: e.syscall, path}, cause: error})
}
