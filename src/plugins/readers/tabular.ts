/**
 * What the columnar readers (parquet, hf-arrow) share: listing a split's files (a file or a
 * directory of shards), plain JS values from Arrow/Parquet cells, and mapping rows to drafts.
 */
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {draftFromFields, MISSING, resolveFields, type FieldMapping} from '../../data/mapping.js'
import {getPath} from '../../data/text-input.js'
import {DataError, type ReadItem, type ReadRequest, type SourceLocation} from '../../data/types.js'
import {isObject, show} from './common.js'

/**
 * A split's files: the file itself, or the shards in a directory — in `state.json` order when
 * present (a `save_to_disk` split), else sorted, keeping only the files named after the split
 * (`<split>-*`, `<split>.*`, `<split>_*`) when there are any.
 */
export function shardFiles(request: ReadRequest, reader: string, extension: string): {split: string; files: string[]}[] {
  return request.splits.map((split) => {
    const path = split.path ?? request.path
    if (!path) throw new DataError(`dataset ${request.dataset}: reader ${reader} needs a file or directory for split "${split.name}"`)
    if (!existsSync(path)) throw new DataError(`dataset ${request.dataset}, split "${split.name}": not found: ${path}`)
    if (statSync(path).isFile()) return {split: split.name, files: [path]}
    const state = join(path, 'state.json')
    if (existsSync(state)) {
      let parsed: unknown
      try {
        parsed = JSON.parse(readFileSync(state, 'utf8'))
      } catch (error) {
        throw new DataError(`malformed JSON: ${(error as Error).message}`, {file: state, line: 1})
      }
      const list = isObject(parsed) && Array.isArray(parsed._data_files) ? parsed._data_files : undefined
      if (list) return {split: split.name, files: list.map((f: {filename?: string}) => join(path, String(f.filename)))}
    }
    const all = readdirSync(path)
      .filter((f) => f.endsWith(extension))
      .sort()
    // Hub repositories keep splits side by side (data/train-00000-of-00002.parquet, data/test-...):
    // when some files are named after the split, only those belong to it.
    const named = all.filter((f) => f.startsWith(`${split.name}-`) || f.startsWith(`${split.name}.`) || f.startsWith(`${split.name}_`))
    const files = (named.length ? named : all).map((f) => join(path, f))
    if (files.length === 0) throw new DataError(`dataset ${request.dataset}, split "${split.name}": no *${extension} files in ${path}`)
    return {split: split.name, files}
  })
}

/** Columns a mapping reads (top-level names). */
export function mappedColumns(mapping: FieldMapping): string[] {
  return [...new Set(Object.values(mapping).map((ref) => String(ref).split('.')[0]))]
}

export function checkColumns(file: string, available: string[], mapping: FieldMapping): void {
  for (const [target, ref] of Object.entries(mapping)) {
    const top = String(ref).split('.')[0]
    if (!available.includes(top))
      throw new DataError(`no column ${JSON.stringify(top)} (wanted for ${target}); the columns are ${available.map((c) => JSON.stringify(c)).join(', ')}`, {file, line: 1})
  }
}

export function resolveTabularFields(request: ReadRequest, reader: string): FieldMapping {
  return resolveFields(request.task, request.fields, reader)
}

/** One row object -> a draft item (or a reject naming the row). */
export function rowItem(request: ReadRequest, mapping: FieldMapping, split: string, at: SourceLocation, row: Record<string, unknown>): ReadItem {
  const task = request.task as 'ir' | 'sts'
  const kind = task === 'ir' ? 'ir-example' : 'sts-pair'
  const built = draftFromFields(task, mapping, (ref) => {
    const v = getPath(row, String(ref))
    return v === undefined ? MISSING : v
  })
  if (built.reason !== undefined) return {type: 'reject', kind, split, at, reason: built.reason, raw: show(row)}
  const draft = built.draft as unknown as Record<string, unknown>
  draft.id ??= String(at.line)
  return {type: 'row', kind, split, at, row: draft} as unknown as ReadItem
}
