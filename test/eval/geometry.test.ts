import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {centredSingularValues, measureGeometry, meanRandomPairCosine, spectrumStats, symmetricEigenvalues} from '../../src/eval/geometry.js'
import {loadEncoder} from '../../src/model/encoder.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'

describe('geometry', () => {
  it('finds the eigenvalues of a symmetric matrix', () => {
    // [[2,1,0],[1,2,0],[0,0,5]] has eigenvalues 1, 3, 5
    const e = [...symmetricEigenvalues(Float64Array.from([2, 1, 0, 1, 2, 0, 0, 0, 5]), 3)].sort((a, b) => a - b)
    for (const [got, want] of e.map((v, i) => [v, [1, 3, 5][i]])) assert.ok(Math.abs(got - want) < 1e-10, `${got} vs ${want}`)
  })

  it('computes singular values, effective rank, SVD entropy and condition number', () => {
    // rows ±(3,0) and ±(0,1): centred already, σ = (sqrt(18), sqrt(2))
    const rows = Float32Array.from([3, 0, -3, 0, 0, 1, 0, -1])
    const s = centredSingularValues(rows, 4, 2)
    assert.ok(Math.abs(s[0] - Math.sqrt(18)) < 1e-9 && Math.abs(s[1] - Math.sqrt(2)) < 1e-9)
    const st = spectrumStats(s)
    assert.ok(Math.abs(st.condition_number - 3) < 1e-9)
    const p = [0.75, 0.25]
    assert.ok(Math.abs(st.effective_rank - Math.exp(-(p[0] * Math.log(p[0]) + p[1] * Math.log(p[1])))) < 1e-9)
    const q = [0.9, 0.1]
    assert.ok(Math.abs(st.svd_entropy + (q[0] * Math.log(q[0]) + q[1] * Math.log(q[1]))) < 1e-9)
    // equal singular values: effective rank = dimension
    assert.ok(Math.abs(spectrumStats([2, 2, 2, 2]).effective_rank - 4) < 1e-12)
  })

  it('measures isotropy: 1 for identical directions, near 0 for random ones', () => {
    const same = Float32Array.from({length: 50 * 4}, (_, i) => [1, 2, 3, 4][i % 4])
    assert.ok(Math.abs(meanRandomPairCosine(same, 50, 4) - 1) < 1e-9)
    let seed = 3
    const rand = Float32Array.from({length: 400 * 32}, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 30) - 1)
    assert.ok(Math.abs(meanRandomPairCosine(rand, 400, 32)) < 0.05)
  })

  it('measures token-state geometry of the bert-tiny fixture without leaking tensors', async (t) => {
    const dir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!dir) return
    await useTestBackend()
    const encoder = await loadEncoder(dir, {registry: BUILTINS})
    try {
      const texts = ['一个女孩在给她的头发做发型。', 'A man is playing a guitar.', '一群男人在海滩上踢足球。', 'The cat sits on the mat.']
      const emb = await encoder.encode(texts)
      const rows = new Float32Array(emb.length * encoder.hiddenSize)
      emb.forEach((v, i) => rows.set(v, i * encoder.hiddenSize))
      const before = tf.memory().numTensors
      const g = await measureGeometry({rows, count: emb.length, dim: encoder.hiddenSize}, {encoder, texts, maxLength: 64})
      assert.equal(tf.memory().numTensors, before)
      assert.ok(g.tokens! > 10)
      assert.ok(g.effective_rank! > 1 && g.effective_rank! <= encoder.hiddenSize)
      assert.ok(g.condition_number! >= 1)
      assert.ok(g.isotropy_mean_cosine > -1 && g.isotropy_mean_cosine <= 1)
      assert.ok(Number.isFinite(g.token_mean_pairwise_cosine!))
    } finally {
      encoder.dispose()
    }
  })
})
