/**
 * The prepare engine: a configured list of datasets -> one Arrow record file per dataset, split and
 * record kind, plus `manifest.json` listing every file with kind, rows and sha256.
 *
 * Per dataset: the reader (a registry entry of kind `reader`) streams draft rows; each draft is
 * validated and converted (validate.ts), checked against the dataset (dataset-checks.ts: duplicate
 * corpus/query ids, qrels pointing to unknown documents or queries), counted (stats.ts) and written.
 * What is accepted but looks wrong (an output with 0 rows, qrels grading a pair twice differently)
 * becomes one of the dataset's `warnings`. Invalid rows stop
 * the run with `file:line: reason`, or, with `skipInvalid`, go to `<dataset>/rejects.jsonl` with
 * their reasons and are counted. Rows a configuration does not use (e.g. neutral NLI pairs for IR)
 * are counted as `unused` with their reasons.
 *
 * Atomicity: the new `<out>` is staged beside it (`.<out>.<pid>.<random>.tmp/`: this run's datasets, hard
 * links to the rest of `<out>`, the merged manifest, the marker) and put in place by one swap once every
 * dataset succeeded (core/outputs.ts publishTree): readers see the old `<out>` or the new one, never a
 * mixture. A failed run removes its staging folder; `<out>` stays as it was (or absent).
 */
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync} from 'node:fs'
import {isAbsolute, join, relative, resolve} from 'node:path'
import type {Registry} from '../registry/registry.js'
import {ArrowRecordWriter, META, type AnyRecord, type FinishedRecordFile, type RecordKind} from '../io/arrow-records.js'
import {LineWriter} from '../io/line-writer.js'
import {StatsCollector, type FileStatistics} from './stats.js'
import {excerpt, hashFile} from './text-input.js'
import {DatasetChecks} from './dataset-checks.js'
import {splitPaths} from './split-files.js'
import {checkConfig, type DatasetConfig, type PrepareConfig} from './prepare-config.js'
import {DatasetPipeline} from './pipeline.js'
import type {GroupSummary} from './grouping.js'
import {DataError, TASKS, type PreparedKind, type ReadItem, type ReaderModule, type ReadRequest, type SourceLocation, type Task} from './types.js'
import {describeLabelRange, resolveLabelRange, toCorpusDoc, toIrExample, toQrel, toQuery, toStsPair, type LabelRange, type LabelRangeConfig} from './validate.js'
import {packageVersion} from '../core/version.js'
import type {PrepareEvent} from '../core/events.js'
import {createTempSiblingDir, discardTemp, swapDirectory, writeFileAtomic} from '../core/fs-atomic.js'
import {stopIfAborted} from '../core/errors.js'
import {publishTree, resolveOutputPath} from '../core/outputs.js'
import {validateOptions} from '../config/validate.js'

export type {DatasetConfig, PrepareConfig} from './prepare-config.js'

export type {PrepareEvent} from '../core/events.js'

export interface PrepareOptions {
  /** Base directory for dataset paths (absolute or relative to the working directory). */
  dataRoot: string
  /** Output directory (created when absent). */
  out: string
  /** Replace datasets `out` already holds (else a run that would is refused). */ overwrite?: boolean
  skipInvalid?: boolean
  /** The registry to find readers in. */
  registry: Registry
  /** Rows per Arrow record batch (default 4096). */
  batchRows?: number
  /** Progress: each dataset's start, its rows every 50,000, its end. */
  onEvent?: (event: PrepareEvent) => void
  /** Stop request, checked per row: the run then fails with an InterruptedError, `out` as it was, the staging folder removed. */
  signal?: AbortSignal
}

export interface ManifestFile {
  /** Relative to the output directory. */
  path: string
  dataset: string
  split: string | null
  kind: RecordKind
  task: Task
  rows: number
  bytes: number
  sha256: string
}

export interface SourceFile {
  /** Relative to the data root when inside it, else absolute. */
  path: string
  sha256: string
  bytes: number
}

export interface DatasetResult {
  name: string
  reader: string
  task: Task
  instruction: string
  labelRange?: LabelRange
  sources: SourceFile[]
  rows: number
  rejected: number
  unused: number
  /** Why rows were unused, with counts. */
  unusedReasons: Record<string, number>
  /** What grouping made of the rows, for a dataset with `group`. */
  grouped?: GroupSummary
  /** `<dataset>/rejects.jsonl` relative to the output directory, when rows were rejected. */
  rejectsFile?: string
  files: ManifestFile[]
  /** Per output file (keyed by its manifest path). */
  stats: Record<string, FileStatistics>
  seconds: number
  /** What was read but looks wrong: output files with 0 rows, qrels that grade a pair twice differently. */
  warnings: string[]
}

