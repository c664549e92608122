/**
 * Atomic replacement of files and directories: whatever is written appears under its final name
 * complete or not at all, and the previous version stays in place until the new one is complete.
 *
 * Everything is first written under a temporary sibling of its target, and one naming scheme is
 * used for all of them:
 *
 *     <dir>/.<name>.<pid>.<8 hex digits>.tmp      for the target <dir>/<name>
 *
 * - same directory as the target: rename(2) within one filesystem is atomic;
 * - leading dot: listings and globs that skip dot files never see a half-written output;
 * - the writer's pid: a later run can tell the leftover of a dead writer (garbage) from the
 *   temporary of a writer still at work (removeTemps with processAlive);
 * - random digits: writers in one process (or a reused pid) never collide, and files are opened
 *   with O_EXCL so a collision would fail instead of sharing a file.
 *
 * A crash can leave such a temporary behind, never a partial file under a final name. fsync is
 * optional (`{fsync: true}`): without it a write is atomic against process crashes; with it the
 * data also reaches the disk before the rename, so a power loss cannot expose an empty file.
 *
 * The process keeps a list of its live temporaries (created, not yet committed, aborted or
 * discarded) and removes them when it exits, whatever the path to the exit: a CLI stopped at once
 * by a second Ctrl-C, or one exiting while an abandoned engine is still writing, leaves none behind.
 * Only SIGKILL (or a power loss) leaves one, and the pid in its name marks it as garbage.
 */
