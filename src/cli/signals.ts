/**
 * What Ctrl-C (SIGINT) and SIGTERM do to a running command: the one place the CLI listens for them.
 *
 * First signal: the command's AbortSignal is aborted with an InterruptedError naming the signal
 * (exit code 130 / 143). A command that asked for that AbortSignal (`claim`) stops cooperatively:
 * train finishes or abandons its step and writes a checkpoint, prepare and merge drop their staging
 * folders; its error then ends the run through oclif's catch (the --json envelope, the `error`
 * event) and finally (files closed, locks released). A command that never asked is not waited for:
 * `race` rejects at once with the InterruptedError and the same catch/finally run; the CLI then
 * exits (bin/run.js), and the exit sweep of src/core/fs-atomic.ts removes the temporaries its
 * abandoned engine still held.
 *
 * Second signal: stop at once. `race` rejects even for a cooperating command, so catch/finally
 * still run, and if the process has not exited `hardExitMs` later it is ended with process.exit.
 * Nothing written is corrupted either way: every output and checkpoint appears by rename, complete
 * or not at all, and the exit sweep removes the temporaries. JavaScript cannot run while a
 * synchronous tensor kernel does, so "at once" means when the current kernel returns.
 *
 * listr2 must not listen itself (it would exit 127 and lose the step): base-command.ts creates its
 * lists with `registerSignalListeners: false`.
 */
import {InterruptedError, SIGNAL_EXIT_CODES, type StopSignal} from '../core/errors.js'

/** process.exit as it was when codiemb started: plugin hooks run with a guarded one (src/registry/load.ts). */
const originalExit = process.exit.bind(process)

export interface SignalStopOptions {
  /** Where to say what happens next (default: standard error). */
  notify?: (message: string) => void
  /** Milliseconds after the second signal before the process is ended regardless (default 2000). */
  hardExitMs?: number
  /** Ends the process (default: process.exit as it was at startup); injectable for tests. */
  exit?: (code: number) => void
  /** The process whose signals are handled (default: this one); injectable for tests. */
  target?: Pick<NodeJS.Process, 'on' | 'removeListener'>
}

export class SignalStop {
  private readonly controller = new AbortController()
  private claimed?: string
  private count = 0
  private rejectRace?: (error: InterruptedError) => void
  private stopped?: InterruptedError
  private hardExit?: NodeJS.Timeout
  private readonly handler = (signal: NodeJS.Signals) => this.receive(signal as StopSignal)

  constructor(private readonly options: SignalStopOptions = {}) {}

  /** Starts listening for SIGINT and SIGTERM. */
  install(): this {
    const target = this.options.target ?? process
    for (const s of Object.keys(SIGNAL_EXIT_CODES)) target.on(s, this.handler)
    return this
  }

  /**
   * Stops listening: a later signal gets Node's default (the process ends). A hard exit already
   * scheduled stays: work abandoned after a second signal must not keep the process alive.
   */
  uninstall(): void {
    const target = this.options.target ?? process
    for (const s of Object.keys(SIGNAL_EXIT_CODES)) target.removeListener(s, this.handler)
  }

  /**
   * The AbortSignal of a command that stops cooperatively; asking for it is the promise to stop
   * soon after it is aborted. `doing` says what the command does then, for the notice the user sees
   * (e.g. "finishing the current step and writing a checkpoint").
   */
  claim(doing: string): AbortSignal {
    this.claimed = doing
    return this.controller.signal
  }

  /** The abort signal without a promise to watch it (already aborted once a signal came). */
  get signal(): AbortSignal {
    return this.controller.signal
  }

  /**
   * `work`, unless a signal comes first that the command does not handle itself (any signal when
   * it has not claimed the AbortSignal, the second otherwise): then the InterruptedError. Work left
   * behind keeps running until the process exits; its eventual failure is dropped.
   */
  race<T>(work: Promise<T>): Promise<T> {
    const interrupted = new Promise<never>((_, reject) => {
      this.rejectRace = reject
      if (this.stopped && (this.count > 1 || !this.claimed)) reject(this.stopped)
    })
    work.catch(() => {})
    return Promise.race([work, interrupted])
  }

  private receive(signal: StopSignal): void {
    this.count++
    const notify = this.options.notify ?? ((m: string) => process.stderr.write(m + '\n'))
    if (this.count === 1) {
      const error = new InterruptedError(signal)
      this.stopped = error
      this.controller.abort(error)
      if (this.claimed) {
        notify(`\n${signal}: ${this.claimed}; ${signal === 'SIGINT' ? 'press Ctrl-C again' : 'send it again'} to stop at once`)
        return
      }
      notify(`\n${signal}: stopping`)
      this.rejectRace?.(error)
      return
    }
    const error = new InterruptedError(signal, `stopped at once by a second ${signal}: outputs and checkpoints already written are complete; the one being written was dropped`)
    this.stopped = error
    notify(`\n${signal}: stopping at once`)
    this.rejectRace?.(error)
    if (this.hardExit) return
    const exit = this.options.exit ?? originalExit
    this.hardExit = setTimeout(() => exit(SIGNAL_EXIT_CODES[signal]), this.options.hardExitMs ?? 2000)
    this.hardExit.unref()
  }
}
