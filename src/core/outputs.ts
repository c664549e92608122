/**
 * The user's files: which outputs codiemb may create, write into or replace, and who is writing
 * where. A command claims each output before its first step (claimOutput) and releases it at the
 * end; the claim is the one place these rules live.
 *
 * Ownership. Every folder codiemb creates as an output carries OUTPUT_MARKER, `.codiemb-output.json`
 * ({format, content, command, codiembVersion, createdAt}); a folder replaced as a whole gets its
 * marker written last into the staged copy, so a staged copy with a marker is complete. Folders
 * written by codiemb before markers existed are recognised by their own records (LEGACY_RECORDS:
 * a trained model's codiemb_training.json, merge.json, a prepare manifest, eval summaries, training
 * checkpoints, quickstart.json) and get a marker the next time codiemb writes into them. Single files
 * carry no marker: the caller recognises its own by their metadata (`recognise`).
 *
 * Policies (OutputPolicy), for what already sits at the path:
 *   nothing, or a folder holding nothing but a marker and temporaries -> claimed;
 *   'replace' (a model, checkpoints, a quickstart run): a codiemb output of the same content is
 *       replaced only with `overwrite`; anything else is refused, `overwrite` or not;
 *   'add' (prepared data, eval results): a codiemb output of the same content is written into;
 *       anything else is refused;
 *   'refresh' (single files): a file codiemb wrote is replaced; another file only with `overwrite`.
 * A file where a folder is expected (or the reverse) is always refused. Refusals are CodiembErrors
 * (exit 2) naming the path, what is there and what to do.
 *
 * Locks (core/output-lock.ts). `.<name>.codiemb-lock` beside the output names the process writing
 * it; a second run on a locked output is refused naming the holder; a stale lock (its process is
 * gone) is taken over. In a multi-process run only rank 0 takes the lock: the others claim with
 * `lock: false`.
 *
 * Temporaries. Files and folders of core/fs-atomic.ts's scheme (`.<name>.<pid>.<hex>.tmp`) left by
 * dead processes, inside the output or beside it, are removed by the claim. A folder replaced as a
 * whole is briefly absent between two renames (fs-atomic swapDirectory); if a run dies there, the
 * claim finds the output missing and its complete copies under temporary names, and restores the
 * newest.
 *
 * Writability. The claim creates a small file where the output will be written (in the folder for
 * 'dir' outputs, beside it otherwise) and removes it, so a read-only (exit 2) or full (exit 1) place
 * fails before the first step, not after the last; describeWriteError words such errors met later.
 */
import {closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeSync} from 'node:fs'
import {basename, dirname, join, resolve, sep} from 'node:path'
import {CodiembError, ExecutionError, fileSystemError} from './errors.js'
import {linkTree, parseTempName, processAlive, removeTemps, swapDirectory, tempSiblingPath, writeDirectoryAtomic, writeFileAtomic} from './fs-atomic.js'
import {LOCK_SUFFIX, lockOutput} from './output-lock.js'
import {packageVersion} from './version.js'

export {lockIsStale, lockOutput, outputLockPath, processStartTime, type LockInfo} from './output-lock.js'

/** The marker file in every output folder codiemb creates. */
export const OUTPUT_MARKER = '.codiemb-output.json'

/**
 * What an output holds. A claim with `overwrite` replaces only an output of the same content, so
 * `train --output data/prepared --overwrite` cannot destroy prepared data.
 */
export type OutputContent = 'model' | 'checkpoints' | 'prepared-data' | 'eval-results' | 'quickstart-run' | 'report' | 'embeddings' | 'ir-examples'

/** 'file': one file replaced whole; 'tree': a folder replaced whole by a staged copy; 'dir': a folder written into in place. */
export type OutputKind = 'file' | 'tree' | 'dir'

/** What an existing output means for the claiming command (see the module docstring). */
export type OutputPolicy = 'replace' | 'add' | 'refresh'

export interface OutputMarker {
  format: 'codiemb-output'
  version: 1
  content: OutputContent
  command: string
  codiembVersion: string
  createdAt: string
}