import {randomBytes} from 'node:crypto'
import {closeSync, copyFileSync, existsSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {CodiembError} from './errors.js'
import {parseTempName, type TempName} from './temp-names.js'

export {parseTempName, type TempName} from './temp-names.js'


/** A fresh temporary path beside `target`, in the scheme above (nothing is created). */
export function tempSiblingPath(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
}

/** This process's temporaries that are neither committed nor removed yet. */
const liveTemps = new Set<string>()
let sweepOnExit = false

/** Records a temporary this process created; the first one installs the sweep on exit. */
function track(path: string): void {
  liveTemps.add(path)
  if (sweepOnExit) return
  sweepOnExit = true
  process.on('exit', removeLiveTemps)
}

/**
 * Removes every live temporary of this process (synchronously, so it can run in an `exit`
 * listener, where it is installed) and returns their paths. Callers other than the exit sweep:
 * tests, and an embedder that stops its own process by other means.
 */
export function removeLiveTemps(): string[] {
  const removed = [...liveTemps]
  for (const path of removed) {
    try {
      rmSync(path, {recursive: true, force: true})
    } catch {
      // best effort: the next run's removeTemps finds it by its dead pid
    }
    liveTemps.delete(path)
  }
  return removed
}

/** This process's live temporaries (tests). */
export function liveTempPaths(): string[] {
  return [...liveTemps]
}

/** Removes a temporary this process created (a staging folder it is done with) and stops tracking it. */
export function discardTemp(path: string): void {
  rmSync(path, {recursive: true, force: true})
  liveTemps.delete(path)
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Removes the temporaries (files or directories) directly in `dir` that `select` picks, e.g. those
 * of dead processes or those of one kind of output. Returns the names removed.
 */
export function removeTemps(dir: string, select: (temp: TempName) => boolean): string[] {
  if (!existsSync(dir)) return []
  const removed: string[] = []
  for (const name of readdirSync(dir)) {
    const temp = parseTempName(name)
    if (!temp || !select(temp)) continue
    rmSync(join(dir, name), {recursive: true, force: true})
    removed.push(name)
  }
  return removed
}

export interface CommitOptions {
  /** Flush the data to disk before renaming (durable across power loss, not only atomic). */
  fsync?: boolean
}

/** One positioned write is limited to 2 GiB; larger buffers go in 1 GiB pieces. */
const MAX_WRITE = 1 << 30

/**
 * A file written under a temporary sibling of `path` and renamed over `path` by commit(). Until
 * then `path` is untouched; abort() (or a failed commit) deletes the temporary. Writes are
 * synchronous appends, so a writer's memory is bounded by what it hands over per call.
 */
export class AtomicFile {
  private state: 'open' | 'committed' | 'aborted' = 'open'
  /** Whether `fd` was closed (tracked so it is never closed twice: the number may be reused by then). */
  private closed = false

  private constructor(
    readonly path: string,
    readonly tempPath: string,
    private readonly fd: number,
  ) {}

  /** Creates the temporary file (exclusively) beside `path`, starting with `head` when given; the directory must exist. */
  static create(path: string, head?: string | Uint8Array): AtomicFile {
    const tempPath = tempSiblingPath(path)
    const file = new AtomicFile(path, tempPath, openSync(tempPath, 'wx'))
    track(tempPath)
    if (head !== undefined) {
      // A file whose first bytes cannot be written never exists for the caller: nothing to abort later.
      try {
        file.write(head)
      } catch (error) {
        file.abort()
        throw error
      }
    }
    return file
  }

  /** Appends all of `data`. */
  write(data: string | Uint8Array): void {
    if (this.state !== 'open') throw new Error(`${this.path}: write after the file was ${this.state}`)
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    let done = 0
    while (done < bytes.byteLength) done += writeSync(this.fd, bytes, done, Math.min(bytes.byteLength - done, MAX_WRITE))
  }

  /** Closes the temporary (after fsync when asked) and renames it to `path`; on failure it is deleted. */
  commit(options: CommitOptions = {}): void {
    if (this.state !== 'open') throw new Error(`${this.path}: commit after the file was ${this.state}`)
    try {
      if (options.fsync) fsyncSync(this.fd)
      this.close()
      renameSync(this.tempPath, this.path)
      liveTemps.delete(this.tempPath)
      this.state = 'committed'
    } catch (error) {
      this.abort()
      throw error
    }
  }

  /** Discards the temporary; `path` is left as it was. Safe to call more than once; does nothing after commit. */
  abort(): void {
    if (this.state !== 'open') return
    this.state = 'aborted'
    try {
      this.close()
    } catch {
      // a failed close does not matter: the temporary is deleted
    }
    discardTemp(this.tempPath)
  }

  private close(): void {
    if (this.closed) return
    this.closed = true
    closeSync(this.fd)
  }
}

/** Writes `data` to `path` atomically: the previous content stays until the new one is complete. */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: CommitOptions = {}): void {
  AtomicFile.create(path, data).commit(options)
}

/**
 * Creates an empty directory under a fresh temporary name beside `target` (creating `target`'s
 * parent) and returns its path; it is live (removed on exit) until discardTemp or writeDirectoryAtomic's swap.
 */
export function createTempSiblingDir(target: string): string {
  mkdirSync(dirname(target), {recursive: true})
  const dir = tempSiblingPath(target)
  mkdirSync(dir)
  track(dir)
  return dir
}

/**
 * Moves the complete directory `staged` to `target`. An existing `target` is first renamed aside
 * to a temporary sibling and removed only once `staged` is in place; if that second rename fails,
 * the old directory is put back. Two directories cannot be exchanged in one step, so between the
 * two renames `target` is briefly absent: a crash there leaves the old version under its temporary
 * name, never a partial one under `target`. A file at `target` is never replaced (CodiembError).
 */
export function swapDirectory(staged: string, target: string): void {
  if (!existsSync(target)) {
    renameSync(staged, target)
    return
  }
  if (!statSync(target).isDirectory()) throw new CodiembError(`${target} is a file, not a folder: it is not replaced by one`, {name: 'OutputError'})
  const aside = tempSiblingPath(target)
  renameSync(target, aside)
  try {
    renameSync(staged, target)
  } catch (error) {
    renameSync(aside, target)
    throw error
  }
  rmSync(aside, {recursive: true, force: true})
}

/**
 * Removes `path` (a file or directory) from its name at once: renamed to a temporary sibling, then
 * deleted. A kill while a large directory is being deleted leaves a temporary, never a half-deleted
 * directory under the name (an older checkpoint that no longer loads). Does nothing when `path` is absent.
 */
export function removeAtomic(path: string): void {
  if (!existsSync(path)) return
  const aside = tempSiblingPath(path)
  renameSync(path, aside)
  rmSync(aside, {recursive: true, force: true})
}

/**
 * Builds the directory `target` atomically: `fill` writes into a fresh temporary sibling, which
 * then replaces `target` (swapDirectory). If `fill` or the swap fails, the temporary is removed and
 * `target` is as it was. Returns what `fill` returns. A `target` that is a symbolic link to a
 * directory stays a link: the directory it points to is the one replaced.
 */
export async function writeDirectoryAtomic<T>(target: string, fill: (staging: string) => T | Promise<T>): Promise<T> {
  if (existsSync(target) && lstatSync(target).isSymbolicLink()) target = realpathSync(target)
  const staging = createTempSiblingDir(target)
  try {
    const result = await fill(staging)
    swapDirectory(staging, target)
    liveTemps.delete(staging)
    return result
  } catch (error) {
    discardTemp(staging)
    throw error
  }
}

/**
 * Recreates the tree `src` at `dst` (which must not exist) with hard links to its files, so that a
 * staged directory carries the untouched parts of the one it replaces without copying their bytes.
 * Files are copied where a link is impossible (another file system, no link support); symbolic
 * links are recreated as links. The two trees may share files because codiemb never writes into a
 * file in place: it replaces files whole.
 */
export function linkTree(src: string, dst: string): void {
  const stat = lstatSync(src)
  if (stat.isSymbolicLink()) {
    symlinkSync(readlinkSync(src), dst)
  } else if (stat.isDirectory()) {
    mkdirSync(dst)
    for (const name of readdirSync(src)) linkTree(join(src, name), join(dst, name))
  } else {
    try {
      linkSync(src, dst)
    } catch {
      copyFileSync(src, dst)
    }
  }
}
