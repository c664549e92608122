/**
 * How commands claim their outputs: the one helper between the commands and core/outputs.ts.
 *
 * Every command that writes an output claims it through `this.outputs.claim(path, OUTPUTS.x, …)`
 * before its first step; the base command releases every claim when the command ends (a failed
 * command's empty new folders are removed) and turns a filesystem error met while writing (no space,
 * read-only, forbidden) into a message naming the outputs (`explain`). OUTPUTS lists what each kind
 * of output is and how an existing one is treated, and recognises the single files codiemb wrote
 * by their own metadata: Arrow files by their `codiemb.kind` schema metadata, reports by their
 * generator meta tag (or, from earlier versions, the `data-charts-expected` attribute).
 */
import {closeSync, mkdirSync, openSync, readSync, rmdirSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {Flags} from '@oclif/core'
import {claimOutput, describeWriteError, lockOutput, removeDeadTemps, type OutputClaim, type OutputSpec} from '../core/outputs.js'

/** `--overwrite`, for the commands that write output folders. */
export const overwriteFlag = {
  overwrite: Flags.boolean({
    summary: 'Replace an existing output that codiemb wrote (a folder codiemb did not create is never replaced).',
    helpGroup: 'OUTPUT',
  }),
}

/** `--overwrite`, for the commands that write one file (a file codiemb wrote is replaced without it). */
export const overwriteFileFlag = {
  overwrite: Flags.boolean({
    summary: 'Replace an existing --out file that codiemb did not write (one it wrote is replaced without this flag).',
    helpGroup: 'OUTPUT',
  }),
}

/** The first bytes of a file (a header to recognise it by), or '' when it cannot be read. */
function head(path: string, bytes: number): string {
  try {
    const fd = openSync(path, 'r')
    try {
      const buffer = Buffer.alloc(bytes)
      return buffer.toString('utf8', 0, readSync(fd, buffer, 0, bytes, 0))
    } finally {
      closeSync(fd)
    }
  } catch {
    return ''
  }
}

/** Whether `path` is an Arrow file codiemb wrote (its schema metadata has codiemb.kind). */
export async function isCodiembArrowFile(path: string): Promise<boolean> {
  const {META, readArrowMeta} = await import('../io/arrow-records.js')
  try {
    return (await readArrowMeta(path)).metadata[META.kind] !== undefined
  } catch {
    return false
  }
}

/** Whether `path` is a report codiemb wrote: its generator tag, or the chart counter reports of earlier versions carry. */
export async function isCodiembReport(path: string): Promise<boolean> {
  const {REPORT_GENERATOR} = await import('../eval/report.js')
  const text = head(path, 4096)
  return text.includes(REPORT_GENERATOR) || (text.startsWith('<!doctype html>') && /<body data-charts-expected="\d+">/.test(text))
}

type OutputType = Omit<OutputSpec, 'command' | 'overwrite' | 'flag' | 'lock' | 'hint'>

/** Each kind of output a command writes, and how an existing one is treated (core/outputs.ts OutputPolicy). */
export const OUTPUTS = {
  /** A model folder (train's output, merge, model init), replaced as a whole. */
  model: {kind: 'tree', content: 'model', policy: 'replace'},
  /** Training checkpoints: a fresh run replaces them (--overwrite), a resumed run adds to them (policy 'add'). */
  checkpoints: {kind: 'dir', content: 'checkpoints', policy: 'replace'},
  /** Prepared data: a run adds datasets (replacing one needs --overwrite: data/prepare.ts). */
  prepared: {kind: 'tree', content: 'prepared-data', policy: 'add'},
  /** A results folder: each model's results are added beside the others'. */
  results: {kind: 'dir', content: 'eval-results', policy: 'add'},
  quickstart: {kind: 'dir', content: 'quickstart-run', policy: 'replace'},
  report: {kind: 'file', content: 'report', policy: 'refresh', recognise: isCodiembReport},
  embeddings: {kind: 'file', content: 'embeddings', policy: 'refresh', recognise: isCodiembArrowFile},
  irExamples: {kind: 'file', content: 'ir-examples', policy: 'refresh', recognise: isCodiembArrowFile},
} satisfies Record<string, OutputType>

/** The outputs one command run has claimed (and the parts of them it has locked). */
export class CommandOutputs {
  /** Claimed or locked paths, each with what ends its claim. */
  private readonly held: {path: string; release: (ok: boolean) => void}[] = []

  /**
   * `command` as users type it ("train", "model init"); `warn` reports what a claim cleaned up or
   * restored; `ownFiles` lists the files the run writes besides its outputs (its --events file).
   */
  constructor(
    private readonly command: string,
    private readonly warn: (message: string) => void,
    private readonly ownFiles: () => string[] = () => [],
  ) {}

  /**
   * Claims `path` as an output of `type`: refused (exit 2, naming it) when something codiemb must not
   * touch is there, locked for this run, its dead temporaries removed, checked writable.
   */
  async claim(path: string, type: OutputType, options: Partial<Pick<OutputSpec, 'overwrite' | 'flag' | 'lock' | 'hint' | 'policy'>> = {}): Promise<OutputClaim> {
    const claim = await claimOutput(path, {...type, ...options, command: this.command, ownFiles: this.ownFiles()})
    this.held.push({path: claim.path, release: (ok) => claim.release({ok})})
    if (claim.restored) this.warn(`${claim.path} was missing after a run died while replacing it; restored its complete copy ${claim.restored}`)
    if (claim.removedTemps.length) this.warn(`removed ${claim.removedTemps.length} temporary file(s) left by interrupted runs: ${claim.removedTemps.join(', ')}`)
    return claim
  }

  /**
   * Locks `path` for this run without claiming it: a part of a claimed folder that several runs may
   * write side by side, such as one model's results in a results folder.
   */
  lock(path: string): void {
    const target = resolve(path)
    const created = mkdirSync(dirname(target), {recursive: true})
    const unlock = lockOutput(target, this.command)
    // After a failure, the folders made to hold the lock go again if nothing was written into them.
    const release = (ok: boolean) => {
      unlock()
      for (let p = dirname(target); !ok && created && p.length >= created.length; p = dirname(p)) {
        try {
          rmdirSync(p)
        } catch {
          break
        }
      }
    }
    this.held.push({path: target, release})
    const removed = removeDeadTemps(target)
    if (removed.length) this.warn(`removed ${removed.length} temporary file(s) left by interrupted runs: ${removed.join(', ')}`)
  }

  /** The paths claimed or locked so far. */
  get paths(): string[] {
    return this.held.map((h) => h.path)
  }

  /** Releases every claim and lock (latest first); `ok: false` after a failure. */
  release(ok: boolean): void {
    for (const h of this.held.splice(0).reverse()) h.release(ok)
  }

  /** A filesystem error met while writing the claimed outputs, as a message naming them; other errors as they are. */
  explain(error: unknown): unknown {
    return (this.held.length && describeWriteError(error, this.paths, this.command)) || error
  }
}
