/**
 * Which names `data pull` accepts: the repository id and revision the user asks for, and the paths a
 * hub listing gives, before anything is requested or written.
 *
 * A listing comes from a server codiemb does not control (a mirror, a compromised or hostile host),
 * so its paths are checked as untrusted input. Three outcomes per path:
 *
 * - refused: the path could escape or corrupt the output folder (`..`, an absolute path, a `.git`
 *   segment, control characters, a backslash) or collides with another path. The whole pull fails
 *   before any file is written: such a listing is broken or hostile, and a partial copy of it would
 *   be worse than none.
 * - skipped: safe to write but not written, and reported: files codiemb itself reads as
 *   configuration when run in their folder (`.codiembrc*`, `codiemb.config.*`, `package.json`,
 *   `package.yaml`; a `.js`/`.ts` one would run as code), and hidden files and folders other than
 *   `.gitattributes` and `.gitignore` (`.envrc`, `.vscode/`, `.github/` … are read by other tools
 *   when someone works in that folder; datasets and models do not need them).
 * - written: everything else.
 *
 * Collisions are judged case-insensitively and after Unicode NFC normalisation on every filesystem,
 * not only on case-insensitive ones: the same folder is often copied to macOS or Windows later,
 * where `README.md` and `readme.md` would be one file, and a pull whose outcome depended on the
 * filesystem could not be reproduced. Such repositories are rare; `--include` picks one of the two.
 *
 * The download of `dir/name` goes to `dir/.name.incomplete`, a hidden name, and no hidden name but
 * `.gitattributes` and `.gitignore` is ever written from a listing, so a repository file can never
 * share a name with another file's partial download (`x` and `x.incomplete` are two files).
 */
import {basename, dirname, join} from 'node:path'
import {EXIT_USER_ERROR} from '../core/errors.js'
import {HubError} from './hub-error.js'

/** A file of the listing: its repository path, size in bytes, and sha256 when it is an LFS file. */
export interface ListedFile {
  path: string
  size: number
  sha256?: string
}

/** A listed file that was not written, and why. */
export interface SkippedFile {
  path: string
  reason: string
}

/** Hidden files written despite their leading dot: git's own attributes, present in every hub repository. */
export const ALLOWED_HIDDEN = ['.gitattributes', '.gitignore']

/** One segment of a repository id (the hub's rule: word characters, `-` and `.`, starting and ending with a word character, no `--` or `..`). */
const ID_SEGMENT = /^\w(?:[\w.-]{0,94}\w)?$/

/** Throws a HubError (exit code 2) unless `repoId` is NAME or OWNER/NAME in the hub's syntax. */
export function checkRepoId(repoId: string): void {
  const segments = repoId.split('/')
  const ok = segments.length <= 2 && segments.every((s) => ID_SEGMENT.test(s) && !s.includes('--') && !s.includes('..'))
  if (!ok) throw new HubError(`not a hub repository id: ${JSON.stringify(repoId)} (expected OWNER/NAME, e.g. C-MTEB/T2Retrieval)`, EXIT_USER_ERROR)
}

/** Throws a HubError (exit code 2) for a revision that cannot be a branch, tag or commit (it is one URL path segment, encoded). */
export function checkRevision(revision: string): void {
  if (revision === '' || revision === '.' || revision === '..' || /[\x00-\x20\x7f]/.test(revision) || revision.length > 256)
    throw new HubError(`not a revision: ${JSON.stringify(revision)} (expected a branch, tag or commit, e.g. main)`, EXIT_USER_ERROR)
}

/** `.git` as Windows and macOS also resolve it: any letter case, trailing dots or spaces, and the 8.3 short name. */
const GIT_DIR = /^(\.git[. ]*|git~\d+)$/i

/** Why a listed path must not be written anywhere (it could escape or corrupt the output folder), or undefined. */
export function unsafeReason(path: string): string | undefined {
  if (path === '') return 'an empty path'
  if (/[\x00-\x1f\x7f]/.test(path)) return 'a control character in the path'
  if (path.startsWith('/')) return 'an absolute path'
  if (path.includes('\\')) return 'a backslash (a folder separator on Windows)'
  if (/^[A-Za-z]:/.test(path)) return 'a drive letter'
  for (const segment of path.split('/')) {
    if (segment === '') return 'an empty path segment'
    if (segment === '.' || segment === '..') return `a "${segment}" segment`
    if (GIT_DIR.test(segment)) return 'a .git segment (git would take it for repository metadata or hooks)'
  }
  return undefined
}

/** Names codiemb's configuration search (cosmiconfig "codiemb", searched in the working folder) would load. */
const CONFIG_NAME = /^(\.?codiembrc(\.[^.]+)?|codiemb\.config\.[^.]+|package\.json|package\.yaml)$/i

/** Why a safe path is left out (not written, reported to the user), or undefined when it is written. */
export function skipReason(path: string): string | undefined {
  const segments = path.split('/')
  const name = segments.at(-1)!
  if (CONFIG_NAME.test(name)) return 'codiemb would read it as configuration when run in its folder'
  const hidden = segments.findIndex((s) => s.startsWith('.'))
  if (hidden === segments.length - 1 && ALLOWED_HIDDEN.includes(name)) return undefined
  if (hidden !== -1) return `a hidden ${hidden === segments.length - 1 ? 'file' : 'folder'} (of hidden names only ${ALLOWED_HIDDEN.join(' and ')} are written)`
  return undefined
}

/** The key two paths collide on: one file on a case-insensitive, normalising filesystem. */
const collisionKey = (path: string): string => path.normalize('NFC').toLowerCase()

/**
 * Sorts the listing into files to write and files skipped, or throws a HubError (exit code 1) naming
 * every refused path and every collision (two paths that differ only in letter case or Unicode
 * normalisation, a path listed twice, a file where another path needs a folder).
 */
export function planFiles(entries: ListedFile[], where: string): {write: ListedFile[]; skipped: SkippedFile[]} {
  const problems: string[] = []
  const write: ListedFile[] = []
  const skipped: SkippedFile[] = []
  for (const entry of entries) {
    const unsafe = unsafeReason(entry.path)
    if (unsafe) problems.push(`${JSON.stringify(entry.path)}: ${unsafe}`)
    else {
      const reason = skipReason(entry.path)
      if (reason) skipped.push({path: entry.path, reason})
      else write.push(entry)
    }
  }
  const files = new Map<string, string>()
  for (const {path} of write) {
    const other = files.get(collisionKey(path))
    if (other === undefined) files.set(collisionKey(path), path)
    else problems.push(other === path ? `${JSON.stringify(path)} is listed twice` : `${JSON.stringify(other)} and ${JSON.stringify(path)} differ only in letter case or Unicode form (one file on macOS and Windows)`)
  }
  for (const {path} of write) {
    const segments = path.split('/')
    for (let i = 1; i < segments.length; i++) {
      const file = files.get(collisionKey(segments.slice(0, i).join('/')))
      if (file !== undefined) problems.push(`${JSON.stringify(file)} is a file, but ${JSON.stringify(path)} needs a folder of that name`)
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('; ') + (problems.length > 10 ? `; and ${problems.length - 10} more` : '')
    throw new HubError(`refusing the listing of ${where}, nothing was written: ${shown}. If the repository is trustworthy, select the files you need with --include.`)
  }
  return {write, skipped}
}

/** Where the download of `dest` is written until it is complete and checked: a hidden sibling no listed file can name. */
export function partialPath(dest: string): string {
  return join(dirname(dest), `.${basename(dest)}.incomplete`)
}
