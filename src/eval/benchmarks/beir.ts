/**
 * `beir` — small BEIR retrieval sets as MTEB packages them (corpus/queries/qrels), test split,
 * main score nDCG@10, no instruction. Dataset ids and revisions as in MTEB. SciFact is the one
 * present in ../shared (BEIR layout), standing in for the large C-MTEB retrieval sets in tests.
 * Relations: src/eval/tasks.ts, src/eval/evaluate.ts.
 */
import type {BenchmarkImpl, TaskDefinition} from '../tasks.js'
import {benchmarkTask} from './benchmark-task.js'

function ir(name: string, path: string, revision: string, localNames: string[], ignoreIdenticalIds = false): TaskDefinition {
  return benchmarkTask('beir', ['eng-Latn'], {name, type: 'retrieval', split: 'test', hf: {path, revision}, ignoreIdenticalIds, localNames})
}

export const BEIR_TASKS: TaskDefinition[] = [
  ir('SciFact', 'mteb/scifact', '0228b52cf27578f30900b9e5271d331663a030d7', ['scifact']),
  ir('NFCorpus', 'mteb/nfcorpus', 'ec0fa4fe99da2ff19ca1214b7966684033a58814', ['nfcorpus']),
  // ArguAna's queries are themselves corpus documents: MTEB drops the identical id.
  ir('ArguAna', 'mteb/arguana', 'c22ab2a51041ffd869aaddef7af8d8215647e41a', ['arguana'], true),
  ir('SCIDOCS', 'mteb/scidocs', 'f8c2fcf00f625baaa80f62ec5bd9e1fff3b8ae88', ['scidocs']),
  // MTEB 1.39.7's FiQA2018 metadata sets ignore_identical_ids too
  ir('FiQA2018', 'mteb/fiqa', '27a168819829fe9bcd655c2df245fb19452e8e06', ['fiqa'], true),
]

const benchmark: BenchmarkImpl = {
  name: 'beir',
  description: 'Small BEIR retrieval sets as packaged by MTEB: SciFact, NFCorpus, ArguAna, SCIDOCS, FiQA2018 (nDCG@10, test)',
  tasks: BEIR_TASKS,
}
export default benchmark
