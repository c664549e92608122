/**
 * How the built-in benchmarks write their tasks: each task names its own split, dataset and
 * facts; the main score is MTEB's for the task type (DEFAULT_MAIN_SCORE), and the languages and
 * benchmark name are the benchmark's.
 */
import {DEFAULT_MAIN_SCORE, type TaskDefinition} from '../tasks.js'

/** The facts a built-in task gives itself (in the order its definition lists them). */
export type TaskFacts = Omit<TaskDefinition, 'mainScore' | 'languages' | 'benchmark'>

/** A task of `benchmark`, whose texts are in `languages`. */
export function benchmarkTask(benchmark: string, languages: string[], task: TaskFacts): TaskDefinition {
  const {name, type, split, ...facts} = task
  return {name, type, split, mainScore: DEFAULT_MAIN_SCORE[type], languages, ...facts, benchmark}
}