export interface Manifest {
  format: 'codiemb-prepare-manifest'
  version: 1
  codiembVersion: string
  files: ManifestFile[]
  datasets: Record<string, Omit<DatasetResult, 'files' | 'stats' | 'seconds' | 'warnings'>>
}

export interface PrepareResult {
  out: string
  manifest: string
  rows: number
  rejected: number
  datasets: DatasetResult[]
}

export const MANIFEST = 'manifest.json'

/** Output file of a dataset: `<dataset>/<split>.<kind>.arrow`, or `<dataset>/<kind>.arrow` for split-less outputs. */
export function outputPath(dataset: string, kind: RecordKind, split: string | null): string {
  return join(dataset, split === null ? `${kind}.arrow` : `${split}.${kind}.arrow`)
}

/** Reads `<out>/manifest.json` (undefined when absent). */
export function readManifest(out: string): Manifest | undefined {
  const file = join(out, MANIFEST)
  if (!existsSync(file)) return undefined
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Manifest
  } catch (error) {
    throw new DataError(`malformed manifest: ${(error as Error).message}`, {file, line: 1})
  }
}

/** One SplitSource per split, or per file of a split given several (in reading order). */
function normaliseSplits(ds: DatasetConfig, dataRoot: string, where: string): {name: string; path?: string}[] {
  if (Array.isArray(ds.splits)) return ds.splits.map((name) => ({name}))
  return Object.entries(ds.splits).flatMap(([name, spec]) => splitPaths(spec, dataRoot, `${where}.splits.${name}`).map((path) => ({name, path})))
}

/**
 * Prepares every dataset of `config` into `options.out`. Throws DataError (exit code 2) for bad
 * input or configuration; on any failure the output directory is left as it was.
 */
export async function prepare(config: PrepareConfig, options: PrepareOptions): Promise<PrepareResult> {
  checkConfig(config)
  const dataRoot = resolve(options.dataRoot)
  const out = resolveOutputPath(options.out)
  const skipInvalid = options.skipInvalid ?? config.skipInvalid ?? false
  const batchRows = options.batchRows ?? config.batchRows
  const registry = options.registry
  const previous = checkReplacements(config, out, options.overwrite ?? false)
  const staging = createTempSiblingDir(out)
  const results: DatasetResult[] = []
  try {
    for (let i = 0; i < config.datasets.length; i++) {
      const ds = config.datasets[i]
      options.onEvent?.({type: 'dataset-start', dataset: ds.name, reader: ds.reader, task: ds.task, index: i, total: config.datasets.length})
      results.push(await prepareDataset(ds, i, {registry, dataRoot, staging, skipInvalid, batchRows, onEvent: options.onEvent, signal: options.signal}))
    }
    const names = new Set(results.map((r) => r.name))
    const manifest: Manifest = {
      format: 'codiemb-prepare-manifest',
      version: 1,
      codiembVersion: packageVersion(),
      files: [...(previous?.files ?? []).filter((f) => !names.has(f.dataset)), ...results.flatMap((r) => r.files)],
      datasets: {
        ...Object.fromEntries(Object.entries(previous?.datasets ?? {}).filter(([k]) => !names.has(k))),
        ...Object.fromEntries(results.map(({files: _f, stats: _s, seconds: _t, warnings: _w, ...rest}) => [rest.name, rest])),
      },
    }
    writeFileSync(join(staging, MANIFEST), JSON.stringify(manifest, null, 2) + '\n')
    publishTree(out, staging, {content: 'prepared-data', command: 'prepare', carry: (name) => name !== MANIFEST})
  } finally {
    discardTemp(staging)
  }
  return {
    out,
    manifest: join(out, MANIFEST),
    rows: results.reduce((s, r) => s + r.rows, 0),
    rejected: results.reduce((s, r) => s + r.rejected, 0),
    datasets: results,
  }
}

/** A dataset `out` already holds is replaced only with `overwrite`; a folder its manifest (returned) does not list, never. */
function checkReplacements(config: PrepareConfig, out: string, overwrite: boolean): Manifest | undefined {
  const previous = readManifest(out)
  const clash = config.datasets.map((d) => d.name).filter((name) => existsSync(join(out, name)))
  const foreign = clash.filter((name) => !previous?.datasets?.[name])
  if (foreign.length) throw new DataError(`${out}: ${foreign.join(', ')} is not data codiemb prepared (not in manifest.json) and is never replaced: rename the dataset or choose another --out`)
  if (clash.length && !overwrite) throw new DataError(`${out} already holds dataset ${clash.join(', ')}; pass --overwrite to replace it, or choose another --out`)
  return previous
}

