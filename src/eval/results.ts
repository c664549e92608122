/**
 * Writing evaluation results the way MTEB does, so existing MTEB tooling (leaderboards, result
 * loaders) can read them:
 *   {out}/{model}/{revision}/{task}.json   one TaskResult per task (MTEB >= 1.12 layout:
 *                                          dataset_revision, task_name, mteb_version, scores.{split}[]
 *                                          with main_score, hf_subset, languages and every metric,
 *                                          for each split scored; evaluation_time, kg_co2_emissions)
 *   {out}/{model}/{revision}/model_meta.json
 *   {out}/{model}/{revision}/summary.json  codiemb's own: main score per task and the IR / STS /
 *                                          overall averages
 * Every file is written atomically (temporary name + rename).
 */
import {mkdirSync} from 'node:fs'
import {basename, isAbsolute, join, relative, resolve, sep} from 'node:path'
import {writeFileAtomic} from '../core/fs-atomic.js'
import type {TaskEvaluation} from './evaluate.js'
import {scoredSplit} from './tasks.js'

/**
 * The MTEB release codiemb's task table, scoring and result files follow (the pinned version of
 * ../shared/fixtures/mteb-tasks.json; test/eval/benchmarks/mteb-table.test.ts checks every task
 * against it). Written as `mteb_version` in every TaskResult.
 */
export const MTEB_VERSION = '1.39.7'

/**
 * How result files name local files. By default no absolute path is written (results are shared and
 * published): data files are given relative to the data directory, and the model directory is left
 * out; `recordPaths` (`codiemb eval --record-paths`) keeps them as they are.
 */
export interface PathOptions {
  recordPaths?: boolean
  /** The --data-dir the sources were found under. */
  dataDir?: string
}

/** A function that rewrites local paths inside a string as PathOptions asks. */
export function pathScrubber(options: PathOptions = {}): (text: string) => string {
  if (options.recordPaths) return (text) => text
  const roots = [...new Set([options.dataDir && resolve(options.dataDir), process.cwd()].filter((r): r is string => !!r && r.length > 1))].sort((a, b) => b.length - a.length)
  return (text) => {
    let out = text
    for (const root of roots) out = out.split(root + sep).join('').split(root).join('.')
    return out
  }
}

/** A data file as a result file names it: relative to the data directory unless paths are recorded. */
function sourceName(file: string, options: PathOptions): string {
  if (options.recordPaths) return file
  const base = options.dataDir ? resolve(options.dataDir) : process.cwd()
  const rel = relative(base, resolve(file))
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : basename(file)
}

export interface ModelInfo {
  /** Directory-safe model name (MTEB replaces "/" with "__"). */
  name: string
  /** Revision label: the weight fingerprint's prefix unless given. */
  revision: string
  embedDim?: number
  maxTokens?: number
  nParameters?: number
  source?: string
}

export interface SummaryTask {
  type: string
  /** The task's scored split (the benchmark's): the one its main_score and the averages are of. */
  split: string
  main_score_name: string
  main_score: number
  benchmark?: string
  /** The main score of each further split scored. */
  splits?: Record<string, number>
}

export interface EvalSummary {
  model: string
  revision: string
  created: string
  tasks: Record<string, SummaryTask>
  averages: {ir: number | null; sts: number | null; overall: number | null}
  counts: {ir: number; sts: number}
  /** Splits asked for but not scored (missing or unreadable data), when any. */
  unscored?: UnscoredSplit[]
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n')
}

