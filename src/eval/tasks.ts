/**
 * What an evaluation task is: a named retrieval or STS dataset split with its main metric, the
 * Hugging Face dataset (id + revision) it corresponds to in MTEB, and the query instruction used
 * for instruction-following encoders. Benchmarks (registry kind `benchmark`) are lists of these;
 * user-defined tasks come from the `eval.tasks` config section and point at prepared Arrow files.
 */

export type TaskType = 'retrieval' | 'sts'

export interface HfDatasetRef {
  /** Hugging Face dataset id, e.g. `C-MTEB/ATEC`. */
  path: string
  revision: string
  /** Retrieval tasks whose qrels live in a separate dataset (C-MTEB: `<path>-qrels`). */
  qrelsPath?: string
  qrelsRevision?: string
}

export interface TaskDefinition {
  name: string
  type: TaskType
  /** The split evaluated; in a definition with `splits`, the scored one (`scoredSplit`, else the first). */
  split: string
  /**
   * Several splits to score (MTEB's eval_splits), each on its own data and written under its own
   * `scores.<split>`; a split without data is reported, never replaced by another. Absent: `split` only.
   */
  splits?: string[]
  /**
   * The split summaries and reports use: the one the benchmark scores (MTEB(cmn, v1) scores ATEC, BQ
   * and STSB on test although their metadata lists validation too). Absent: the first of `splits`.
   */
  scoredSplit?: string
  /** MTEB metric key reported as main_score: `ndcg_at_10` for retrieval, `cosine_spearman` for STS. */
  mainScore: string
  /** ISO 639-3 + script codes as MTEB writes them, e.g. `cmn-Hans`. */
  languages: string[]
  hf?: HfDatasetRef
  /**
   * The task instruction (without template). Filled into the instruction template (src/core/prompts.ts;
   * default the paper's) around queries and both texts of an STS pair; passages never get one. Empty
   * or absent: no template.
   */
  instruction?: string
  /** Drop retrieved documents whose id equals the query id (MTEB's ignore_identical_ids). */
  ignoreIdenticalIds?: boolean
  /** The gold score range of an STS task (documentation; correlations do not depend on it). */
  scoreRange?: [number, number]
  /** Explicit files (user-defined tasks): prepared Arrow files, paths relative to --data-dir or absolute. */
  files?: {pairs?: string; corpus?: string; queries?: string; qrels?: string}
  /** Extra directory names (under --data-dir) to look in, besides the task name and HF id. */
  localNames?: string[]
  /** The benchmark the task was taken from, when any. */
  benchmark?: string
}

/** The main-score name MTEB uses for each task type. */
export const DEFAULT_MAIN_SCORE: Record<TaskType, string> = {retrieval: 'ndcg_at_10', sts: 'cosine_spearman'}

/** A benchmark implementation (what a `benchmark` registry entry's load() returns). */
export interface BenchmarkImpl {
  name: string
  description: string
  tasks: TaskDefinition[]
}

/** A user-defined task as written in the `eval.tasks` config section. */
export interface ConfigTask {
  name: string
  type: TaskType
  /** One split, or several (each scored on its own). */
  split?: string | string[]
  mainScore?: string
  instruction?: string
  languages?: string[]
  ignoreIdenticalIds?: boolean
  files?: TaskDefinition['files']
  dir?: string
}

export function taskFromConfig(entry: ConfigTask): TaskDefinition {
  return {
    name: entry.name,
    type: entry.type,
    ...splitsOf(entry.split),
    mainScore: entry.mainScore ?? DEFAULT_MAIN_SCORE[entry.type],
    languages: entry.languages ?? [],
    instruction: entry.instruction,
    ignoreIdenticalIds: entry.ignoreIdenticalIds,
    files: entry.files,
    localNames: entry.dir ? [entry.dir] : undefined,
  }
}

/** `split` and, when there are several, `splits` of a task from one split name or a list of them. */
export function splitsOf(split: string | readonly string[] | undefined): Pick<TaskDefinition, 'split' | 'splits'> {
  const list = [...new Set(typeof split === 'string' ? [split] : (split ?? ['test']))]
  return list.length > 1 ? {split: list[0], splits: list} : {split: list[0] ?? 'test'}
}

/** Every split a task scores, in order. */
export function taskSplits(task: TaskDefinition): string[] {
  return task.splits?.length ? [...task.splits] : [task.split]
}

/** The split a task's summary and report entries are of: `scoredSplit`, else its first split. */
export function scoredSplit(task: TaskDefinition): string {
  return task.scoredSplit ?? taskSplits(task)[0]
}