export interface OutputSpec {
  kind: OutputKind
  content: OutputContent
  policy: OutputPolicy
  /** The command claiming it ("train", "prepare"...), recorded in the lock and the marker. */
  command: string
  /** How the user named the path ("--out", "train.output"), for messages. */
  flag?: string
  /** Replace an existing codiemb output (policy 'replace'), or a file codiemb did not write (policy 'refresh'). */
  overwrite?: boolean
  /** Whether an existing unmarked path is codiemb's: single files by their own metadata (folders: LEGACY_RECORDS). */
  recognise?: (path: string) => boolean | Promise<boolean>
  /** Take the lock (default true). In a multi-process run only rank 0 does; the other ranks pass false. */
  lock?: boolean
  /** A sentence added to the refusal of an existing codiemb output without `overwrite` (e.g. "or --resume a checkpoint in it"). */
  hint?: string
  /**
   * Files the run itself writes (its --events file): they do not make a folder non-empty; inside a
   * folder replaced as a whole (which would drop them) they are refused.
   */
  ownFiles?: string[]
}

/** What was at the path when it was claimed. */
export type OutputFound = 'absent' | 'empty' | 'codiemb' | 'legacy' | 'foreign-file'

export interface OutputClaim {
  readonly path: string
  readonly spec: OutputSpec
  readonly found: OutputFound
  /** Temporaries of dead processes removed by the claim (paths). */
  readonly removedTemps: string[]
  /** A complete copy restored after a run died while replacing the output (its temporary path). */
  readonly restored?: string
  /**
   * Ends the claim: removes the lock (when it is still this claim's). After a failure (`ok: false`) a
   * 'dir' output this claim created and nothing else wrote into is removed, with any parent folders
   * it created, so a failed run leaves no empty output behind. Safe to call more than once.
   */
  release(outcome?: {ok: boolean}): void
}

const LEGACY_RECORDS: Partial<Record<OutputContent, (dir: string) => boolean>> = {
  model: (dir) => existsSync(join(dir, 'codiemb_training.json')) || jsonField(join(dir, 'merge.json'), 'format') === 'codiemb-merge/1',
  checkpoints: (dir) => {
    const entries = readdirSync(dir).filter((n) => !parseTempName(n))
    return entries.length > 0 && entries.every((n) => /^checkpoint-\d+$/.test(n) && existsSync(join(dir, n, 'trainer_state.json')))
  },
  'prepared-data': (dir) => jsonField(join(dir, 'manifest.json'), 'format') === 'codiemb-prepare-manifest',
  'eval-results': (dir) =>
    readdirSync(dir).some((model) => isDir(join(dir, model)) && readdirSync(join(dir, model)).some((rev) => jsonField(join(dir, model, rev, 'summary.json'), 'averages') !== undefined)),
  'quickstart-run': (dir) => existsSync(join(dir, 'quickstart.json')),
}

