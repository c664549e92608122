import {closeSync, createWriteStream, mkdirSync, openSync, type WriteStream} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {Command, Flags, type Interfaces} from '@oclif/core'
import type {Registry} from '../registry/registry.js'
import type {BackendSelection} from '../tensor/backend.js'
import {CodiembError, exitCodeOf, fileSystemError} from '../core/errors.js'
import type {ProgressEvent} from '../core/events.js'
import {ProgressReporter} from './progress.js'
import {SignalStop} from './signals.js'
import {CommandOutputs} from './outputs.js'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof CodiembCommand)['baseFlags'] & T['flags']>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** One line of `--events` NDJSON (without its `time`): one of the events of src/core/events.ts. */
export type {ProgressEvent} from '../core/events.js'

/** A task for `tasks()`: a subset of listr2's task shape, kept small so commands stay thin. */
export interface CodiembTask<Ctx = unknown> {
  title: string
  task: (ctx: Ctx, task: {output: string; title: string}) => Promise<unknown> | unknown
  skip?: () => boolean | string
}

/**
 * The base of every codiemb command. Subclasses implement `exec()` and return their result; this
 * class turns it into the `--json` envelope `{"status":0,"result":…,"warnings":[…]}`, maps errors to
 * exit codes (2 usage/config/bad input, 1 other) and envelopes `{"status":N,"name","message","exitCode"}`,
 * writes `--events` NDJSON (to a file, or to standard output without --json: standard output
 * under --json is the envelope alone), renders listr2 task trees (default renderer on a TTY, simple renderer in
 * CI or when piped, nothing under --json), and gives access to the registry and the tensor backend.
 * SIGINT and SIGTERM end a command with exit code 130 / 143 through the same catch and finally
 * (src/cli/signals.ts): at once, or, for a command that asked for `stopSignal()`, when it has stopped.
 */
