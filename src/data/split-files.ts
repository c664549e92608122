/**
 * A split's files as the configuration gives them: one path, a list of paths, or glob patterns
 * (`sts/STS.input.*.txt`), each relative to the data root, expanded here into absolute paths in
 * reading order — list order, and within one pattern sorted by path (byte order, as `ls` in the C
 * locale), so a run reads the same files in the same order on every machine.
 *
 * Why several files per split: benchmark splits often ship in pieces (MTEB's SICK-R test set is
 * SICK_train + SICK_trial + SICK_test_annotated; a SemEval STS year is one file per source). A
 * split with several files reaches the reader as one `SplitSource` per file, in order, all with the
 * split's name; every row keeps its own file:line, in errors and in rejects.jsonl.
 *
 * Patterns: `*` (any characters but `/`), `?` (one character but `/`), `[abc]` / `[a-z]` (one of) in
 * any path segment, and `**` as a whole segment (any number of directories). A pattern that matches
 * no file, a plain path that does not exist, or a file given twice for one split is an error: a
 * split silently missing a piece is exactly what this exists to prevent.
 */
import {existsSync, readdirSync, statSync} from 'node:fs'
import {isAbsolute, join, resolve, sep} from 'node:path'
import {DataError} from './types.js'

const GLOB = /[*?[]/

/** True when `path` holds glob characters. */
export function isGlob(path: string): boolean {
  return GLOB.test(path)
}

/** One path segment's pattern as a regular expression. */
function segmentRegExp(segment: string): RegExp {
  let re = ''
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i]
    if (ch === '*') re += '[^/]*'
    else if (ch === '?') re += '[^/]'
    else if (ch === '[') {
      const end = segment.indexOf(']', i + 2)
      if (end === -1) re += '\\['
      else {
        const body = segment.slice(i + 1, end)
        re += `[${body.startsWith('!') ? '^' + body.slice(1) : body.replace(/\\/g, '\\\\')}]`
        i = end
      }
    } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort()
  } catch {
    return []
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** Every existing path under `base` matching `segments` (already split on "/"). */
function expand(base: string, segments: string[]): string[] {
  if (segments.length === 0) return existsSync(base) ? [base] : []
  const [head, ...rest] = segments
  if (head === '**') {
    // zero directories, or one more level then ** again
    const here = expand(base, rest)
    const deeper = listDir(base)
      .filter((name) => !name.startsWith('.') && isDir(join(base, name)))
      .flatMap((name) => expand(join(base, name), segments))
    return [...here, ...deeper]
  }
  if (!isGlob(head)) return expand(join(base, head), rest)
  const re = segmentRegExp(head)
  return listDir(base)
    .filter((name) => re.test(name) && !(name.startsWith('.') && !head.startsWith('.')))
    .flatMap((name) => expand(join(base, name), rest))
}

/**
 * The absolute files of one split, in reading order. `spec` is the configured value (a path or a
 * list of paths; each may be a pattern); `where` names the split in errors.
 */
export function splitPaths(spec: string | readonly string[], dataRoot: string, where: string): string[] {
  const entries = typeof spec === 'string' ? [spec] : spec
  if (entries.length === 0) throw new DataError(`${where}: expected a file, a list of files or a pattern, got an empty list`)
  const out: string[] = []
  for (const entry of entries) {
    let files: string[]
    if (isGlob(entry)) {
      // Only the entry's own segments are patterns: a data root whose path holds [ or * is taken literally.
      const base = isAbsolute(entry) ? sep : resolve(dataRoot)
      const segments = entry.split(sep === '/' ? '/' : /[\\/]/).filter((p) => p !== '' && p !== '.')
      files = [...new Set(expand(base, segments))].map((f) => resolve(f)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      if (files.length === 0) throw new DataError(`${where}: pattern ${JSON.stringify(entry)} matches no file (under ${dataRoot})`)
    } else files = [resolve(dataRoot, entry)]
    for (const file of files) {
      if (out.includes(file)) throw new DataError(`${where}: ${file} is listed twice (its rows would be read twice)`)
      out.push(file)
    }
  }
  return out
}