export function safeModelName(name: string): string {
  return name.replace(/\//g, '__').replace(/[^A-Za-z0-9._\-]/g, '_')
}

export function resultDir(outDir: string, model: ModelInfo): string {
  return join(outDir, safeModelName(model.name), model.revision)
}

/** A split that was asked for but not scored, and why (its data is missing or unreadable). */
export interface UnscoredSplit {
  task: string
  split: string
  reason: string
}

/**
 * One task's TaskResult: `scores.<split>` for every split scored (never a split in another's
 * place); `codiemb.unscored_splits` names the splits asked for that could not be scored, and why.
 */
export function taskResultJson(
  evaluations: TaskEvaluation | readonly TaskEvaluation[],
  unscored: readonly UnscoredSplit[] = [],
  paths: PathOptions = {},
): Record<string, unknown> {
  const evs = Array.isArray(evaluations) ? evaluations : [evaluations as TaskEvaluation]
  // the scored split's facts head the codiemb block (it is the one summaries and reports use)
  const ev = evs.find((e) => e.split === scoredSplit(e.task)) ?? evs[0]
  const scrub = pathScrubber(paths)
  const sources = (e: TaskEvaluation) => e.sources.map((f) => sourceName(f, paths))
  const warnings = evs.flatMap((e) => e.warnings ?? []).map(scrub)
  return {
    dataset_revision: ev.task.hf?.revision ?? null,
    task_name: ev.task.name,
    mteb_version: MTEB_VERSION,
    scores: Object.fromEntries(evs.map((e) => [e.split, [{...e.scores, main_score: e.scores.main_score, hf_subset: 'default', languages: e.task.languages}]])),
    evaluation_time: evs.reduce((t, e) => t + e.evaluationTime, 0),
    kg_co2_emissions: null,
    codiemb: {
      prompt: ev.prompt,
      counts: ev.counts,
      sources: sources(ev),
      benchmark: ev.task.benchmark ?? null,
      scored_split: scoredSplit(ev.task),
      ...(ev.geometry ? {geometry: ev.geometry} : {}),
      ...(evs.length > 1 ? {splits: Object.fromEntries(evs.map((e) => [e.split, {counts: e.counts, sources: sources(e), evaluation_time: e.evaluationTime}]))} : {}),
      ...(unscored.length ? {unscored_splits: Object.fromEntries(unscored.map((u) => [u.split, scrub(u.reason)]))} : {}),
      ...(warnings.length ? {warnings} : {}),
    },
  }
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null)

/**
 * summary.json: per task the score of its scored split (`scoredSplit`: the benchmark's; other scored
 * splits under `splits`), the IR / STS / overall averages over those, and `unscored` listing every
 * split that could not be scored. A task whose scored split was not scored is left out of the tasks
 * and averages, never represented by another split.
 */
export function summarize(model: ModelInfo, evaluations: readonly TaskEvaluation[], unscored: readonly UnscoredSplit[] = [], paths: PathOptions = {}): EvalSummary {
  const tasks: Record<string, SummaryTask> = {}
  const primary = evaluations.filter((ev) => ev.split === scoredSplit(ev.task))
  for (const ev of primary) {
    const others = evaluations.filter((e) => e.task.name === ev.task.name && e !== ev)
    tasks[ev.task.name] = {
      type: ev.task.type,
      split: ev.split,
      main_score_name: ev.task.mainScore,
      main_score: ev.scores.main_score,
      ...(ev.task.benchmark ? {benchmark: ev.task.benchmark} : {}),
      ...(others.length ? {splits: Object.fromEntries(others.map((e) => [e.split, e.scores.main_score]))} : {}),
    }
  }
  const ir = primary.filter((e) => e.task.type === 'retrieval').map((e) => e.scores.main_score)
  const sts = primary.filter((e) => e.task.type === 'sts').map((e) => e.scores.main_score)
  return {
    model: model.name,
    revision: model.revision,
    created: new Date().toISOString(),
    tasks,
    averages: {ir: mean(ir), sts: mean(sts), overall: mean([...ir, ...sts])},
    counts: {ir: ir.length, sts: sts.length},
    ...(unscored.length ? {unscored: unscored.map((u) => ({...u, reason: pathScrubber(paths)(u.reason)}))} : {}),
  }
}

/**
 * Writes one TaskResult per task (all its scored splits), model_meta.json and summary.json; returns
 * the directory and the summary. `unscored`: the splits asked for that could not be scored.
 */
export function writeResults(
  outDir: string,
  model: ModelInfo,
  evaluations: readonly TaskEvaluation[],
  unscored: readonly UnscoredSplit[] = [],
  paths: PathOptions = {},
): {dir: string; summary: EvalSummary; files: string[]} {
  const dir = resultDir(outDir, model)
  mkdirSync(dir, {recursive: true})
  const files: string[] = []
  const byTask = new Map<string, TaskEvaluation[]>()
  for (const ev of evaluations) byTask.set(ev.task.name, [...(byTask.get(ev.task.name) ?? []), ev])
  for (const [name, evs] of byTask) {
    const file = join(dir, `${name}.json`)
    writeJsonAtomic(file, taskResultJson(evs, unscored.filter((u) => u.task === name), paths))
    files.push(file)
  }
  const meta = {
    name: model.name,
    revision: model.revision,
    release_date: null,
    languages: null,
    framework: ['codiemb'],
    n_parameters: model.nParameters ?? null,
    embed_dim: model.embedDim ?? null,
    max_tokens: model.maxTokens ?? null,
    similarity_fn_name: 'cosine',
    // the model directory is a local path: recorded only when asked
    reference: paths.recordPaths ? (model.source ?? null) : null,
  }
  writeJsonAtomic(join(dir, 'model_meta.json'), meta)
  files.push(join(dir, 'model_meta.json'))
  const summary = summarize(model, evaluations, unscored, paths)
  writeJsonAtomic(join(dir, 'summary.json'), summary)
  files.push(join(dir, 'summary.json'))
  return {dir, summary, files}
}

/** Rows for the terminal table: task, type, split, metric, score (x100, as papers report). */
export function summaryRows(summary: EvalSummary): string[][] {
  const rows = Object.entries(summary.tasks).map(([name, t]) => [name, t.type, t.split, t.main_score_name, (t.main_score * 100).toFixed(2)])
  const avg = (label: string, v: number | null, n: number) => (v === null ? [] : [[label, '', '', `${n} tasks`, (v * 100).toFixed(2)]])
  return [...rows, ...avg('IR average', summary.averages.ir, summary.counts.ir), ...avg('STS average', summary.averages.sts, summary.counts.sts), ...avg('Overall average', summary.averages.overall, summary.counts.ir + summary.counts.sts)]
}
