/**
 * Test support for the eval suites: a deterministic character-n-gram hashing encoder (a real,
 * if simple, embedding: texts sharing characters get similar vectors) and a converter that writes
 * the raw C-MTEB STS files of ../shared/data as prepared `sts-pair` Arrow files.
 */
import {mkdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {ArrowRecordWriter} from '../../src/io/arrow-records.js'
import type {EvalEncoder} from '../../src/eval/evaluate.js'
import type {Prompt} from '../../src/core/prompts.js'

export class HashingEncoder implements EvalEncoder {
  calls = 0
  encoded = 0
  readonly seenPrefixes: (string | undefined)[] = []
  constructor(readonly dim = 256, readonly salt = 'v1', readonly maxLength = 128) {}
  fingerprint(): string {
    return `hashing-${this.dim}-${this.salt}`
  }
  async encode(texts: string[], options: {instruction?: string | Prompt} = {}): Promise<Float32Array[]> {
    this.calls++
    this.encoded += texts.length
    this.seenPrefixes.push(typeof options.instruction === 'string' ? options.instruction : options.instruction?.prefix)
    return texts.map((t) => {
      const v = new Float32Array(this.dim)
      const s = ` ${t.toLowerCase()} `
      for (let i = 0; i < s.length - 1; i++) {
        for (const gram of [s[i], s.slice(i, i + 2), s.slice(i, i + 3)]) {
          let h = 2166136261
          for (let j = 0; j < gram.length; j++) h = Math.imul(h ^ gram.charCodeAt(j), 16777619)
          v[(h >>> 0) % this.dim] += 1
        }
      }
      return v
    })
  }
}

/** The seven C-MTEB STS sets in ../shared/data: raw file, split, and how to read a line. */
export const SHARED_CMTEB_STS = [
  {task: 'AFQMC', file: 'afqmc/dev.json', split: 'validation', format: 'json', keys: ['sentence1', 'sentence2', 'label'], range: [0, 1]},
  {task: 'ATEC', file: 'atec/ATEC.test.data', split: 'test', format: 'tsv', range: [0, 1]},
  {task: 'BQ', file: 'bq/BQ.test.data', split: 'test', format: 'tsv', range: [0, 1]},
  {task: 'LCQMC', file: 'lcqmc/LCQMC.test.data', split: 'test', format: 'tsv', range: [0, 1]},
  {task: 'PAWSX', file: 'pawsx/PAWSX.test.data', split: 'test', format: 'tsv', range: [0, 1]},
  {task: 'QBQTC', file: 'qbqtc/test_public.json', split: 'test', format: 'json', keys: ['query', 'title', 'label'], range: [0, 2]},
  {task: 'STSB', file: 'stsb-zh/STS-B.test.data', split: 'test', format: 'tsv', range: [0, 5]},
] as const

/**
 * The further STS splits in ../shared/data: the validation splits of ATEC, BQ and STSB (their MTEB
 * metadata lists validation and test) and English STSBenchmark's test split (sts-test.csv: score,
 * sentence1, sentence2 in tab fields 5, 6, 7).
 */
export const SHARED_MORE_STS = [
  {task: 'ATEC', file: 'atec/ATEC.valid.data', split: 'validation', format: 'tsv', range: [0, 1]},
  {task: 'BQ', file: 'bq/BQ.valid.data', split: 'validation', format: 'tsv', range: [0, 1]},
  {task: 'STSB', file: 'stsb-zh/STS-B.valid.data', split: 'validation', format: 'tsv', range: [0, 5]},
  {task: 'STSBenchmark', file: 'stsb/sts-test.csv', split: 'test', format: 'stsb', range: [0, 5]},
] as const

type StsSpec = (typeof SHARED_CMTEB_STS)[number] | (typeof SHARED_MORE_STS)[number]

/** Reads a raw shared STS file: text pairs and raw gold scores, in file order. */
export function readSharedSts(dataDir: string, spec: StsSpec, limit = Infinity): {text1: string[]; text2: string[]; gold: number[]} {
  const out = {text1: [] as string[], text2: [] as string[], gold: [] as number[]}
  for (const line of readFileSync(join(dataDir, spec.file), 'utf8').split('\n')) {
    if (!line.trim()) continue
    if (out.text1.length >= limit) break
    let t1: string, t2: string, raw: number
    if (spec.format === 'json') {
      const o = JSON.parse(line) as Record<string, string>
      ;[t1, t2, raw] = [o[spec.keys[0]], o[spec.keys[1]], Number(o[spec.keys[2]])]
    } else if (spec.format === 'stsb') {
      const f = line.split('\t')
      ;[t1, t2, raw] = [f[5], f[6], Number(f[4])]
    } else {
      const f = line.split('\t')
      ;[t1, t2, raw] = [f[0], f[1], Number(f[2])]
    }
    // a byte-order mark inside the file (ATEC's test split has two) is not part of the text: the Arrow writer drops it too
    out.text1.push(t1.replace(/^\uFEFF/, ''))
    out.text2.push(t2.replace(/^\uFEFF/, ''))
    out.gold.push(raw)
  }
  return out
}

/** Writes `<outDir>/<task>/<split>.arrow` (kind sts-pair) from a raw shared file; returns the row count. */
export async function writeSharedSts(dataDir: string, outDir: string, spec: StsSpec, limit = Infinity): Promise<number> {
  const data = readSharedSts(dataDir, spec, limit)
  mkdirSync(join(outDir, spec.task), {recursive: true})
  const writer = new ArrowRecordWriter(join(outDir, spec.task, `${spec.split}.arrow`), 'sts-pair', {
    metadata: {'codiemb.dataset': spec.task, 'codiemb.task': 'sts', 'codiemb.split': spec.split, 'codiemb.instruction': ''},
  })
  data.text1.forEach((text1, n) => {
    const raw = data.gold[n]
    writer.write({id: String(n), text1, text2: data.text2[n], score: (raw - spec.range[0]) / (spec.range[1] - spec.range[0]), raw_score: raw, instruction: ''})
  })
  await writer.finish()
  return data.text1.length
}
