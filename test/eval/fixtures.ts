/**
 * Test support for the eval suites: a deterministic character-n-gram hashing encoder (a real,
 * if simple, embedding: texts sharing characters get similar vectors) and a converter that writes
 * the raw C-MTEB STS files of ../shared/data as prepared `sts-pair` Arrow files.
 */
import {readFileSync} from 'node:fs'
import {mkdirSync} from 'node:fs'
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

/** Writes `<outDir>/<task>/<split>.arrow` (kind sts-pair) from a raw shared file; returns the row count. */
export async function writeSharedSts(dataDir: string, outDir: string, spec: (typeof SHARED_CMTEB_STS)[number], limit = Infinity): Promise<number> {
  const lines = readFileSync(join(dataDir, spec.file), 'utf8').split('\n').filter((l) => l.trim())
  mkdirSync(join(outDir, spec.task), {recursive: true})
  const writer = new ArrowRecordWriter(join(outDir, spec.task, `${spec.split}.arrow`), 'sts-pair', {
    metadata: {'codiemb.dataset': spec.task, 'codiemb.task': 'sts', 'codiemb.instruction': ''},
  })
  let n = 0
  for (const line of lines) {
    if (n >= limit) break
    let t1: string, t2: string, raw: number
    if (spec.format === 'json') {
      const o = JSON.parse(line) as Record<string, string>
      ;[t1, t2, raw] = [o[spec.keys[0]], o[spec.keys[1]], Number(o[spec.keys[2]])]
    } else {
      const f = line.split('\t')
      ;[t1, t2, raw] = [f[0], f[1], Number(f[2])]
    }
    writer.write({id: String(n), text1: t1, text2: t2, score: (raw - spec.range[0]) / (spec.range[1] - spec.range[0]), raw_score: raw, instruction: ''})
    n++
  }
  await writer.finish()
  return n
}
