import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {chunkTopK, type ChunkTopKOptions, type TopKBatch} from '../../src/tensor/chunk-topk.js'
import type {TorchAddon} from '../../src/tensor/torch/addon.js'
import {useTestBackend} from '../helpers/env.js'
import {randomMatrix} from '../helpers/random-matrix.js'


/** Per query, the documents sorted by score (float64), best first: [doc, score][]. */
function bruteForce(q: Float32Array, nq: number, d: Float32Array, nd: number, dim: number, cosine: boolean): [number, number][][] {
  const norm = (m: Float32Array, i: number) => (cosine ? Math.sqrt(Array.from({length: dim}, (_, j) => m[i * dim + j]! ** 2).reduce((a, b) => a + b)) || 1 : 1)
  return Array.from({length: nq}, (_, i) => {
    const scores = Array.from({length: nd}, (_, j): [number, number] => {
      let s = 0
      for (let t = 0; t < dim; t++) s += q[i * dim + t]! * d[j * dim + t]!
      return [j, s / (norm(q, i) * norm(d, j))]
    })
    return scores.sort((a, b) => b[1] - a[1])
  })
}

/** Runs the running top-k over `d` in chunks of `chunk` rows; returns each query's (doc, score) list. */
async function search(options: ChunkTopKOptions, d: Float32Array, nd: number, chunk: number): Promise<{kind: string; rows: [number, number][][]}> {
  const running = chunkTopK(options)
  try {
    for (let start = 0; start < nd; start += chunk) {
      const n = Math.min(chunk, nd - start)
      running.add(d.subarray(start * options.dim, (start + n) * options.dim), n, start)
    }
    const batches: TopKBatch[] = await running.read()
    const rows: [number, number][][] = []
    for (const b of batches) {
      for (let r = 0; r < b.rows; r++) rows.push(Array.from({length: b.kept}, (_, j) => [b.docs[r * b.kept + j]!, b.scores[r * b.kept + j]!]))
    }
    return {kind: running.kind, rows}
  } finally {
    running.dispose()
  }
}

function assertMatches(got: [number, number][][], want: [number, number][][], keep: number, label: string): void {
  assert.equal(got.length, want.length, `${label}: one row per query`)
  got.forEach((row, q) => {
    assert.equal(row.length, Math.min(keep, want[q]!.length), `${label}: query ${q} keeps ${keep}`)
    assert.deepEqual(row.map(([doc]) => doc), want[q]!.slice(0, row.length).map(([doc]) => doc), `${label}: query ${q} documents`)
    row.forEach(([, s], j) => assert.ok(Math.abs(s - want[q]![j]![1]) < 1e-5, `${label}: query ${q} score ${j}: ${s} vs ${want[q]![j]![1]}`))
  })
}

const torchAddon = (): TorchAddon | undefined => (tf.getBackend() === 'torch' ? (tf.backend() as unknown as {addon: TorchAddon}).addon : undefined)

