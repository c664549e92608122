/**
 * STS scores against an independent computation of MTEB 1.39.7's formulas (numpy + scipy:
 * test/eval/mteb_sts_reference.py), within 1e-9: a synthetic case full of tied pairs (identical
 * vectors, tied gold scores, a zero vector), and every real STS set of ../shared through the
 * evaluation engine. Identical texts score exactly 1.0 on every backend: each distinct text is
 * encoded once (checked with the bert-tiny fixture on the backend under test).
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it, type TestContext} from 'node:test'
import {pairedCosine, stsScores} from '../../src/eval/metrics.js'
import {evaluateTask, type EvalEncoder} from '../../src/eval/evaluate.js'
import {CMTEB_TASKS} from '../../src/eval/benchmarks/cmteb.js'
import {MTEB_EN_STS_TASKS} from '../../src/eval/benchmarks/mteb-en-sts.js'
import {BUILTINS, REPO_ROOT, shared, useTestBackend} from '../helpers/env.js'
import {HashingEncoder, readSharedSts, SHARED_CMTEB_STS, SHARED_MORE_STS, writeSharedSts} from './fixtures.js'
import type {Prompt} from '../../src/core/prompts.js'

const TOLERANCE = 1e-9
const KEYS = ['cosine_pearson', 'cosine_spearman', 'euclidean_pearson', 'euclidean_spearman', 'manhattan_pearson', 'manhattan_spearman'] as const

let work: string
before(() => {
  work = mkdtempSync(join(tmpdir(), 'codiemb-parity-'))
})
after(() => rmSync(work, {recursive: true, force: true}))

/** A python with numpy and scipy (CODIEMB_PYTHON, Debian's /usr/bin/python3, python3), or a skip naming what to install. */
function findPython(): string | undefined {
  for (const py of [process.env.CODIEMB_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)) {
    if (spawnSync(py, ['-c', 'import numpy, scipy.stats'], {encoding: 'utf8'}).status === 0) return py
  }
  return undefined
}

function python(t: TestContext): string | undefined {
  const py = findPython()
  if (py) return py
  t.skip('no python3 with numpy and scipy for the independent computation (apt-get install python3-numpy python3-scipy, or set CODIEMB_PYTHON)')
  return undefined
}

interface Case {
  left: readonly Float32Array[]
  right: readonly Float32Array[]
  gold: ArrayLike<number>
}

