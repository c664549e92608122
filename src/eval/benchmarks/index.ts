import type {RegistryEntry} from '../../registry/types.js'
import {BEIR_TASKS} from './beir.js'
import {CMTEB_TASKS} from './cmteb.js'
import {MTEB_EN_STS_TASKS} from './mteb-en-sts.js'

// The task tables are plain data (no tfjs/Arrow), so importing them here keeps listing light.
const tasksMeta = (tasks: {name: string; type: string; split: string; mainScore: string}[]) =>
  tasks.map((t) => ({name: t.name, type: t.type, split: t.split, mainScore: t.mainScore}))

/** Built-in benchmarks. Each entry's load() returns a BenchmarkImpl ({name, description, tasks}). */
export const entries: RegistryEntry[] = [
  {
    kind: 'benchmark',
    name: 'cmteb',
    description: "The CoDiEmb paper's 15 C-MTEB tasks: 8 retrieval (nDCG@10) and 7 STS (cosine Spearman), Chinese instructions",
    meta: {tasks: tasksMeta(CMTEB_TASKS)},
    load: async () => (await import('./cmteb.js')).default,
  },
  {
    kind: 'benchmark',
    name: 'mteb-en-sts',
    description: "MTEB's English STS tasks: STS12-16, STSBenchmark, SICK-R, BIOSSES",
    meta: {tasks: tasksMeta(MTEB_EN_STS_TASKS)},
    load: async () => (await import('./mteb-en-sts.js')).default,
  },
  {
    kind: 'benchmark',
    name: 'beir',
    description: 'Small BEIR retrieval sets (SciFact, NFCorpus, ArguAna, SCIDOCS, FiQA2018) as packaged by MTEB',
    meta: {tasks: tasksMeta(BEIR_TASKS)},
    load: async () => (await import('./beir.js')).default,
  },
]
