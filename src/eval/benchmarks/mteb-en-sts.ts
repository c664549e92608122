/**
 * `mteb-en-sts` — MTEB's English STS tasks (STS12–16, STSBenchmark, SICK-R, BIOSSES), test split,
 * main score Spearman of cosine similarity, no instruction. Dataset ids and revisions as in MTEB.
 * Relations: src/eval/tasks.ts, src/eval/evaluate.ts.
 */
import type {BenchmarkImpl, TaskDefinition} from '../tasks.js'
import {benchmarkTask} from './benchmark-task.js'

function sts(name: string, path: string, revision: string, scoreRange: [number, number], localNames: string[]): TaskDefinition {
  return benchmarkTask('mteb-en-sts', ['eng-Latn'], {name, type: 'sts', split: 'test', hf: {path, revision}, scoreRange, localNames})
}

export const MTEB_EN_STS_TASKS: TaskDefinition[] = [
  sts('STS12', 'mteb/sts12-sts', 'a0d554a64d88156834ff5ae9920b964011b16384', [0, 5], ['sts12']),
  sts('STS13', 'mteb/sts13-sts', '7e90230a92c190f1bf69ae9002b8cea547a64cca', [0, 5], ['sts13']),
  sts('STS14', 'mteb/sts14-sts', '6031580fec1f6af667f0bd2da0a551cf4f0b2375', [0, 5], ['sts14']),
  sts('STS15', 'mteb/sts15-sts', 'ae752c7c21bf194d8b67fd573edf7ae58183cbe3', [0, 5], ['sts15']),
  sts('STS16', 'mteb/sts16-sts', '4d8694f8f0e0100860b497b999b3dbed754a0513', [0, 5], ['sts16']),
  sts('STSBenchmark', 'mteb/stsbenchmark-sts', 'b0fddb56ed78048fa8b90373c8a3cfc37b684831', [0, 5], ['stsb', 'stsbenchmark']),
  sts('SICK-R', 'mteb/sickr-sts', '20a6d6f312dd54037fe07a32d58e5e168867909d', [0, 5], ['sickr', 'sick-r']),
  sts('BIOSSES', 'mteb/biosses-sts', 'd3fb88f8f02e40887cd149695127462bbcf29b4a', [0, 5], ['biosses']),
]

const benchmark: BenchmarkImpl = {
  name: 'mteb-en-sts',
  description: "MTEB's English STS tasks: STS12-16, STSBenchmark, SICK-R, BIOSSES (cosine Spearman, test)",
  tasks: MTEB_EN_STS_TASKS,
}
export default benchmark
