/**
 * Writing evaluation results the way MTEB does, so existing MTEB tooling (leaderboards, result
 * loaders) can read them:
 *   {out}/{model}/{revision}/{task}.json   one TaskResult per task (MTEB >= 1.12 layout:
 *                                          dataset_revision, task_name, mteb_version, scores.{split}[]
 *                                          with main_score, hf_subset, languages and every metric,
 *                                          evaluation_time, kg_co2_emissions)
 *   {out}/{model}/{revision}/model_meta.json
 *   {out}/{model}/{revision}/summary.json  codiemb's own: main score per task and the IR / STS /
 *                                          overall averages
 * Every file is written atomically (temporary name + rename).
 */
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {writeFileAtomic} from '../core/fs-atomic.js'
import type {TaskEvaluation} from './evaluate.js'

/** The MTEB TaskResult schema version these files follow. */
export const MTEB_RESULT_VERSION = '1.12.0'

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
  split: string
  main_score_name: string
  main_score: number
  benchmark?: string
}

export interface EvalSummary {
  model: string
  revision: string
  created: string
  tasks: Record<string, SummaryTask>
  averages: {ir: number | null; sts: number | null; overall: number | null}
  counts: {ir: number; sts: number}
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

export function taskResultJson(ev: TaskEvaluation): Record<string, unknown> {
  return {
    dataset_revision: ev.task.hf?.revision ?? null,
    task_name: ev.task.name,
    mteb_version: MTEB_RESULT_VERSION,
    scores: {
      [ev.split]: [
        {
          ...ev.scores,
          main_score: ev.scores.main_score,
          hf_subset: 'default',
          languages: ev.task.languages,
        },
      ],
    },
    evaluation_time: ev.evaluationTime,
    kg_co2_emissions: null,
    codiemb: {prompt: ev.prompt, counts: ev.counts, sources: ev.sources, benchmark: ev.task.benchmark ?? null, ...(ev.geometry ? {geometry: ev.geometry} : {})},
  }
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null)

export function summarize(model: ModelInfo, evaluations: readonly TaskEvaluation[]): EvalSummary {
  const tasks: Record<string, SummaryTask> = {}
  for (const ev of evaluations) {
    tasks[ev.task.name] = {
      type: ev.task.type,
      split: ev.split,
      main_score_name: ev.task.mainScore,
      main_score: ev.scores.main_score,
      ...(ev.task.benchmark ? {benchmark: ev.task.benchmark} : {}),
    }
  }
  const ir = evaluations.filter((e) => e.task.type === 'retrieval').map((e) => e.scores.main_score)
  const sts = evaluations.filter((e) => e.task.type === 'sts').map((e) => e.scores.main_score)
  return {
    model: model.name,
    revision: model.revision,
    created: new Date().toISOString(),
    tasks,
    averages: {ir: mean(ir), sts: mean(sts), overall: mean([...ir, ...sts])},
    counts: {ir: ir.length, sts: sts.length},
  }
}

/** Writes every TaskResult, model_meta.json and summary.json; returns the directory and the summary. */
export function writeResults(outDir: string, model: ModelInfo, evaluations: readonly TaskEvaluation[]): {dir: string; summary: EvalSummary; files: string[]} {
  const dir = resultDir(outDir, model)
  mkdirSync(dir, {recursive: true})
  const files: string[] = []
  for (const ev of evaluations) {
    const file = join(dir, `${ev.task.name}.json`)
    writeJsonAtomic(file, taskResultJson(ev))
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
    reference: model.source ?? null,
  }
  writeJsonAtomic(join(dir, 'model_meta.json'), meta)
  files.push(join(dir, 'model_meta.json'))
  const summary = summarize(model, evaluations)
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
