import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'
import {averageRanks, pearson, rankDocuments, retrievalMetrics, spearman, stsScores} from '../../src/eval/metrics.js'
import {shared} from '../helpers/env.js'

interface RetrievalCase {
  run: Record<string, Record<string, number>>
  qrels: Record<string, Record<string, number>>
  expected: Record<string, number>
}
interface StsCase {
  pred: number[]
  gold: number[]
  expected: {spearman: number; pearson: number}
}

function loadFixture(path: string): {retrieval_metrics: RetrievalCase[]; sts_metrics: StsCase[]} {
  return JSON.parse(readFileSync(path, 'utf8'))
}

describe('retrieval metrics (trec_eval semantics)', () => {
  it('match the reference values in losses-and-metrics.json to 1e-6', (t) => {
    const p = shared(t, 'fixtures', 'losses-and-metrics.json')
    if (!p) return
    const fixture = loadFixture(p)
    assert.ok(fixture.retrieval_metrics.length > 0)
    for (const [i, c] of fixture.retrieval_metrics.entries()) {
      const cutoffs = [...new Set(Object.keys(c.expected).map((k) => Number(k.split('_at_')[1])))].sort((a, b) => a - b)
      const got = retrievalMetrics(c.run, c.qrels, {cutoffs}).scores
      for (const [key, want] of Object.entries(c.expected)) {
        assert.ok(Math.abs(got[key] - want) <= 1e-6, `case ${i} ${key}: got ${got[key]}, expected ${want}`)
      }
    }
  })

  it('break score ties by document id descending', () => {
    assert.deepEqual(rankDocuments({a: 1, c: 1, b: 1, z: 2}), ['z', 'c', 'b', 'a'])
    // with a tie, the relevant doc "a" ranks below "b": precision@1 is 0
    const r = retrievalMetrics({q: {a: 0.5, b: 0.5}}, {q: {a: 1}}, {cutoffs: [1, 2]}).scores
    assert.equal(r.precision_at_1, 0)
    assert.equal(r.mrr_at_2, 0.5)
  })

  it('skip queries without a relevant document and count unretrieved relevant ones', () => {
    const run = {q1: {d1: 3, d2: 2}, q2: {d1: 1}}
    const qrels = {q1: {d1: 1, d9: 1}, q2: {d1: 0}}
    const r = retrievalMetrics(run, qrels, {cutoffs: [1, 10]})
    assert.equal(r.evaluatedQueries, 1)
    assert.equal(r.scores.recall_at_10, 0.5)
    assert.equal(r.scores.map_at_10, 0.5)
    assert.equal(r.scores.precision_at_10, 0.1)
    // ideal DCG holds both relevant docs: 1 + 1/log2(3)
    assert.ok(Math.abs(r.scores.ndcg_at_10 - 1 / (1 + 1 / Math.log2(3))) < 1e-12)
  })

  it('ignore a retrieved document whose id equals the query id when asked', () => {
    const run = {q1: {q1: 9, d1: 1}}
    const qrels = {q1: {d1: 1}}
    assert.equal(retrievalMetrics(run, qrels, {cutoffs: [1]}).scores.ndcg_at_1, 0)
    assert.equal(retrievalMetrics(run, qrels, {cutoffs: [1], ignoreIdenticalIds: true}).scores.ndcg_at_1, 1)
  })
})

describe('STS metrics', () => {
  it('match the reference Pearson and Spearman values to 1e-6', (t) => {
    const p = shared(t, 'fixtures', 'losses-and-metrics.json')
    if (!p) return
    const fixture = loadFixture(p)
    assert.ok(fixture.sts_metrics.length > 0)
    for (const [i, c] of fixture.sts_metrics.entries()) {
      assert.ok(Math.abs(pearson(c.pred, c.gold) - c.expected.pearson) <= 1e-6, `case ${i} pearson`)
      assert.ok(Math.abs(spearman(c.pred, c.gold) - c.expected.spearman) <= 1e-6, `case ${i} spearman`)
    }
  })

  it('average the ranks of ties', () => {
    assert.deepEqual([...averageRanks([10, 20, 20, 5])], [2, 3.5, 3.5, 1])
  })

  it('score cosine, Euclidean and Manhattan similarities of embedding pairs', () => {
    const a = [new Float32Array([1, 0]), new Float32Array([1, 0]), new Float32Array([1, 0])]
    const b = [new Float32Array([1, 0]), new Float32Array([1, 1]), new Float32Array([0, 1])]
    const s = stsScores(a, b, [1, 0.5, 0])
    assert.ok(Math.abs(s.cosine_spearman - 1) < 1e-12)
    assert.ok(Math.abs(s.euclidean_spearman - 1) < 1e-12)
    assert.ok(Math.abs(s.manhattan_spearman - 1) < 1e-12)
    assert.equal(s.spearman, s.cosine_spearman)
    const reversed = stsScores(a, b, [0, 0.5, 1])
    assert.ok(Math.abs(reversed.cosine_spearman + 1) < 1e-12)
  })
})
