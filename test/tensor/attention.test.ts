import assert from 'node:assert/strict'
import {describe, test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import * as ops from '../../src/tensor/ops.js'
import {TEST_BACKEND, useTestBackend} from '../helpers/env.js'
import {relativeError, seededTensor as rand} from '../helpers/tensor-compare.js'
import type {TorchBackend} from '../../src/tensor/torch/backend.js'

// ops.attention on the backend under test (cpu: the chunked composite; torch: the native kernel)
// against today's formulation, softmax(q kᵀ·scale + mask) v written with plain tfjs ops, whose
// gradients tfjs derives op by op and whose tape keeps the [.., Tq, Tk] probabilities.

/** Today's attention: every intermediate on the tape. `keep` is an explicit dropout mask (already scaled). */
function reference(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number, maskBias?: tf.Tensor, keep?: tf.Tensor): tf.Tensor {
  let s = tf.mul(tf.matMul(q, k, false, true), scale)
  if (maskBias) s = tf.add(s, maskBias)
  let p = tf.softmax(s)
  if (keep) p = tf.mul(p, keep)
  return tf.matMul(p, v)
}

interface Case {
  q: number[]
  kv: number[]
  /** Shape of the mask and the keys it masks per leading index (a padding mask), or a full mask. */
  mask?: number[]
  blockRows?: number
  scale?: number
}

/** Runs a case through ops.attention and the reference: output and gradients of a weighted sum. */
function compare(c: Case, seed: number): {labels: string[]; errors: number[]} {
  return tf.tidy(() => {
    const q = rand(c.q, seed)
    const k = rand(c.kv, seed + 1)
    const v = tf.mul(rand(c.kv, seed + 2), 2)
    const weights = rand(c.q, seed + 3)
    const scale = c.scale ?? 1 / Math.sqrt(c.q[c.q.length - 1]!)
    let mask: tf.Tensor | undefined
    if (c.mask) {
      // -1e9 where a pseudo-random draw says "padding", never on key 0 (every row keeps a key).
      const draws = rand(c.mask, seed + 4).dataSync()
      const tk = c.mask[c.mask.length - 1]!
      mask = tf.tensor(draws.map((x, i) => (i % tk !== 0 && x > 0.3 ? -1e9 : 0)), c.mask)
    }
    const lossOf = (f: (...xs: tf.Tensor[]) => tf.Tensor) => (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), weights)) as tf.Scalar
    const ours = (qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor, mi?: tf.Tensor) => ops.attention(qi, ki, vi, {maskBias: mi, scale, blockRows: c.blockRows})
    const theirs = (qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor, mi?: tf.Tensor) => reference(qi, ki, vi, scale, mi)
    const inputs = mask ? [q, k, v, mask] : [q, k, v]
    const a = [ours(q, k, v, mask), ...tf.grads(lossOf(ours))(inputs)]
    const b = [theirs(q, k, v, mask), ...tf.grads(lossOf(theirs))(inputs)]
    const labels = ['out', 'dq', 'dk', 'dv', 'dmask'].slice(0, a.length)
    return {labels, errors: a.map((t, i) => relativeError(t, b[i]!))}
  })
}

/** Values and gradients of a tensor, read back. */
const read = (ts: tf.Tensor[]) => ts.map((t) => Array.from(t.dataSync()))