export abstract class CodiembCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  /** --backend / --device, for commands that run tensors. */
  static backendFlags = {
    backend: Flags.string({
      summary: 'Tensor backend: auto, cpu, tensorflow, torch (or a plugin backend).',
      env: 'CODIEMB_BACKEND',
      default: 'auto',
      helpGroup: 'TENSOR',
    }),
    device: Flags.string({summary: 'Device for backends that have several, e.g. cpu, cuda, cuda:1.', helpGroup: 'TENSOR'}),
    precision: Flags.string({
      summary: 'Matmul precision (torch backend): fp32; tf32 (CUDA TF32 tensor cores); bf16 (bfloat16 products, float32 loss and trained weights; a bf16 checkpoint stays bf16 in memory and on save).',
      options: ['fp32', 'tf32', 'bf16'],
      default: 'fp32',
      helpGroup: 'TENSOR',
    }),
  }

  /** --events, for long-running commands. */
  static progressFlags = {
    events: Flags.string({summary: 'Write NDJSON progress events to FILE, or to standard output with "-".', helpValue: 'FILE|-'}),
  }

  /**
   * The flags of a command that runs an encoder over inputs (embed, eval, mine): the tensor flags,
   * --events, and the required -m/--model DIR, whose summary says what the command does with it.
   */
  static encoderFlags(modelSummary: string) {
    return {
      ...CodiembCommand.backendFlags,
      ...CodiembCommand.progressFlags,
      model: Flags.string({char: 'm', summary: modelSummary, required: true, helpValue: 'DIR'}),
    }
  }

  protected flags!: CommandFlags<T>
  protected args!: CommandArgs<T>
  protected readonly warnings: string[] = []
  /** The outputs this run claims (cli/outputs.ts): released when it ends, named in its write errors. */
  protected readonly outputs = new CommandOutputs(
    (this.id ?? this.constructor.name.replace(/([a-z])([A-Z])/g, '$1 $2')).replace(/:/g, ' ').toLowerCase(),
    (w) => this.addWarning(w),
    () => [(this.flags as {events?: string} | undefined)?.events ?? '-'].filter((e) => e !== '-'),
  )
  private eventStream?: WriteStream | NodeJS.WriteStream
  private registryPromise?: Promise<Registry>
  private signals?: SignalStop

  /** The command's work. Its return value is the `result` of the --json envelope. */
  protected abstract exec(): Promise<unknown>

  public override async init(): Promise<void> {
    await super.init()
    this.signals = new SignalStop().install()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof CodiembCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as CommandFlags<T>
    this.args = args as CommandArgs<T>
    // In a job (torchrun's variables) the ranks share one command line: rank 0 alone writes --events.
    const otherRank = !!process.env.WORLD_SIZE && Number(process.env.RANK) > 0
    const events = otherRank ? undefined : (this.flags as {events?: string}).events
    if (events === '-' && this.jsonEnabled())
      throw new CodiembError('--events - and --json both write to standard output, which --json keeps for its one JSON document: give --events FILE (a path, or /dev/stderr)', {
        exitCode: 2,
        name: 'UsageError',
      })
    if (events && events !== '-') {
      // Create the folder (a user's `--events runs/x.ndjson` on a fresh clone); fail as a usage error
      // naming the path, never with an unhandled stream error later.
      try {
        mkdirSync(dirname(resolve(events)), {recursive: true})
        closeSync(openSync(events, 'a'))
      } catch (error) {
        throw new CodiembError(`--events ${events}: cannot write there: ${(error as Error).message}`, {exitCode: 2, name: 'UsageError'})
      }
    }
    if (events) this.eventStream = events === '-' ? process.stdout : createWriteStream(events, {flags: 'a'})
  }

  public async run(): Promise<unknown> {
    const result = await this.signals!.race(this.exec().catch((error) => Promise.reject(this.outputs.explain(error))))
    return result === undefined ? {} : result
  }

  /**
   * The AbortSignal a command hands its engine to stop cooperatively on SIGINT/SIGTERM (aborted
   * with an InterruptedError). Asking for it means the command is waited for after the first
   * signal; `doing` says what it does meanwhile, e.g. "writing a checkpoint of the current step".
   */
  protected stopSignal(doing: string): AbortSignal {
    return this.signals!.claim(doing)
  }

  /** The registry of built-in and plugin entries; registry warnings join this command's warnings. */
  protected registry(): Promise<Registry> {
    this.registryPromise ??= import('../registry/load.js').then(async ({loadRegistry}) => {
      const registry = await loadRegistry(this.config)
      for (const w of registry.warnings) this.addWarning(w)
      return registry
    })
    return this.registryPromise
  }

  /** Selects and activates the tensor backend from --backend/--device/--precision. */
  protected async activateBackend(): Promise<BackendSelection> {
    const f = this.flags as {backend?: string; device?: string; precision?: 'fp32' | 'tf32' | 'bf16'}
    const {selectBackend} = await import('../tensor/backend.js')
    const selection = await selectBackend(await this.registry(), f.backend ?? 'auto', {device: f.device, precision: f.precision})
    this.info(`backend: ${selection.name} — ${selection.reason}`)
    this.emit({type: 'backend', name: selection.name, reason: selection.reason})
    return selection
  }

  /** Writes one NDJSON event when --events is given (with a timestamp). */
  protected emit(event: ProgressEvent): void {
    if (!this.eventStream) return
    this.eventStream.write(JSON.stringify({time: new Date().toISOString(), ...event}) + '\n')
  }

  /**
   * Reports engine events: each to --events (progress counters at most once a second), and as the
   * output line of the listr task given to `into(task)`.
   */
  protected reporter(): ProgressReporter {
    return new ProgressReporter((event) => this.emit(event))
  }

  /** Human-readable output; silent under --json or when events stream to stdout. */
  protected info(message: string): void {
    if (!this.quiet()) this.log(message)
  }

  protected addWarning(message: string): void {
    this.warnings.push(message)
    if (!this.jsonEnabled()) this.logToStderr(`Warning: ${message}`)
  }

  /** Runs tasks in order with listr2 (renderer chosen for the terminal; silent under --json). */
  protected async tasks<Ctx extends object>(tasks: CodiembTask<Ctx>[], ctx: Ctx = {} as Ctx): Promise<Ctx> {
    const {Listr} = await import('listr2')
    const renderer = this.quiet() ? 'silent' : process.stdout.isTTY && !process.env.CI ? 'default' : 'simple'
    const list = new Listr<Ctx>(
      tasks.map((t) => ({title: t.title, skip: t.skip, task: async (c: Ctx, task) => {
          await t.task(c, task)
        }})),
      // listr2's own SIGINT listener would exit 127 at once: signals are src/cli/signals.ts's.
      {renderer, rendererOptions: {collapseSubtasks: false}, exitOnError: true, registerSignalListeners: false, ctx} as never,
    )
    return list.run(ctx)
  }

  private quiet(): boolean {
    return this.jsonEnabled() || this.eventStream === process.stdout
  }

  protected override toSuccessJson(result: unknown): unknown {
    return {status: 0, result, warnings: this.warnings}
  }

  protected override toErrorJson(err: unknown): unknown {
    return errorEnvelope(err, this.warnings)
  }

  protected override async catch(error: Interfaces.CommandError): Promise<unknown> {
    // A file-system error about a path (read-only output, a file where a folder belongs) is the user's to fix: exit 2, the path named.
    const err = (fileSystemError(error) as Interfaces.CommandError | undefined) ?? error
    const exitCode = exitCodeOf(err)
    process.exitCode = exitCode
    const message = err.message || String(err)
    // the last --events line of a failed run, with --json too
    this.emit({type: 'error', name: err.name || 'Error', message, exitCode})
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(err))
      return
    }
    const chalk = await (await import('./colour.js')).colours()
    this.logToStderr(`${chalk.red('Error:')} ${message}`)
    if (process.env.CODIEMB_DEBUG && err.stack) this.logToStderr(err.stack)
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    try {
      this.outputs.release(err === undefined)
      const stream = this.eventStream
      if (stream && stream !== process.stdout) await new Promise<void>((resolve) => (stream as WriteStream).end(resolve))
      return await super.finally(err)
    } finally {
      // Until here a second signal still means "stop at once"; after, Node's default applies.
      this.signals?.uninstall()
    }
  }
}

/**
 * The --json answer for a failed run: `{status, name, message, exitCode, data?, warnings}`. Shared
 * by every command and by bin/run.js for errors raised before a command runs (an unknown command).
 */
export function errorEnvelope(err: unknown, warnings: readonly string[] = []): Record<string, unknown> {
  const error = fileSystemError(err) ?? err
  const e = error as Error & {data?: unknown}
  const exitCode = exitCodeOf(error)
  return {
    status: exitCode,
    name: e?.name ?? 'Error',
    message: e?.message ?? String(error),
    exitCode,
    ...(e?.data === undefined ? {} : {data: e.data}),
    warnings: [...warnings],
  }
}

export {CodiembError}