function jsonField(file: string, field: string): unknown {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)?.[field]
  } catch {
    return undefined
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** The marker's text for an output folder of `content` made by `command`. */
export function outputMarkerText(content: OutputContent, command: string): string {
  const marker: OutputMarker = {format: 'codiemb-output', version: 1, content, command, codiembVersion: packageVersion(), createdAt: new Date().toISOString()}
  return JSON.stringify(marker, null, 1) + '\n'
}

/** Writes (atomically) the marker into the folder `dir`. */
export function writeOutputMarker(dir: string, content: OutputContent, command: string): void {
  writeFileAtomic(join(dir, OUTPUT_MARKER), outputMarkerText(content, command))
}

/** The marker of the folder `dir`, or undefined when it has none (or an unreadable one). */
export function readOutputMarker(dir: string): OutputMarker | undefined {
  const marker = (() => {
    try {
      return JSON.parse(readFileSync(join(dir, OUTPUT_MARKER), 'utf8')) as OutputMarker
    } catch {
      return undefined
    }
  })()
  return marker?.format === 'codiemb-output' ? marker : undefined
}

/**
 * Builds the folder `target` as a whole (fs-atomic writeDirectoryAtomic) with its marker written
 * last into the staged copy: the output appears complete, marked, or not at all.
 */
export function writeOutputDirectory<T>(target: string, content: OutputContent, command: string, fill: (staging: string) => T | Promise<T>): Promise<T> {
  return writeDirectoryAtomic(target, async (staging) => {
    const result = await fill(staging)
    writeOutputMarker(staging, content, command)
    return result
  })
}

/**
 * Replaces the folder `target` with the complete folder `staging` in one swap (fs-atomic
 * swapDirectory), after carrying into `staging` (hard links, linkTree) each entry of the current
 * `target` that `carry(name)` keeps and `staging` does not have (never codiemb's temporaries or
 * marker), and writing the marker last. Readers see the old folder or the new one, never a mixture.
 */
export function publishTree(target: string, staging: string, options: {content: OutputContent; command: string; carry: (name: string) => boolean}): void {
  if (isDir(target))
    for (const name of readdirSync(target)) {
      if (name === OUTPUT_MARKER || parseTempName(name) || !options.carry(name) || existsSync(join(staging, name))) continue
      linkTree(join(target, name), join(staging, name))
    }
  writeOutputMarker(staging, options.content, options.command)
  swapDirectory(staging, target)
}

/** Whether the folder `dir` is a codiemb output of `content`: by its marker, else by the records of earlier versions. */
export function isCodiembOutput(dir: string, content: OutputContent): boolean {
  if (!isDir(dir)) return false
  const marker = readOutputMarker(dir)
  if (marker) return marker.content === content
  return LEGACY_RECORDS[content]?.(dir) ?? false
}

function refuse(message: string, path: string, reason: string): CodiembError {
  return new CodiembError(message, {name: 'OutputError', data: {path, reason}})
}

const CONTENT_WORDS: Record<OutputContent, string> = {
  model: 'a model',
  checkpoints: 'training checkpoints',
  'prepared-data': 'prepared data',
  'eval-results': 'evaluation results',
  'quickstart-run': 'a quickstart run',
  report: 'a report',
  embeddings: 'embeddings',
  'ir-examples': 'IR examples',
}

/** Entries of a folder that count as content: everything but codiemb's temporaries, its marker and `own` files. */
function contentEntries(dir: string, own: string[] = []): string[] {
  return readdirSync(dir).filter((n) => n !== OUTPUT_MARKER && !parseTempName(n) && !own.includes(resolve(dir, n)))
}

/** Decides whether `spec` may claim `path` as it is now; throws the refusal otherwise. */
async function inspect(path: string, spec: OutputSpec): Promise<OutputFound> {
  const name = `${spec.flag ? `${spec.flag} ` : ''}${path}`
  let stat
  try {
    stat = statSync(path)
  } catch {
    return 'absent'
  }
  const wantsFolder = spec.kind !== 'file'
  if (wantsFolder !== stat.isDirectory())
    throw refuse(
      `${name} is ${stat.isDirectory() ? 'a folder' : 'a file'}, not ${wantsFolder ? 'a folder' : 'a file'}: codiemb ${spec.command} writes ${CONTENT_WORDS[spec.content]} there as a ${wantsFolder ? 'folder' : 'file'} and leaves what is there alone; choose another path`,
      path,
      'wrong-type',
    )
  if (!wantsFolder) {
    if (await spec.recognise?.(path)) return 'codiemb'
    if (spec.overwrite) return 'foreign-file'
    throw refuse(`${name} exists and was not written by codiemb; pass --overwrite to replace it, or choose another path`, path, 'foreign')
  }
  const own = (spec.ownFiles ?? []).map((f) => resolve(f))
  const inside = own.find((f) => f.startsWith(path + sep))
  if (inside && spec.kind === 'tree')
    throw refuse(`${inside} is inside ${name}, which codiemb ${spec.command} replaces as a whole: write it elsewhere`, path, 'own-file-inside')
  // Nothing but a marker (a run killed before writing anything) holds nothing to protect.
  if (contentEntries(path, own).length === 0) return 'empty'
  const marker = readOutputMarker(path)
  const legacy = !marker && (LEGACY_RECORDS[spec.content]?.(path) ?? false)
  if (!marker && !legacy)
    throw refuse(
      `${name} is a folder codiemb did not create (it has no ${OUTPUT_MARKER}) and is not empty; codiemb never writes into or replaces such a folder, --overwrite or not: choose another path`,
      path,
      'foreign',
    )
  if (marker && marker.content !== spec.content)
    throw refuse(
      `${name} holds ${CONTENT_WORDS[marker.content]} (written by codiemb ${marker.command}), not ${CONTENT_WORDS[spec.content]}; codiemb ${spec.command} does not write into or replace it: choose another path`,
      path,
      'other-content',
    )
  if (spec.policy === 'replace' && !spec.overwrite) {
    const made = marker ? `by codiemb ${marker.command} on ${marker.createdAt}` : 'by an earlier codiemb'
    throw refuse(
      `${name} already holds ${CONTENT_WORDS[spec.content]} written ${made}; pass --overwrite to replace it${spec.hint ? `, ${spec.hint}` : ''}, or choose another path`,
      path,
      'exists',
    )
  }
  return legacy ? 'legacy' : 'codiemb'
}

/** Removes dead processes' temporaries inside the folder `path` and beside it (of `path` itself or of its lock); returns their paths. */
export function removeDeadTemps(path: string): string[] {
  const dead = (t: {pid: number}) => !processAlive(t.pid)
  const name = basename(path)
  const parent = dirname(path)
  const beside = removeTemps(parent, (t) => (t.target === name || t.target === `.${name}${LOCK_SUFFIX}`) && dead(t)).map((n) => join(parent, n))
  const inside = isDir(path) ? removeTemps(path, dead).map((n) => join(path, n)) : []
  return [...beside, ...inside]
}

/**
 * When `path` is missing but complete copies of it (marked or recognised) sit beside it under
 * temporary names of dead processes, a run died between the two renames of a replacement: restores
 * the newest (the staged copy, whose marker is newer than the old output's). Returns its old name.
 */
function restoreInterruptedSwap(path: string, content: OutputContent): string | undefined {
  if (existsSync(path)) return undefined
  const parent = dirname(path)
  if (!isDir(parent)) return undefined
  const candidates = readdirSync(parent)
    .map((n) => ({n, temp: parseTempName(n)}))
    .filter(({n, temp}) => temp?.target === basename(path) && !processAlive(temp.pid) && isCodiembOutput(join(parent, n), content))
    .map(({n}) => ({path: join(parent, n), createdAt: readOutputMarker(join(parent, n))?.createdAt ?? ''}))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  if (!candidates.length) return undefined
  renameSync(candidates[0]!.path, path)
  return candidates[0]!.path
}

/**
 * Creates (and removes) a small temporary file where `output` will be written (inside it for a 'dir'
 * output, beside it otherwise; named in the temporary scheme): fails now if nothing can be written there.
 */
function probeWritable(output: string, inside: boolean, command: string): void {
  const probe = tempSiblingPath(inside ? join(output, 'write-probe') : output)
  try {
    const fd = openSync(probe, 'wx')
    try {
      writeSync(fd, Buffer.alloc(4096))
    } finally {
      closeSync(fd)
    }
  } catch (error) {
    rmSync(probe, {force: true})
    throw describeWriteError(error, [output], command) ?? error
  }
  unlinkSync(probe)
}

const NO_SPACE = new Set(['ENOSPC', 'EDQUOT', 'EFBIG'])
const NOT_WRITABLE = new Set(['EROFS', 'EACCES', 'EPERM'])

/**
 * A filesystem error met while writing `outputs`, as the error codiemb reports: no space (ENOSPC,
 * EDQUOT, EFBIG) is an ExecutionError (exit 1: the request was fine, the disk was not); a read-only
 * or forbidden place (EROFS, EACCES, EPERM) a CodiembError (exit 2: choose another output). Both name
 * the outputs and say that what was there is unchanged (every write is atomic). Undefined for other errors.
 */
export function describeWriteError(error: unknown, outputs: string[], command: string): CodiembError | undefined {
  const e = error as NodeJS.ErrnoException
  if (!e || typeof e.code !== 'string' || error instanceof CodiembError) return undefined
  // An error naming a path outside the outputs (an input that cannot be read, the --events file) is not about them.
  const about = (o: string) => {
    if (e.path === o || e.path!.startsWith(o + sep)) return true
    const beside = dirname(e.path!) === dirname(o) ? (parseTempName(basename(e.path!))?.target ?? basename(e.path!)) : undefined
    return beside === basename(o) || beside === `.${basename(o)}${LOCK_SUFFIX}`
  }
  const elsewhere = typeof e.path === 'string' && !outputs.some(about)
  if (elsewhere && !NO_SPACE.has(e.code)) return undefined
  const where = elsewhere ? e.path! : outputs.join(', ')
  const detail = `${e.code}: ${e.message.replace(/^\w+: /, '')}`
  if (NO_SPACE.has(e.code)) {
    const what = e.code === 'EFBIG' ? `the file size limit (ulimit -f) stopped writing ${where}` : `no space left to write ${where}`
    return new ExecutionError(`codiemb ${command}: ${what} (${detail}); nothing was half-written and what was there is unchanged: free some space (or choose another path) and run again`, {name: 'OutputError', data: {outputs, code: e.code}, cause: error})
  }
  if (NOT_WRITABLE.has(e.code))
    return new CodiembError(`codiemb ${command}: cannot write ${where}: ${e.code === 'EROFS' ? 'the file system is read-only' : 'permission denied'} (${detail}); choose a writable path`, {name: 'OutputError', data: {outputs, code: e.code}, cause: error})
  return undefined
}

const active = new Set<OutputClaim>()
let exitHook = false

/** Releases every claim this process still holds (for signal handlers; also run on process exit). */
export function releaseAllOutputs(outcome: {ok: boolean} = {ok: false}): void {
  for (const claim of [...active]) claim.release(outcome)
}

/** The absolute path of an output; a symbolic link to a folder or file resolves to its target, which is what gets written. */
export function resolveOutputPath(path: string): string {
  const absolute = resolve(path)
  return existsSync(absolute) && lstatSync(absolute).isSymbolicLink() ? realpathSync(absolute) : absolute
}

/** Claims `path` for a command as the module docstring says; see OutputClaim for what it returns. */
export async function claimOutput(path: string, spec: OutputSpec): Promise<OutputClaim> {
  const target = resolveOutputPath(path)
  const parent = dirname(target)
  let firstCreated: string | undefined
  let existing = parent
  for (; !existsSync(existing) && dirname(existing) !== existing; existing = dirname(existing)) firstCreated = existing
  try {
    // mkdir -p says EEXIST when a part of the path is a file; ENOTDIR names the problem.
    if (!statSync(existing).isDirectory()) throw Object.assign(new Error(`ENOTDIR: ${target}`), {code: 'ENOTDIR', syscall: 'mkdir', path: target})
    mkdirSync(parent, {recursive: true})
  } catch (error) {
    const failed = (error as NodeJS.ErrnoException).path ?? parent
    throw fileSystemError(error) ?? describeWriteError(error, [failed], spec.command) ?? refuse(`cannot create ${parent} for ${target}: ${(error as Error).message}`, target, 'parent')
  }
  const removeCreatedParents = () => {
    if (!firstCreated) return
    for (let p = parent; p.length >= firstCreated.length; p = dirname(p)) {
      try {
        rmdirSync(p)
      } catch {
        break
      }
    }
  }
  let unlock = () => {}
  let created = false
  let marked = false
  try {
    const locked = spec.lock !== false
    if (locked) unlock = lockOutput(target, spec.command)
    // Restoring a missing output is for the run holding the lock (never two restoring at once).
    const restored = spec.kind === 'file' || !locked ? undefined : restoreInterruptedSwap(target, spec.content)
    const found = await inspect(target, spec)
    const removedTemps = removeDeadTemps(target)
    if (spec.kind === 'dir') {
      // recursive: runs without the lock (other ranks, other models' evaluations) may create it together
      if (found === 'absent') created = mkdirSync(target, {recursive: true}) !== undefined
      probeWritable(target, true, spec.command)
      if (found !== 'codiemb') {
        writeOutputMarker(target, spec.content, spec.command)
        marked = found === 'empty'
      }
    } else {
      probeWritable(target, false, spec.command)
    }
    let released = false
    const claim: OutputClaim = {
      path: target,
      spec,
      found,
      removedTemps,
      restored,
      release(outcome = {ok: true}) {
        if (released) return
        released = true
        active.delete(claim)
        // A failed run takes back what its claim added to a folder nothing else was written into.
        if (!outcome.ok && (created || marked)) {
          try {
            if (contentEntries(target).length === 0) rmSync(created ? target : join(target, OUTPUT_MARKER), {recursive: true, force: true})
          } catch {
            /* already gone */
          }
        }
        unlock()
        if (!outcome.ok) removeCreatedParents()
      },
    }
    active.add(claim)
    if (!exitHook) {
      exitHook = true
      process.once('exit', () => releaseAllOutputs({ok: process.exitCode === undefined || process.exitCode === 0}))
    }
    return claim
  } catch (error) {
    if (created) rmSync(target, {recursive: true, force: true})
    unlock()
    removeCreatedParents()
    throw describeWriteError(error, [target], spec.command) ?? error
  }
}
