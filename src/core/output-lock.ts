/**
 * The lock of an output (core/outputs.ts claims outputs with it): `.<name>.codiemb-lock` beside the
 * output, so that a folder replaced as a whole does not take its lock along, holding {pid, host,
 * command, output, startedAt, procStart, nonce}.
 *
 * A lock is created complete or not at all: written under a temporary name, then hard-linked to its
 * final name, which fails when a lock is already there (two runs starting together: one wins). A
 * lock is stale when its host is this host and its process is gone, or its pid now belongs to a
 * process started at another time (the start time in /proc, where there is one). Locks of other
 * hosts (a shared file system) cannot be judged and are never taken over.
 *
 * In a multi-process run only one process (rank 0) locks an output; the others claim it with
 * `lock: false` (OutputSpec) and rely on rank 0's lock.
 */
import {closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync} from 'node:fs'
import {randomBytes} from 'node:crypto'
import {hostname} from 'node:os'
import {basename, dirname, join} from 'node:path'
import {CodiembError} from './errors.js'
import {processAlive, tempSiblingPath, writeFileAtomic} from './fs-atomic.js'

export const LOCK_SUFFIX = '.codiemb-lock'

/** The lock file of an output: beside it, so a folder replaced as a whole does not take its lock along. */
export function outputLockPath(path: string): string {
  return join(dirname(path), `.${basename(path)}${LOCK_SUFFIX}`)
}

export interface LockInfo {
  pid: number
  host: string
  command: string
  output: string
  startedAt: string
  /** The process's start time (Linux /proc), so a lock whose pid was reused by another process reads as stale. */
  procStart?: string
  nonce: string
}

/** The start time of process `pid` in clock ticks since boot (Linux), or undefined where unknown. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

function readLock(file: string): LockInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as LockInfo
    return typeof info?.pid === 'number' && typeof info.host === 'string' ? info : undefined
  } catch {
    return undefined
  }
}

/** Whether a lock's process is known to be gone (only a lock of this host can be judged). */
export function lockIsStale(info: LockInfo): boolean {
  if (info.host !== hostname()) return false
  if (!processAlive(info.pid)) return true
  const now = processStartTime(info.pid)
  return info.procStart !== undefined && now !== undefined && now !== info.procStart
}

/**
 * Creates `file` holding `text` only if no file is there, complete or not at all: written aside,
 * then hard-linked. Where hard links are not supported, an exclusive create and one write.
 */
function createExclusive(file: string, text: string): boolean {
  const temp = tempSiblingPath(file)
  writeFileAtomic(temp, text)
  try {
    linkSync(temp, file)
    return true
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error
  } finally {
    rmSync(temp, {force: true})
  }
  let fd: number
  try {
    fd = openSync(file, 'wx')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  }
  try {
    writeSync(fd, text)
  } finally {
    closeSync(fd)
  }
  return true
}

/**
 * Takes the lock of `output` for `command`; returns a function that removes it (only while it is
 * still this lock). Refused (exit 2) while another live process holds it; a stale lock is taken over.
 */
export function lockOutput(output: string, command: string): () => void {
  const file = outputLockPath(output)
  const info: LockInfo = {pid: process.pid, host: hostname(), command, output, startedAt: new Date().toISOString(), procStart: processStartTime(process.pid), nonce: randomBytes(8).toString('hex')}
  const text = JSON.stringify(info) + '\n'
  for (let attempt = 0; ; attempt++) {
    if (createExclusive(file, text)) break
    const holder = readLock(file)
    if (!holder)
      throw inUse(`${output} is locked by ${file}, which codiemb cannot read; delete that file if no codiemb run is writing ${output}`, output, 'lock-unreadable')
    if (!lockIsStale(holder) || attempt >= 3)
      throw inUse(
        `${output} is in use by codiemb ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}); wait for it to finish` +
          `${holder.host === hostname() ? '' : `, or delete ${file} if that run is gone`}`,
        output,
        'locked',
      )
    // Take the stale lock over: move it aside, and make sure what was moved is the stale lock and
    // not a live one another process created meanwhile (then it goes back).
    const aside = tempSiblingPath(file)
    try {
      renameSync(file, aside)
    } catch {
      continue
    }
    const moved = readLock(aside)
    if (moved?.nonce !== holder.nonce) {
      try {
        linkSync(aside, file)
      } catch {
        /* a third run holds it now */
      }
    }
    rmSync(aside, {force: true})
  }
  let held = true
  return () => {
    if (!held) return
    held = false
    if (readLock(file)?.nonce === info.nonce) rmSync(file, {force: true})
  }
}

function inUse(message: string, path: string, reason: string): CodiembError {
  return new CodiembError(message, {name: 'OutputError', data: {path, reason}})
}
