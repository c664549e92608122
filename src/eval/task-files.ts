/**
 * Which files hold a task's data for one split, under --data-dir, and the errors when none do.
 *
 * Places looked in: `<data-dir>/<name>` for each name in the task name, its lower-case form, the
 * task's extra local names, the Hugging Face id (`C-MTEB/ATEC`), its `__` form and its last part.
 * Layouts: Arrow files written by `codiemb prepare` (kind and split from their metadata), or a
 * Hugging Face dataset directory (parquet / JSON lines / BEIR `qrels/<split>.tsv`, split from the
 * path).
 *
 * A split's data is only ever its own: a file is for split S when its `codiemb.split` metadata is S
 * (or, without that metadata, when its path names S); `validation`, `valid` and `dev` are one
 * split under three names. A file labelled with another split is never used in S's place. The one
 * file of a kind that names no split at all (a hand-made `pairs.arrow`) serves any split.
 *
 * Errors (TaskDataError, exit 2) say which case it is: data missing for the split (with the places
 * looked in, the splits that are there, and the command to fetch it), or data present but
 * unreadable (with the reader's own error) — a damaged file is never reported as missing.
 */
import {basename, isAbsolute, join, relative} from 'node:path'
import {readArrowMeta} from '../io/arrow-records.js'
import {CodiembError} from '../core/errors.js'
import type {TaskDefinition} from './tasks.js'
import {filesBelow} from './files.js'

/** Evaluation data that is missing, unreadable or invalid (exit code 2). */
export class TaskDataError extends CodiembError {
  override name = 'TaskDataError'
}

export const isArrow = (f: string) => f.endsWith('.arrow') || f.endsWith('.feather')
export const isParquet = (f: string) => f.endsWith('.parquet')
export const isJsonl = (f: string) => /\.(jsonl|json)(\.gz)?$/.test(f)

/** Split names a path may carry. */
const KNOWN_SPLITS = ['train', 'dev', 'validation', 'valid', 'test']

/** The names a split goes by, its own first. */
export function splitAliases(split: string): string[] {
  const s = split.toLowerCase()
  if (s === 'validation' || s === 'valid' || s === 'dev') return [s, ...['validation', 'dev', 'valid'].filter((x) => x !== s)]
  return [s]
}

/** Whether `path` (relative to the task directory) names `name` as a word. */
function names(path: string, name: string): boolean {
  return new RegExp(`(^|[^a-z])${name}([^a-z]|$)`, 'i').test(path)
}

/** Every directory a task's data may be in. */
export function candidateDirs(task: TaskDefinition, dataDir: string): string[] {
  const list = [task.name, task.name.toLowerCase(), ...(task.localNames ?? [])]
  if (task.hf) list.push(task.hf.path, task.hf.path.replace('/', '__'), basename(task.hf.path))
  return [...new Set(list.map((n) => (isAbsolute(n) ? n : join(dataDir, n))))]
}

/** The files below a task's data directory, at most four directories down. */
export const listFiles = (dir: string) => filesBelow(dir, 4)

/** An Arrow file as the finder sees it: its record kind and split, or why it cannot be read. */
export interface ArrowInfo {
  file: string
  kind?: string
  /** `codiemb.split` metadata, lower-cased. */
  split?: string
  error?: string
}

export async function arrowInfos(files: string[]): Promise<ArrowInfo[]> {
  const out: ArrowInfo[] = []
  for (const file of files.filter(isArrow)) {
    try {
      const meta = await readArrowMeta(file)
      const split = meta.metadata['codiemb.split']
      out.push({file, kind: meta.kind, split: split ? split.toLowerCase() : undefined})
    } catch (error) {
      out.push({file, error: (error as Error).message})
    }
  }
  return out
}

/**
 * The files of `files` that hold split `split` (an alias counts; the first alias with files wins),
 * else the one file that names no split at all, else none. `splitOf` gives a file's split label
 * when it has one beyond its path (Arrow metadata).
 */
export function filesForSplit(files: readonly string[], split: string, root: string, splitOf: (f: string) => string | undefined = () => undefined): string[] {
  const named = (f: string, name: string) => {
    const label = splitOf(f)
    return label === undefined ? names(relative(root, f), name) : label === name
  }
  for (const alias of splitAliases(split)) {
    const hit = files.filter((f) => named(f, alias))
    if (hit.length) return hit
  }
  const unlabelled = files.filter((f) => splitOf(f) === undefined && !KNOWN_SPLITS.some((s) => names(relative(root, f), s)))
  return files.length === 1 && unlabelled.length === 1 ? unlabelled : []
}

/** The splits `files` are labelled with (for "the data there is for …" in errors). */
export function splitsOf(files: readonly string[], root: string, splitOf: (f: string) => string | undefined = () => undefined): string[] {
  const found = new Set<string>()
  for (const f of files) {
    const label = splitOf(f) ?? KNOWN_SPLITS.find((s) => names(relative(root, f), s))
    if (label) found.add(label)
  }
  return [...found].sort()
}

/**
 * The unreadable Arrow files that may hold split `split`'s data: those whose path names the split,
 * and, when no readable file was found for it, those that name no other split.
 */
export function unreadableFor(infos: readonly ArrowInfo[], split: string, root: string, found: boolean): ArrowInfo[] {
  const aliases = splitAliases(split)
  return infos.filter((i) => {
    if (i.error === undefined) return false
    const path = relative(root, i.file)
    if (aliases.some((a) => names(path, a))) return true
    return !found && !KNOWN_SPLITS.some((s) => names(path, s))
  })
}

/** The error for data that is there but cannot be read: the reader's own words, never "missing". */
export function unreadable(task: TaskDefinition, split: string, infos: readonly {file: string; error?: string}[]): TaskDataError {
  const list = infos.map((i) => `  ${i.error?.startsWith(i.file) ? i.error : `${i.file}: ${i.error}`}`).join('\n')
  return new TaskDataError(
    `task ${task.name}, split "${split}": the data is there but cannot be read (damaged, truncated, or not the format its name says):\n${list}\n` +
      `Write it again (codiemb prepare; a downloaded set: pull it again); no other split is used in its place.`,
  )
}

/**
 * The error for a split with no data: where it looked, which splits are there instead (they are
 * never used for this one), and how to fetch or point at the data.
 */
export function missing(task: TaskDefinition, split: string, looked: string[], wanted: string, otherSplits: string[]): TaskDataError {
  const pull = task.hf
    ? `codiemb data pull ${task.hf.path} --revision ${task.hf.revision}${task.hf.qrelsPath ? ` && codiemb data pull ${task.hf.qrelsPath} --revision ${task.hf.qrelsRevision}` : ''}`
    : undefined
  const others = otherSplits.filter((s) => !splitAliases(split).includes(s))
  return new TaskDataError(
    `task ${task.name}: no ${wanted} found for split "${split}". Looked in:\n  ${looked.join('\n  ')}\n` +
      (others.length ? `The data there is for split${others.length === 1 ? '' : 's'} ${others.join(', ')}, which is never scored in place of "${split}".\n` : '') +
      `Expected files prepared by \`codiemb prepare\` (Arrow: ${task.type === 'sts' ? 'sts-pair' : 'corpus, queries, qrels'}) or a Hugging Face dataset directory` +
      (pull ? ` — fetch it with: ${pull}` : '') +
      (task.files ? '' : ` (or point a user-defined task at its files with eval.tasks[].files)`),
    {data: {missing: true, task: task.name, split}},
  )
}
