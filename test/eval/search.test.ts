import assert from 'node:assert/strict'
import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {EmbeddingStore} from '../../src/eval/embedding-cache.js'
import {chunkMatrix, exactSearch, RunningTopK, TopKTable} from '../../src/eval/search.js'
import {Rng} from '../../src/core/rng.js'
import {useTestBackend} from '../helpers/env.js'
import {randomMatrix} from '../helpers/random-matrix.js'


function bruteForce(q: Float32Array, nq: number, d: Float32Array, nd: number, dim: number, k: number): number[][] {
  const norm = (m: Float32Array, i: number) => Math.sqrt(Array.from({length: dim}, (_, j) => m[i * dim + j] ** 2).reduce((a, b) => a + b))
  return Array.from({length: nq}, (_, i) => {
    const scores = Array.from({length: nd}, (_, j) => {
      let s = 0
      for (let t = 0; t < dim; t++) s += q[i * dim + t] * d[j * dim + t]
      return {j, s: s / (norm(q, i) * norm(d, j))}
    })
    return scores.sort((a, b) => b.s - a.s).slice(0, k).map((x) => x.j)
  })
}

describe('exact search', () => {
  it('keeps a sorted bounded top-k', () => {
    const top = new RunningTopK(3)
    for (const [s, id] of [[0.1, 'a'], [0.5, 'b'], [0.3, 'c'], [0.9, 'd'], [0.2, 'e']] as const) top.offer(s, id)
    assert.deepEqual(top.ids, ['d', 'b', 'c'])
    assert.equal(top.offer(0.05, 'f'), false)
  })

  it('keeps every query\'s top-k in flat typed arrays, sorted and bounded', () => {
    const random = new Rng(9)
    const table = new TopKTable(3, 5)
    const truth: number[][] = [[], [], []]
    for (let i = 0; i < 200; i++) {
      const q = i % 3
      const score = Math.round(random.next() * 1000) / 1000
      table.offer(q, score, i)
      truth[q].push(score)
    }
    for (let q = 0; q < 3; q++) {
      assert.equal(table.count[q], 5)
      const want = truth[q].sort((a, b) => b - a).slice(0, 5)
      assert.deepEqual([...table.scores.subarray(q * 5, q * 5 + 5)].map((x) => Math.round(x * 1000) / 1000), want)
    }
    const small = new TopKTable(1, 4)
    small.offer(0, 0.5, 1)
    small.offer(0, 0.9, 2)
    assert.equal(small.count[0], 2)
    assert.deepEqual([...small.docs.subarray(0, 2)], [2, 1])
  })

  it('finds the same top-k as brute force across corpus chunks, without leaking tensors', async () => {
    await useTestBackend()
    const dim = 16
    const nq = 7
    const nd = 300
    const q = randomMatrix(nq, dim, 1)
    const d = randomMatrix(nd, dim, 2)
    const ids = Array.from({length: nd}, (_, i) => `d${i}`)
    const before = tf.memory().numTensors
    const hits = await exactSearch(q, Array.from({length: nq}, (_, i) => `q${i}`), dim, chunkMatrix(ids, d, dim, 64), {k: 10, queryBatchSize: 3})
    assert.equal(tf.memory().numTensors, before)
    const expected = bruteForce(q, nq, d, nd, dim, 10)
    for (let i = 0; i < nq; i++) {
      assert.deepEqual(hits[i].ids, expected[i].map((j) => `d${j}`), `query ${i}`)
      for (let j = 1; j < hits[i].scores.length; j++) assert.ok(hits[i].scores[j - 1] >= hits[i].scores[j])
    }
  })

  it('skips a document whose id equals the query id and excluded documents', async () => {
    await useTestBackend()
    const dim = 4
    const vectors = randomMatrix(20, dim, 3)
    const ids = Array.from({length: 20}, (_, i) => `x${i}`)
    const queries = vectors.slice(0, 2 * dim) // x0 and x1 are their own nearest neighbours
    const plain = await exactSearch(queries, ['x0', 'x1'], dim, chunkMatrix(ids, vectors, dim, 8), {k: 3})
    assert.equal(plain[0].ids[0], 'x0')
    const filtered = await exactSearch(queries, ['x0', 'x1'], dim, chunkMatrix(ids, vectors, dim, 8), {
      k: 3,
      ignoreIdenticalIds: true,
      exclude: [new Set([plain[0].ids[1]]), undefined],
    })
    assert.ok(!filtered[0].ids.includes('x0'))
    assert.ok(!filtered[0].ids.includes(plain[0].ids[1]))
    assert.ok(!filtered[1].ids.includes('x1'))
    assert.equal(filtered[0].ids.length, 3)
  })
})

describe('embedding store', () => {
  it('caches vectors on disk and reuses them for the same key and texts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-cache-'))
    try {
      let calls = 0
      const encode = async (texts: string[]) => {
        calls++
        return texts.map((t) => Float32Array.from([t.length, 1, 2]))
      }
      const key = {model: 'm1', task: 't', split: 'test', role: 'corpus', prompt: '', maxLength: 128}
      const texts = ['a', 'bb', 'ccc', 'dddd', 'eeeee']
      const store = new EmbeddingStore(dir)
      const first = await store.embed(key, texts, encode, {sliceSize: 2})
      assert.equal(calls, 3)
      assert.equal(first.fromCache, false)
      const second = await new EmbeddingStore(dir).embed(key, texts, encode, {sliceSize: 2})
      assert.equal(calls, 3)
      assert.equal(second.fromCache, true)
      assert.deepEqual([...(await second.readAll())], [1, 1, 2, 2, 1, 2, 3, 1, 2, 4, 1, 2, 5, 1, 2])
      const chunks = []
      for await (const c of second.chunks(['a', 'b', 'c', 'd', 'e'], 2)) chunks.push(c)
      assert.deepEqual(chunks.map((c) => c.ids), [['a', 'b'], ['c', 'd'], ['e']])
      // another model or other texts miss the cache
      await store.embed({...key, model: 'm2'}, texts, encode, {sliceSize: 10})
      await store.embed(key, [...texts, 'f'], encode, {sliceSize: 10})
      assert.equal(calls, 5)
      assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 0)
      // a temporary file left by a dead process is removed; one of a live process is kept
      writeFileSync(join(dir, '.abc.f32.999999999.deadbeef.tmp'), 'x')
      writeFileSync(join(dir, `.abc.f32.${process.pid}.deadbeef.tmp`), 'x')
      new EmbeddingStore(dir)
      assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [`.abc.f32.${process.pid}.deadbeef.tmp`])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