describe(`attention (${TEST_BACKEND})`, () => {
  test('attention: values and gradients equal the plain formulation within 1e-5 relative, padded or not, one block or many', async (t) => {
    await useTestBackend()
    const cases: Record<string, Case> = {
      'unpadded, one block': {q: [2, 3, 9, 8], kv: [2, 3, 9, 8]},
      'unpadded, blocks of 4 rows': {q: [2, 3, 9, 8], kv: [2, 3, 9, 8], blockRows: 4},
      'padding mask [B,1,1,T], blocks of 2': {q: [3, 2, 7, 8], kv: [3, 2, 7, 8], mask: [3, 1, 1, 7], blockRows: 2},
      'padding mask [B,1,1,T], one block, scale 1': {q: [3, 2, 7, 8], kv: [3, 2, 7, 8], mask: [3, 1, 1, 7], scale: 1},
      'key mask of rank 1': {q: [2, 2, 5, 4], kv: [2, 2, 5, 4], mask: [5], blockRows: 3},
      'full mask [T,T] (a row per query)': {q: [2, 2, 6, 4], kv: [2, 2, 6, 4], mask: [6, 6], blockRows: 4},
      'full mask [B,1,T,T]': {q: [2, 3, 6, 4], kv: [2, 3, 6, 4], mask: [2, 1, 6, 6], blockRows: 5},
      'cross attention, Tq != Tk, rank 3': {q: [4, 5, 8], kv: [4, 11, 8], mask: [4, 1, 11], blockRows: 2},
    }
    const worst: Record<string, number> = {}
    let seed = 10
    for (const [name, c] of Object.entries(cases)) {
      const {labels, errors} = compare(c, (seed += 10))
      errors.forEach((e, i) => {
        worst[labels[i]!] = Math.max(worst[labels[i]!] ?? 0, e)
        assert.ok(e <= 1e-5, `${name}: ${labels[i]} differs by ${e.toExponential(2)} relative (> 1e-5)`)
      })
    }
    t.diagnostic(`max relative error vs the plain formulation: ${Object.entries(worst).map(([k, e]) => `${k} ${e.toExponential(1)}`).join(', ')}`)
  })

  test('attention: dropout keeps ≈ 1 − rate, the seed fixes the mask, and the backward pass uses the forward mask', async () => {
    await useTestBackend()
    const [B, H, T, rate] = [2, 4, 32, 0.3]
    tf.tidy(() => {
      const q = rand([B, H, T, 8], 1)
      const k = rand([B, H, T, 8], 2)
      // v = identity over keys: out[i, j] = p_ij · keep_ij / (1 − rate), so the output shows the mask.
      const v = tf.tile(tf.reshape(tf.eye(T), [1, 1, T, T]), [B, H, 1, 1])
      const weights = rand([B, H, T, T], 3)
      const run = (seed: number) => ops.attention(q, k, v, {dropoutRate: rate, seed, blockRows: 5})
      const out = run(7)
      const values = out.dataSync()
      let kept = 0
      for (const x of values) if (x !== 0) kept++
      const fraction = kept / values.length
      assert.ok(Math.abs(fraction - (1 - rate)) < 0.03, `kept fraction ${fraction} (expected ≈ ${1 - rate})`)
      assert.deepEqual(Array.from(run(7).dataSync()), Array.from(values), 'the same seed draws the same mask')
      assert.notDeepEqual(Array.from(run(8).dataSync()), Array.from(values), 'another seed draws another mask')
      // Blocks draw different masks (a mask repeated per block would pass the statistics above).
      const keepOf = (row: number) => Array.from(values.slice(row * T, (row + 1) * T)).map((x) => x !== 0)
      assert.notDeepEqual(keepOf(0), keepOf(5), 'rows 0 and 5 (blocks 0 and 1) keep the same keys')

      // Gradients equal those of the plain formulation under the forward's own mask: the backward
      // pass redrew exactly that mask.
      const keep = tf.mul(tf.cast(tf.notEqual(out, 0), 'float32'), 1 / (1 - rate))
      const loss = (f: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), weights)) as tf.Scalar
      const ours = tf.grads(loss((a, b, c) => ops.attention(a, b, c, {dropoutRate: rate, seed: 7, blockRows: 5})))([q, k, v])
      const theirs = tf.grads(loss((a, b, c) => reference(a, b, c, 1 / Math.sqrt(8), undefined, keep)))([q, k, v])
      ours.forEach((g, i) => {
        const e = relativeError(g, theirs[i]!)
        assert.ok(e <= 1e-5, `d${'qkv'[i]} under dropout differs by ${e.toExponential(2)} relative from the plain formulation with the forward's mask`)
      })
      // Bit-exact reruns (a resumed run replays its seeds): the same seed gives the same gradients.
      const again = tf.grads(loss((a, b, c) => ops.attention(a, b, c, {dropoutRate: rate, seed: 7, blockRows: 5})))([q, k, v])
      assert.deepEqual(read(again), read(ours), 'gradients under one seed are bit-identical across runs')
    })
  })

  test('attention: the tensors kept for backward grow linearly in T (the plain formulation: quadratically)', async (t) => {
    await useTestBackend()
    const [B, H, d] = [1, 2, 8]
    /** Bytes alive at the end of the forward pass under a gradient tape, less the inputs'. */
    const keptBytes = (T: number, f: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, m: tf.Tensor) => tf.Tensor): number => {
      let kept = 0
      tf.tidy(() => {
        const [q, k, v] = [1, 2, 3].map((s) => rand([B, H, T, d], s))
        const mask = tf.zeros([B, 1, 1, T])
        tf.grads((qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) => {
          const before = tf.memory().numBytes
          const y = f(qi, ki, vi, mask)
          kept = tf.memory().numBytes - before + stashedBytes(y)
          return tf.sum(y) as tf.Scalar
        })([q, k, v])
      })
      return kept
    }
    const ours = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, m: tf.Tensor) => ops.attention(q, k, v, {maskBias: m, blockRows: 16})
    const theirs = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, m: tf.Tensor) => reference(q, k, v, 1 / Math.sqrt(d), m)
    const [ours256, ours512] = [keptBytes(256, ours), keptBytes(512, ours)]
    const [theirs256, theirs512] = [keptBytes(256, theirs), keptBytes(512, theirs)]
    t.diagnostic(`kept for backward, T=256 → 512: ours ${ours256} → ${ours512} bytes (×${(ours512 / ours256).toFixed(2)}); plain ${theirs256} → ${theirs512} (×${(theirs512 / theirs256).toFixed(2)})`)
    // O(B·H·T·d): the output and one log-sum-exp per row, plus the tape's references to q, k, v and
    // the output (tfjs counts each reference's bytes, though they share the data).
    assert.ok(ours512 / ours256 < 2.2, `kept bytes grow ×${(ours512 / ours256).toFixed(2)} from T=256 to 512 (linear is ×2)`)
    const linearBound = B * H * 512 * (5 * d + 2) * 4
    assert.ok(ours512 <= linearBound, `kept ${ours512} bytes at T=512: more than q, k, v, the output and one float per row (${linearBound})`)
    assert.ok(theirs512 / theirs256 > 3.5, `the plain formulation's kept bytes grow ×${(theirs512 / theirs256).toFixed(2)} (the test would not see a quadratic path)`)
  })

  test('attention (torch): each kernel this libtorch has on CPU matches the chunked path; a kernel it lacks is refused by name', {skip: TEST_BACKEND !== 'torch' && 'torch pass only (CODIEMB_BACKEND=torch)'}, async (t) => {
    await useTestBackend()
    const backend = tf.backend() as unknown as TorchBackend
    const {version, attentionKernels} = backend.addon.info()
    const run = (kernel: TorchBackend['attentionKernel']) => {
      backend.attentionKernel = kernel
      try {
        return tf.tidy(() => {
          const [q, k, v, w] = [1, 2, 3, 4].map((s) => rand([2, 4, 24, 16], s))
          const mask = tf.tensor4d(Array.from({length: 48}, (_, i) => (i >= 40 ? -1e9 : 0)), [2, 1, 1, 24])
          const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => ops.attention(a, b, c, {maskBias: mask, blockRows: 7})
          const out = [f(q!, k!, v!), ...tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), w!)) as tf.Scalar)([q!, k!, v!])]
          return {path: backend.lastAttentionPath, out: out.map((x) => tf.keep(x))}
        })
      } finally {
        backend.attentionKernel = 'auto'
      }
    }
    const chunked = run('chunked')
    assert.equal(chunked.path, 'chunked')
    if (!attentionKernels.includes('flash-cpu')) {
      assert.equal(run('auto').path, 'chunked', `libtorch ${version}: auto takes the chunked path`)
      assert.throws(() => run('efficient'), /attention kernel "efficient" needs libtorch >= 2\.6/)
      t.diagnostic(`libtorch ${version} has no fused attention kernels (they need >= 2.6): chunked only`)
    } else {
      const fused = run('flash-cpu')
      assert.equal(fused.path, 'flash-cpu')
      fused.out.forEach((x, i) => assert.ok(relativeError(x, chunked.out[i]!) <= 1e-5, `flash-cpu vs chunked [${i}]: ${relativeError(x, chunked.out[i]!)}`))
      assert.equal(run('auto').path, 'flash-cpu', 'auto picks the flash kernel on CPU with dropout 0')
      tf.dispose(fused.out)
    }
    assert.throws(() => run('nonsense' as never), /unknown attention kernel "nonsense"/)
    tf.dispose(chunked.out)
  })

  test('attention (torch): the chunked path in fused passes equals its composite form (values and gradients, dropout and mask, ≤ 1e-5 relative)', {skip: TEST_BACKEND !== 'torch' && 'torch pass only (CODIEMB_BACKEND=torch)'}, async () => {
    await useTestBackend()
    const backend = tf.backend() as unknown as TorchBackend
    const run = (kernel: TorchBackend['attentionKernel'], dropoutRate: number) => {
      backend.attentionKernel = kernel
      try {
        return tf.tidy(() => {
          const [q, k, v, w] = [5, 6, 7, 8].map((s) => rand([2, 3, 40, 16], s))
          const mask = tf.tensor4d(Array.from({length: 80}, (_, i) => (i % 40 >= 33 ? -1e9 : 0)), [2, 1, 1, 40])
          const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, m: tf.Tensor) => ops.attention(a, b, c, {maskBias: m, blockRows: 16, dropoutRate, seed: 11})
          const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, m: tf.Tensor) => tf.sum(tf.mul(f(a, b, c, m), w!)) as tf.Scalar)([q!, k!, v!, mask])
          return [f(q!, k!, v!, mask), ...grads].map((x) => tf.keep(x))
        })
      } finally {
        backend.attentionKernel = 'auto'
      }
    }
    for (const rate of [0, 0.1]) {
      const fast = run('chunked', rate)
      const composite = run('chunked-composite', rate)
      fast.forEach((x, i) => {
        const e = relativeError(x, composite[i]!)
        assert.ok(e <= 1e-5, `dropout ${rate}: ${['out', 'dq', 'dk', 'dv', 'dmask'][i]} differs by ${e.toExponential(2)} relative`)
      })
      tf.dispose([...fast, ...composite])
    }
  })

  test('packedAttention: on a [B·T, 3·H] projection, values and gradients equal the plain formulation on its split heads; with dropout, those of attention() under the same seed', async () => {
    await useTestBackend()
    const [B, T, heads, d] = [3, 7, 2, 8]
    const H = heads * d
    const before = tf.memory().numTensors
    tf.tidy(() => {
      const qkv = rand([B * T, 3 * H], 5)
      const weights = rand([B * T, H], 6)
      const draws = rand([B, 1, 1, T], 7).dataSync()
      const mask = tf.tensor(draws.map((x, i) => (i % T !== 0 && x > 0.3 ? -1e9 : 0)), [B, 1, 1, T])
      const toHeads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, heads, d]), [0, 2, 1, 3])
      const unpacked = (x: tf.Tensor, f: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor) => {
        const [q, k, v] = tf.split(x, 3, 1).map(toHeads)
        return tf.reshape(tf.transpose(f(q!, k!, v!), [0, 2, 1, 3]), [B * T, H])
      }
      const loss = (f: (x: tf.Tensor) => tf.Tensor) => (x: tf.Tensor) => tf.sum(tf.mul(f(x), weights)) as tf.Scalar
      for (const maskBias of [mask, undefined]) {
        const ours = (x: tf.Tensor) => ops.packedAttention(x, {batch: B, heads, maskBias})
        const theirs = (x: tf.Tensor) => unpacked(x, (q, k, v) => reference(q, k, v, 1 / Math.sqrt(d), maskBias))
        for (const [name, a, b] of [['out', ours(qkv), theirs(qkv)], ['dqkv', tf.grad(loss(ours))(qkv), tf.grad(loss(theirs))(qkv)]] as const) {
          const e = relativeError(a, b)
          assert.ok(e <= 1e-5, `${maskBias ? 'padded' : 'unpadded'}: ${name} differs by ${e.toExponential(2)} relative`)
        }
      }
      const dropout = {dropoutRate: 0.25, seed: 11, maskBias: mask}
      const ours = (x: tf.Tensor) => ops.packedAttention(x, {batch: B, heads, ...dropout})
      const theirs = (x: tf.Tensor) => unpacked(x, (q, k, v) => ops.attention(q, k, v, dropout))
      for (const [name, a, b] of [['out', ours(qkv), theirs(qkv)], ['dqkv', tf.grad(loss(ours))(qkv), tf.grad(loss(theirs))(qkv)]] as const) {
        const e = relativeError(a, b)
        assert.ok(e <= 1e-5, `dropout 0.25, seed 11: ${name} differs by ${e.toExponential(2)} relative from attention() on the split heads`)
      }
      assert.throws(() => ops.packedAttention(qkv, {batch: 4, heads}), /qkv must be \[batch·tokens, 3·heads·d\]/)
      assert.throws(() => ops.packedAttention(qkv, {batch: B, heads: 5}), /qkv must be/)
      assert.throws(() => ops.packedAttention(qkv, {batch: B, heads, maskBias: tf.zeros([B, 1, 1, T + 1])}), /maskBias must broadcast to \[3,2,7,7\]/)
    })
    assert.equal(tf.memory().numTensors, before, 'tensors leaked')
  })

  test('attention: rejects shapes it cannot attend over', async () => {
    await useTestBackend()
    tf.tidy(() => {
      const x = tf.zeros([2, 3, 4, 8])
      assert.throws(() => ops.attention(x, tf.zeros([2, 3, 4, 6]), x), /k's last dim must equal q's/)
      assert.throws(() => ops.attention(x, x, tf.zeros([2, 3, 5, 8])), /same number of keys/)
      assert.throws(() => ops.attention(x, tf.zeros([1, 3, 4, 8]), x), /equal leading dims/)
      assert.throws(() => ops.attention(x, x, x, {maskBias: tf.zeros([2, 1, 1, 5])}), /maskBias must broadcast to \[2,3,4,4\]/)
      assert.throws(() => ops.attention(x, x, x, {dropoutRate: 1}), /dropout rate must be in \[0, 1\)/)
      assert.throws(() => ops.attention(x, x, x, {dropoutRate: 0.1, seed: 1.5}), /seed must be an integer/)
    })
  })
})

/** Bytes a torch kernel keeps with an output for its backward (ATen tensors tfjs does not count); 0 elsewhere. */
function stashedBytes(y: tf.Tensor): number {
  const backend = tf.backend() as unknown as {stashed?: (t: tf.TensorInfo) => unknown[] | undefined; addon?: {shape(h: unknown): number[]; dtype(h: unknown): string}}
  const kept = backend.stashed?.(y as unknown as tf.TensorInfo) ?? []
  const width: Record<string, number> = {int64: 8, float64: 8, float32: 4, int32: 4, bfloat16: 2, float16: 2, bool: 1, uint8: 1}
  return kept.reduce<number>((n, h) => n + tf.util.sizeFromShape(backend.addon!.shape(h)) * (width[backend.addon!.dtype(h)] ?? 4), 0)
}