describe('chunked running top-k', () => {
  it('equals brute force across chunks and query batches (cosine and dot; keep beyond a chunk)', async () => {
    await useTestBackend()
    const dim = 12
    const nq = 7
    const nd = 203
    const q = randomMatrix(nq, dim, 5)
    const d = randomMatrix(nd, dim, 6)
    d.fill(0, 17 * dim, 18 * dim) // a zero document scores 0 under cosine, never NaN
    const before = tf.memory().numTensors
    for (const cosine of [true, false]) {
      const want = bruteForce(q, nq, d, nd, dim, cosine)
      for (const [keep, chunk, queryBatch] of [[10, 64, 3], [40, 32, 7], [5, 203, 2], [1, 50, 4]] as const) {
        const {rows} = await search({queries: q, nq, dim, keep, queryBatch, cosine}, d, nd, chunk)
        assertMatches(rows, want, keep, `cosine ${cosine}, keep ${keep}, chunk ${chunk}, batch ${queryBatch}`)
      }
    }
    assert.equal(tf.memory().numTensors, before)
  })

  it('with tied scores (repeated documents): the brute-force scores, each hit scored as brute force scores it', async () => {
    await useTestBackend()
    const dim = 6
    const base = randomMatrix(30, dim, 11)
    const nd = 120 // every document four times, the copies in different chunks
    const d = new Float32Array(nd * dim)
    for (let i = 0; i < nd; i++) d.set(base.subarray((i % 30) * dim, (i % 30 + 1) * dim), i * dim)
    const q = randomMatrix(5, dim, 12)
    const want = bruteForce(q, 5, d, nd, dim, true)
    for (const native of [true, false]) {
      const {rows} = await search({queries: q, nq: 5, dim, keep: 9, queryBatch: 2, cosine: true, native}, d, nd, 25)
      rows.forEach((row, i) => {
        const exact = new Map(want[i]!)
        assert.equal(new Set(row.map(([doc]) => doc)).size, 9, `query ${i}: no document twice`)
        row.forEach(([doc, s], j) => {
          assert.ok(Math.abs(s - want[i]![j]![1]) < 1e-5, `query ${i} rank ${j}: score ${s} vs ${want[i]![j]![1]}`)
          assert.ok(Math.abs(exact.get(doc)! - s) < 1e-5, `query ${i}: document ${doc} scored ${s}, brute force ${exact.get(doc)}`)
        })
      })
    }
  })

  it('reads the chunk in place without changing it, and handles no queries', async () => {
    await useTestBackend()
    const dim = 8
    const d = randomMatrix(40, dim, 7)
    const copy = Float32Array.from(d)
    await search({queries: randomMatrix(3, dim, 8), nq: 3, dim, keep: 5, queryBatch: 2, cosine: true}, d, 40, 16)
    assert.deepEqual(d, copy)
    // chunks of changing sizes (a growing one replaces the native path's reused buffer)
    const q = randomMatrix(3, dim, 13)
    for (const cosine of [true, false]) {
      const running = chunkTopK({queries: q, nq: 3, dim, keep: 6, queryBatch: 2, cosine})
      try {
        let start = 0
        for (const n of [4, 12, 7, 17]) {
          running.add(d.subarray(start * dim, (start + n) * dim), n, start)
          start += n
        }
        const rows = (await running.read()).flatMap((b) => Array.from({length: b.rows}, (_, r) => Array.from({length: b.kept}, (_, j): [number, number] => [b.docs[r * b.kept + j]!, b.scores[r * b.kept + j]!])))
        assertMatches(rows, bruteForce(q, 3, d, 40, dim, cosine), 6, `changing chunk sizes, cosine ${cosine}`)
      } finally {
        running.dispose()
      }
    }
    assert.deepEqual(d, copy)
    const empty = await search({queries: new Float32Array(0), nq: 0, dim, keep: 5, queryBatch: 2, cosine: true}, d, 40, 16)
    assert.deepEqual(empty.rows, [])
  })

  it('on torch: the native call, equal to the tfjs ops, frees every handle', async (t) => {
    await useTestBackend()
    const addon = torchAddon()
    if (!addon) return t.skip('the torch backend is not active (CODIEMB_BACKEND=torch)')
    const dim = 32
    const nq = 20
    const nd = 1000
    const q = randomMatrix(nq, dim, 9)
    const d = randomMatrix(nd, dim, 10)
    const live = addon.liveTensors()
    for (const cosine of [true, false]) {
      const options = {queries: q, nq, dim, keep: 25, queryBatch: 8, cosine}
      const native = await search(options, d, nd, 300)
      const ops = await search({...options, native: false}, d, nd, 300)
      assert.equal(native.kind, 'native')
      assert.equal(ops.kind, 'tfjs')
      assertMatches(native.rows, bruteForce(q, nq, d, nd, dim, cosine), 25, `native, cosine ${cosine}`)
      assert.deepEqual(native.rows.map((r) => r.map(([doc]) => doc)), ops.rows.map((r) => r.map(([doc]) => doc)))
    }
    assert.equal(addon.liveTensors(), live)
  })

  it('on torch with CUDA: the native calls keep the queries and the running top-k on the GPU', async (t) => {
    await useTestBackend()
    const addon = torchAddon()
    if (!addon) return t.skip('the torch backend is not active (CODIEMB_BACKEND=torch)')
    if (!addon.info().cudaAvailable) return t.skip('no CUDA device (this addon or machine)')
    const dim = 32
    const nq = 20
    const nd = 1000
    const q = randomMatrix(nq, dim, 14)
    const d = randomMatrix(nd, dim, 15)
    const live = addon.liveTensors()
    for (const cosine of [true, false]) {
      const queries = addon.searchQueries(q, nq, dim, cosine, 'cuda')
      const workspace = addon.op('aten::empty', 'memory_format')([300, dim], 'float32', null, 'cuda')
      let running: ReturnType<TorchAddon['searchChunk']> = []
      for (let start = 0; start < nd; start += 300) {
        const n = Math.min(300, nd - start)
        const next = addon.searchChunk(queries, d.subarray(start * dim, (start + n) * dim), n, dim, start, 25, 8, cosine, running, workspace)
        for (const h of running) addon.release(h)
        running = next
      }
      assert.ok([queries, ...running].every((h) => addon.device(h).startsWith('cuda')), 'queries and running top-k on the GPU')
      const rows: [number, number][][] = []
      for (let b = 0; b < running.length; b += 2) {
        const [r, kept] = addon.shape(running[b]!) as [number, number]
        const scores = addon.toArray(running[b]!) as Float32Array
        const docs = addon.toArray(running[b + 1]!) as Int32Array
        for (let i = 0; i < r; i++) rows.push(Array.from({length: kept}, (_, j) => [docs[i * kept + j]!, scores[i * kept + j]!]))
      }
      assertMatches(rows, bruteForce(q, nq, d, nd, dim, cosine), 25, `cuda, cosine ${cosine}`)
      for (const h of [queries, workspace, ...running]) addon.release(h)
    }
    assert.equal(addon.liveTensors(), live)
  })
})