interface DatasetContext {
  registry: Registry
  dataRoot: string
  staging: string
  skipInvalid: boolean
  batchRows?: number
  onEvent?: (event: PrepareEvent) => void
  signal?: AbortSignal
}

interface Output {
  key: string
  kind: PreparedKind
  split: string | null
  path: string
  writer: ArrowRecordWriter
  stats: StatsCollector
}

async function prepareDataset(ds: DatasetConfig, index: number, ctx: DatasetContext): Promise<DatasetResult> {
  const started = Date.now()
  const where = `prepare.datasets[${index}] (${ds.name})`
  const entry = ctx.registry.entry<ReaderModule>('reader', ds.reader)
  const tasks = (entry.meta?.tasks as Task[] | undefined) ?? undefined
  const plan = new DatasetPipeline(ds, where)
  // A grouped dataset is read as pairs (task sts), whatever it becomes.
  const cannot = (can: readonly Task[]) =>
    new DataError(`${where}: reader ${ds.reader} cannot prepare task "${plan.readTask}"${ds.group ? ' (grouping reads pairs)' : ''} (it prepares ${can.join(', ')})`)
  if (tasks && !tasks.includes(plan.readTask)) throw cannot(tasks)
  // The reader gets its options as written, not the schema-defaulted copy: a reader may treat a
  // missing option differently from its documented default (beir searches for corpus.jsonl,
  // corpus.parquet or shards when `corpus` is not given, and reads exactly the file when it is).
  validateOptions(entry.optionsSchema, ds.options ?? {}, {
    pointer: `/prepare/datasets/${index}/options`,
    subject: `options for reader "${ds.reader}" of dataset "${ds.name}"`,
    error: (message) => new DataError(message),
  })
  const mod = await entry.load()
  if (!mod?.reader || typeof mod.reader.read !== 'function')
    throw new DataError(`reader ${ds.reader} (plugin ${entry.plugin ?? '?'}) does not export {reader} with read()`)
  const reader = mod.reader
  if (!reader.tasks.includes(plan.readTask)) throw cannot(reader.tasks)
  const range = ds.labelRange ? resolveLabelRangeAt(ds.labelRange, where) : undefined
  const instruction = ds.instruction ?? ''
  const request: ReadRequest = {
    dataset: ds.name,
    task: plan.readTask,
    path: ds.path === undefined ? undefined : resolve(ctx.dataRoot, ds.path),
    splits: normaliseSplits(ds, ctx.dataRoot, where),
    options: ds.options ?? {},
    fields: ds.fields,
  }
  const rel = (file: string) => {
    const r = relative(ctx.dataRoot, file)
    return r.startsWith('..') || isAbsolute(r) ? file : r
  }
  const sources: SourceFile[] = []
  for (const file of await reader.sources(request)) sources.push({path: rel(file), ...(await hashFile(file))})

  const dir = join(ctx.staging, ds.name)
  mkdirSync(dir, {recursive: true})
  const baseMeta: Record<string, string> = {
    [META.dataset]: ds.name,
    [META.task]: ds.task,
    [META.instruction]: instruction,
    'codiemb.reader': ds.reader,
    'codiemb.sources': JSON.stringify(sources),
  }
  if (range) {
    baseMeta['codiemb.label_range'] = JSON.stringify(range)
    baseMeta['codiemb.score_normalisation'] = `score = (raw_score - ${range.min}) / (${range.max} - ${range.min}); raw_score is the label as given`
  }
  const outputs = new Map<string, Output>()
  const output = (kind: PreparedKind, split: string | null): Output => {
    const key = `${kind}|${split ?? ''}`
    let o = outputs.get(key)
    if (!o) {
      const path = outputPath(ds.name, kind, split)
      const meta = {...baseMeta, ...(split === null ? {} : {'codiemb.split': split})}
      o = {
        key,
        kind,
        split,
        path,
        writer: new ArrowRecordWriter(join(ctx.staging, path), kind, {metadata: meta, batchRows: ctx.batchRows}),
        stats: new StatsCollector(kind, range),
      }
      outputs.set(key, o)
    }
    return o
  }
  // Every kind the reader promises gets a file, even when no row arrives (an empty split is still a split).
  const kinds = plan.kinds(reader)
  if (kinds.includes('corpus')) output('corpus', null)
  if (kinds.includes('queries')) output('queries', null)
  for (const split of request.splits) for (const k of kinds) if (k !== 'corpus' && k !== 'queries') output(k, split.name)

  let rejects: LineWriter | undefined
  let rows = 0
  let rejected = 0
  let unused = 0
  const unusedReasons: Record<string, number> = {}
  const readWarnings: string[] = []
  const checks = new DatasetChecks(ds.name, kinds, rel)

  const reject = (at: SourceLocation, reason: string, kind: PreparedKind | undefined, split: string | null, raw?: string) => {
    if (!ctx.skipInvalid) throw new DataError(`${reason} (dataset ${ds.name}; use --skip-invalid to set such rows aside in rejects.jsonl)`, at)
    rejected++
    if (kind) output(kind, split).stats.rejected++
    rejects ??= new LineWriter(join(dir, 'rejects.jsonl'))
    rejects.write(JSON.stringify({dataset: ds.name, split, kind: kind ?? null, file: rel(at.file), line: at.line, reason, ...(raw === undefined ? {} : {raw})}) + '\n')
  }

  try {
    for await (const item of plan.items(reader, request, join(dir, '.grouping'))) {
      stopIfAborted(ctx.signal)
      if (item.type === 'warning') {
        readWarnings.push(`dataset ${ds.name}${item.split ? `, split ${item.split}` : ''}: ${item.at ? `${rel(item.at.file)}:${item.at.line}: ` : ''}${item.message}`)
        continue
      }
      if (item.type === 'unused') {
        unused++
        unusedReasons[item.reason] = (unusedReasons[item.reason] ?? 0) + 1
        continue
      }
      if (item.type === 'reject') {
        reject(item.at, item.reason, item.kind, item.split, item.raw)
        continue
      }
      const fallbackId = String(item.at.line)
      let converted: {ok: true; value: AnyRecord} | {ok: false; reason: string}
      switch (item.kind) {
        case 'sts-pair':
          converted = toStsPair(item.row, fallbackId, range!, instruction)
          break
        case 'ir-example':
          converted = toIrExample(item.row, fallbackId, instruction)
          break
        case 'corpus':
          converted = toCorpusDoc(item.row)
          break
        case 'queries':
          converted = toQuery(item.row, instruction)
          break
        case 'qrels':
          converted = toQrel(item.row)
          break
        default:
          throw new DataError(`reader ${ds.reader} yielded an unknown record kind ${JSON.stringify((item as {kind: unknown}).kind)}`)
      }
      converted = checks.check(item.kind, item.split, item.at, converted)
      if (!converted.ok) {
        reject(item.at, converted.reason, item.kind, item.split, item.raw ?? excerpt(JSON.stringify(item.row)))
        continue
      }
      const o = output(item.kind, item.split)
      o.writer.write(converted.value)
      o.stats.add(converted.value)
      rows++
      if (rows % 50_000 === 0) ctx.onEvent?.({type: 'dataset-progress', dataset: ds.name, rows, rejected})
    }
    rejects?.close()
    const files: ManifestFile[] = []
    const stats: Record<string, FileStatistics> = {}
    for (const o of outputs.values()) {
      const done: FinishedRecordFile = await o.writer.finish()
      files.push({path: o.path, dataset: ds.name, split: o.split, kind: o.kind, task: ds.task, rows: done.rows, bytes: done.bytes, sha256: done.sha256})
      stats[o.path] = o.stats.summary()
    }
    const seconds = (Date.now() - started) / 1000
    ctx.onEvent?.({type: 'dataset-done', dataset: ds.name, rows, rejected, unused, seconds})
    return {
      name: ds.name,
      reader: ds.reader,
      task: ds.task,
      instruction,
      ...(range ? {labelRange: range} : {}),
      sources,
      rows,
      rejected,
      unused,
      unusedReasons,
      ...(plan.grouping ? {grouped: plan.grouping.summary} : {}),
      ...(rejected ? {rejectsFile: join(ds.name, 'rejects.jsonl')} : {}),
      files,
      stats,
      seconds,
      warnings: [...readWarnings, ...checks.warnings(files, {rejected, unused})],
    }
  } catch (error) {
    for (const o of outputs.values()) o.writer.abort()
    try {
      rejects?.close()
    } catch {
      /* already closed */
    }
    throw error
  }
}

function resolveLabelRangeAt(config: LabelRangeConfig, where: string): LabelRange {
  try {
    return resolveLabelRange(config)
  } catch (error) {
    throw new DataError(`${where}.${(error as Error).message}`)
  }
}

export {describeLabelRange}