/** The reference's scores for each case (one python process for all of them). */
function reference(py: string, cases: Case[]): Record<string, number>[] {
  const specs = cases.map((c, i) => {
    const dim = c.left[0].length
    const pack = (rows: readonly Float32Array[]) => {
      const m = new Float32Array(rows.length * dim)
      rows.forEach((r, j) => m.set(r, j * dim))
      return Buffer.from(m.buffer)
    }
    const file = (name: string, data: Buffer) => {
      const path = join(work, `case${i}.${name}`)
      writeFileSync(path, data)
      return path
    }
    return {n: c.left.length, dim, left: file('left', pack(c.left)), right: file('right', pack(c.right)), gold: file('gold', Buffer.from(Float64Array.from(c.gold).buffer))}
  })
  writeFileSync(join(work, 'cases.json'), JSON.stringify(specs))
  const r = spawnSync(py, [join(REPO_ROOT, 'test', 'eval', 'mteb_sts_reference.py'), join(work, 'cases.json')], {encoding: 'utf8', maxBuffer: 1 << 26})
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

function assertClose(label: string, ours: Record<string, number>, theirs: Record<string, number>): void {
  for (const k of KEYS) assert.ok(Math.abs(ours[k] - theirs[k]) <= TOLERANCE, `${label} ${k}: codiemb ${ours[k]}, reference ${theirs[k]} (|d| ${Math.abs(ours[k] - theirs[k])})`)
}

/** Deterministic pseudo-random numbers. */
function lcg(seed: number): () => number {
  let x = seed >>> 0
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1
}

describe('STS scoring against MTEB 1.39.7, computed independently', () => {
  it('identical vectors score exactly 1.0 (a dot product over the norms does not promise it)', () => {
    const rand = lcg(7)
    let dotMisses = 0
    for (let i = 0; i < 200; i++) {
      const v = Float32Array.from({length: 768}, () => rand() * 10)
      assert.equal(pairedCosine([v], [v])[0], 1)
      let dot = 0
      let n = 0
      for (const x of v) {
        dot += x * x
        n += x * x
      }
      if (dot / (Math.sqrt(n) * Math.sqrt(n)) !== 1) dotMisses++
    }
    assert.ok(dotMisses > 0, 'the old formula leaves some identical pairs off 1.0')
    // a zero row stays zero, as scikit-learn's normalize leaves it
    assert.equal(pairedCosine([new Float32Array(4)], [Float32Array.of(1, 0, 0, 0)])[0], 0.5)
  })

  it('matches numpy/scipy within 1e-9 on a synthetic case with tied pairs', (t) => {
    const py = python(t)
    if (!py) return
    const rand = lcg(42)
    const left: Float32Array[] = []
    const right: Float32Array[] = []
    const gold: number[] = []
    const shared = Array.from({length: 12}, () => Float32Array.from({length: 64}, () => rand()))
    for (let i = 0; i < 400; i++) {
      const a = i % 5 === 0 ? shared[i % 12] : Float32Array.from({length: 64}, () => rand())
      // every fifth pair identical (ties at exactly 1.0), every seventh a scaled copy (cosine 1 up to rounding)
      const b = i % 5 === 0 ? a : i % 7 === 0 ? a.map((x) => x * 3) : a.map((x) => x + rand() * (i % 11) * 0.1)
      left.push(a)
      right.push(b)
      gold.push(Math.round((1 - (i % 11) / 10) * 4) / 4) // few distinct values: tied gold scores
    }
    left.push(new Float32Array(64))
    right.push(shared[0])
    gold.push(0)
    const [ref] = reference(py, [{left, right, gold}])
    const ours = stsScores(left, right, gold)
    assertClose('synthetic', ours as unknown as Record<string, number>, ref)
    assert.equal(ref.exact_ones, Array.from(pairedCosine(left, right)).filter((c) => c === 1).length)
    assert.ok(ref.exact_ones >= 80)
  })

  it('matches numpy/scipy within 1e-9 on every real STS set of ../shared, through the evaluation engine', async (t) => {
    const data = shared(t, 'data')
    if (!data) return
    const py = python(t)
    if (!py) return
    const dataDir = join(work, 'prepared')
    const specs = [...SHARED_CMTEB_STS, ...SHARED_MORE_STS]
    const tasks = [...CMTEB_TASKS, ...MTEB_EN_STS_TASKS]
    // Hashed character counts, mixed by a fixed random matrix: small integer counts make many pairs
    // whose cosines are equal only in exact arithmetic, which rounding orders differently in any two
    // implementations (numpy's summation order is not JavaScript's); mixed, only truly identical
    // vectors tie, as with a real model's embeddings.
    const counts = new HashingEncoder(48)
    const rand = lcg(3)
    const mix = Float32Array.from({length: 48 * 64}, () => rand())
    const encoder: EvalEncoder = {
      fingerprint: () => 'mixed-hashing-48x64',
      encode: async (texts: string[]) =>
        (await counts.encode(texts)).map((c) => {
          const v = new Float32Array(64)
          for (let i = 0; i < 48; i++) if (c[i]) for (let j = 0; j < 64; j++) v[j] += c[i] * mix[i * 64 + j]
          return v
        }),
    }
    const cases: Case[] = []
    const ours: Record<string, number>[] = []
    for (const spec of specs) {
      await writeSharedSts(data, dataDir, spec)
      const task = {...tasks.find((x) => x.name === spec.task)!, split: spec.split}
      const ev = await evaluateTask(encoder, task, {dataDir, instructions: false})
      const raw = readSharedSts(data, spec)
      assert.equal(ev.counts.pairs, raw.text1.length, spec.file)
      ours.push(ev.scores)
      // the reference gets the raw gold scores (MTEB's normalisation is affine: no correlation changes)
      cases.push({left: await encoder.encode(raw.text1), right: await encoder.encode(raw.text2), gold: raw.gold})
    }
    const refs = reference(py, cases)
    specs.forEach((spec, i) => assertClose(`${spec.task}/${spec.split}`, ours[i], refs[i]))
    // the real sets hold identical text pairs, which score exactly 1.0
    assert.ok(refs.reduce((s, r) => s + r.exact_ones, 0) > 0)
  })

  it('scores pairs of identical texts exactly 1.0 with a real model on the backend under test', async (t) => {
    const dir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!dir) return
    await useTestBackend()
    const {loadModelForEval} = await import('../../src/eval/model.js')
    const model = await loadModelForEval(dir, {registry: BUILTINS})
    try {
      // a recording encoder: the vectors the engine used, per text
      const seen = new Map<string, Float32Array>()
      const encoder: EvalEncoder = {
        fingerprint: () => model.encoder.fingerprint(),
        maxLength: 64,
        encode: async (texts: string[], options?: {instruction?: string | Prompt; batchSize?: number; maxLength?: number}) => {
          const out = await model.encoder.encode(texts, {...options, batchSize: 7})
          texts.forEach((x, i) => seen.set(x, out[i]))
          return out
        },
      }
      const base = ['A man is playing a guitar.', '一个女孩在给她的头发做发型。', 'The cat sits on the mat near the door.', '两只狗在草地上奔跑', 'Stocks fell sharply.', 'short']
      const text1: string[] = []
      const text2: string[] = []
      const gold: number[] = []
      for (let i = 0; i < 30; i++) {
        const a = `${base[i % base.length]} ${i % 4 === 0 ? '' : 'x'.repeat(i)}`.trim()
        text1.push(a)
        text2.push(i % 3 === 0 ? a : base[(i + 1) % base.length])
        gold.push(i % 3 === 0 ? 5 : i % 5)
      }
      const {ArrowRecordWriter} = await import('../../src/io/arrow-records.js')
      const {mkdirSync} = await import('node:fs')
      mkdirSync(join(work, 'tied', 'Tied'), {recursive: true})
      const writer = new ArrowRecordWriter(join(work, 'tied', 'Tied', 'test.arrow'), 'sts-pair', {metadata: {'codiemb.task': 'sts', 'codiemb.split': 'test'}})
      text1.forEach((x, i) => writer.write({id: String(i), text1: x, text2: text2[i], score: gold[i] / 5, raw_score: gold[i], instruction: ''}))
      await writer.finish()
      const task = {name: 'Tied', type: 'sts' as const, split: 'test', mainScore: 'cosine_spearman', languages: []}
      const ev = await evaluateTask(encoder, task, {dataDir: join(work, 'tied'), batchSize: 4})
      const left = text1.map((x) => seen.get(x)!)
      const right = text2.map((x) => seen.get(x)!)
      const cos = pairedCosine(left, right)
      text1.forEach((x, i) => {
        if (x === text2[i]) assert.equal(cos[i], 1, `pair ${i}: identical texts`)
      })
      assert.deepEqual(ev.scores, {...stsScores(left, right, gold), main_score: ev.scores.cosine_spearman})
      const py = findPython()
      if (py) assertClose('tied (bert-tiny)', ev.scores, reference(py, [{left, right, gold}])[0])
    } finally {
      model.dispose()
    }
  })
})
