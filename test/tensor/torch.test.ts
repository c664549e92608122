import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {describe, test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import '@tensorflow/tfjs-backend-cpu'
import torchPlugin, {torchAddonPath} from '../../src/tensor/backends/torch.js'
import {TEST_BACKEND, useTestBackend} from '../helpers/env.js'
import * as ops from '../../src/tensor/ops.js'
import '../../src/tensor/gradients.js' // tfjs kernel gradients (tfjs-core ships none)

// These tests compare the torch backend against tfjs's cpu backend in one process, so they run in
// the torch pass of scripts/run-tests.mjs (CODIEMB_BACKEND=torch) and skip elsewhere with the reason.
const addonBuilt = existsSync(torchAddonPath())
const skip = !addonBuilt
  ? `torch addon not built (${torchAddonPath()} missing): apt-get install libtorch-dev libopenblas0-pthread && npm run build:torch`
  : TEST_BACKEND !== 'torch'
    ? 'torch backend tests run in the torch pass (CODIEMB_BACKEND=torch)'
    : false

/** Deterministic pseudo-random floats in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  let s = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = s / 2 ** 31 - 1
  }
  return out
}
const r = (shape: number[], seed: number) => tf.tensor(rand(tf.util.sizeFromShape(shape), seed), shape)

interface Result {
  shape: number[]
  dtype: string
  values: number[]
}

/** Runs `fn` on `backend` and returns its outputs as plain arrays (inputs are created inside fn). */
function runOn(backend: string, fn: () => tf.Tensor | tf.Tensor[]): Result[] {
  tf.setBackend(backend)
  return tf.tidy(() => {
    const out = fn()
    return (Array.isArray(out) ? out : [out]).map((t) => ({shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync() as ArrayLike<number>)}))
  })
}

function assertClose(actual: Result[], expected: Result[], label: string, tol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${label}: number of outputs`)
  actual.forEach((a, i) => {
    const e = expected[i]!
    assert.deepEqual(a.shape, e.shape, `${label}[${i}]: shape`)
    assert.equal(a.dtype, e.dtype, `${label}[${i}]: dtype`)
    a.values.forEach((v, j) => {
      const w = e.values[j]!
      if (Number.isNaN(w)) return assert.ok(Number.isNaN(v), `${label}[${i}][${j}]: expected NaN, got ${v}`)
      assert.ok(Math.abs(v - w) <= tol * Math.max(1, Math.abs(w)), `${label}[${i}][${j}]: torch ${v} vs cpu ${w}`)
    })
  })
}

/** Compares fn on torch against fn on cpu. */
function matchesCpu(label: string, fn: () => tf.Tensor | tf.Tensor[], tol?: number): void {
  const expected = runOn('cpu', fn)
  const actual = runOn('torch', fn)
  assertClose(actual, expected, label, tol)
}

const CASES: Record<string, () => tf.Tensor | tf.Tensor[]> = {
  matMul: () => tf.matMul(r([3, 4], 1), r([4, 5], 2)),
  matMulTransposed: () => tf.matMul(r([4, 3], 1), r([5, 4], 2), true, true),
  batchMatMulBroadcast: () => tf.matMul(r([2, 3, 3, 4], 1), r([3, 4, 2], 2)),
  fusedMatMulBiasRelu: () => tf.fused.matMul({a: r([3, 4], 1), b: r([5, 4], 2), transposeB: true, bias: r([5], 3), activation: 'relu'}),
  arithmetic: () => [tf.add(r([2, 3], 1), r([3], 2)), tf.sub(r([2, 3], 1), 0.5), tf.mul(r([2, 1], 1), r([1, 3], 2)), tf.div(r([2, 3], 1), tf.add(r([2, 3], 2), 2))],
  intArithmetic: () => [tf.add(tf.tensor1d([1, 2, 3], 'int32'), 4), tf.floorDiv(tf.tensor1d([7, -7, 9], 'int32'), tf.tensor1d([2, 2, -4], 'int32')), tf.mod(tf.tensor1d([7, -7, 9], 'int32'), 4)],
  unary: () => {
    const x = r([2, 5], 3)
    const pos = tf.add(tf.abs(x), 0.1)
    return [tf.exp(x), tf.log(pos), tf.sqrt(pos), tf.rsqrt(pos), tf.erf(x), tf.tanh(x), tf.sigmoid(x), tf.neg(x), tf.abs(x), tf.square(x),
      tf.reciprocal(pos), tf.relu(x), tf.softplus(x), tf.log1p(pos), tf.sign(x), tf.floor(tf.mul(x, 3)), tf.round(tf.mul(x, 3)), tf.elu(x), tf.leakyRelu(x, 0.1), tf.step(x, 0.5)]
  },
  powMaxMin: () => [tf.pow(tf.add(tf.abs(r([2, 3], 1)), 0.5), r([2, 3], 2)), tf.pow(r([2, 3], 1), tf.scalar(2)), tf.maximum(r([2, 3], 1), r([2, 3], 2)), tf.minimum(r([2, 3], 1), 0), tf.squaredDifference(r([3], 1), r([3], 2))],
  comparisons: () => {
    const a = r([2, 4], 1)
    const b = r([2, 4], 2)
    return [tf.equal(a, a), tf.notEqual(a, b), tf.greater(a, b), tf.greaterEqual(a, 0), tf.less(a, b), tf.lessEqual(a, 0), tf.logicalAnd(tf.greater(a, 0), tf.greater(b, 0)), tf.logicalOr(tf.greater(a, 0), tf.greater(b, 0)), tf.logicalNot(tf.greater(a, 0))]
  },
  whereSelect: () => [tf.where(tf.greater(r([2, 3], 1), 0), r([2, 3], 2), r([2, 3], 3)), tf.where(tf.greater(r([3], 1), 0), r([2, 3], 2), 0.5)],
  reductions: () => {
    const x = r([2, 3, 4], 5)
    return [tf.sum(x), tf.sum(x, 1), tf.sum(x, [0, 2], true), tf.mean(x, -1), tf.max(x, 1), tf.min(x, [0, 1]), tf.prod(x, 2), tf.argMax(x, 2), tf.argMin(x, 0),
      tf.sum(tf.tensor1d([1, 2, 3], 'int32')), tf.sum(tf.greater(x, 0)), tf.all(tf.greater(x, -2), 1), tf.any(tf.greater(x, 0.9), 2), tf.logSumExp(x, 1)]
  },
  softmaxes: () => [tf.softmax(r([3, 5], 1)), tf.logSoftmax(r([3, 5], 2)), tf.softmax(r([2, 2, 4], 3))],
  cumsum: () => [tf.cumsum(r([2, 4], 1), 1), tf.cumsum(r([2, 4], 1), 1, true, true), tf.cumsum(tf.tensor1d([1, 2, 3], 'int32'))],
  shapes: () => {
    const x = r([2, 3, 4], 7)
    return [tf.reshape(x, [6, 4]), tf.transpose(x, [2, 0, 1]), tf.expandDims(x, 1), tf.squeeze(tf.reshape(x, [1, 2, 3, 4])), tf.tile(x, [1, 2, 1]), tf.reverse(x, [0, 2]), tf.broadcastTo(r([1, 4], 1), [3, 4])]
  },
  slicing: () => {
    const x = r([4, 5, 3], 8)
    return [tf.slice(x, [1, 0, 1], [2, -1, 2]), tf.stridedSlice(x, [0, 1], [4, 5], [2, 2]), tf.stridedSlice(x, [3, 0, 0], [0, 5, 3], [-1, 1, 1]),
      tf.stridedSlice(x, [1], [2], [1], 0, 0, 0, 0, 1), tf.stridedSlice(x, [0, 0, 2], [0, 0, 3], [1, 1, 1], 3, 3)]
  },
  joins: () => {
    const a = r([2, 3], 1)
    const b = r([2, 2], 2)
    return [tf.concat([a, b], 1), tf.concat([a, a], 0), tf.stack([a, a, a], 1), ...tf.unstack(a, 1), ...tf.split(r([4, 6], 3), [1, 2, 3], 1), ...tf.split(r([4, 6], 3), 2, 0)]
  },
  pads: () => [tf.pad(r([2, 3], 1), [[1, 0], [2, 1]]), tf.pad(r([2, 3], 1), [[0, 1], [0, 0]], 7), tf.mirrorPad(r([3, 4], 2), [[1, 1], [2, 0]], 'reflect'), tf.mirrorPad(r([3, 4], 2), [[1, 0], [0, 2]], 'symmetric')],
  gathers: () => {
    const x = r([5, 4], 1)
    const idx = tf.tensor1d([4, 0, 2, 2], 'int32')
    return [tf.gather(x, idx), tf.gather(x, tf.tensor1d([3, 0, 1], 'int32'), 1), tf.gather(r([2, 5, 3], 2), tf.tensor2d([[0, 4], [1, 1]], [2, 2], 'int32'), 1, 1), tf.gather(x, tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32')),
      tf.gatherND(r([3, 4, 2], 3), tf.tensor2d([[0, 1], [2, 3]], [2, 2], 'int32')), tf.scatterND(tf.tensor2d([[0], [2], [0]], [3, 1], 'int32'), r([3, 2], 4), [4, 2]),
      tf.unsortedSegmentSum(r([5, 3], 5), tf.tensor1d([1, 0, 1, 3, 0], 'int32'), 4)]
  },
  creation: () => [tf.oneHot(tf.tensor1d([0, 3, -1, 2], 'int32'), 4), tf.oneHot(tf.tensor1d([1], 'int32'), 3, 5, -1), tf.range(0, 7, 2), tf.range(1, 0, -0.25), tf.range(0, 5, 1, 'int32'),
    tf.fill([2, 3], 1.5), tf.fill([2], 4, 'int32'), tf.zerosLike(r([2, 2], 1)), tf.onesLike(tf.tensor1d([1, 2], 'int32')), tf.linspace(0, 1, 5)],
  casts: () => [tf.cast(r([4], 1), 'int32'), tf.cast(tf.tensor1d([0, 2, -1], 'int32'), 'bool'), tf.cast(tf.tensor1d([true, false], 'bool'), 'float32'), tf.clipByValue(r([5], 2), -0.3, 0.4)],
  topk: () => {
    const t = tf.topk(r([3, 6], 9), 3)
    return [t.values, t.indices]
  },
  einsum: () => tf.einsum('bij,bjk->bik', r([2, 3, 4], 1), r([2, 4, 2], 2)),
}

describe('torch backend', {skip}, () => {
  test('torch: kernels match the cpu backend (values, shapes, dtypes)', async () => {
    await useTestBackend()
    for (const [label, fn] of Object.entries(CASES)) matchesCpu(label, fn)
  })

  test('torch: gradients of a transformer-style block match the cpu backend', async () => {
    await useTestBackend()
    const block = () => {
      const x = r([2, 4, 6], 11)
      const w = r([6, 6], 12)
      const emb = r([10, 6], 13)
      const ids = tf.tensor2d([[1, 2, 3, 0], [4, 4, 9, 0]], [2, 4], 'int32')
      const g = tf.grads((xi: tf.Tensor, wi: tf.Tensor, ei: tf.Tensor) => {
        const h = tf.add(xi, tf.gather(ei, ids))
        const q = tf.reshape(tf.matMul(tf.reshape(h, [8, 6]), wi), [2, 4, 2, 3])
        const qh = tf.transpose(q, [0, 2, 1, 3])
        const probs = tf.softmax(tf.add(tf.matMul(qh, qh, false, true), tf.reshape(tf.tensor1d([0, 0, 0, -1e9, 0, 0, 0, -1e9]), [2, 1, 1, 4])))
        const ctx = tf.reshape(tf.transpose(tf.matMul(probs, qh), [0, 2, 1, 3]), [2, 4, 6])
        const {mean, variance} = tf.moments(ctx, -1, true)
        const ln = tf.mul(tf.sub(ctx, mean), tf.rsqrt(tf.add(variance, 1e-12)))
        const act = tf.mul(tf.mul(0.5, ln), tf.add(1, tf.erf(tf.mul(ln, Math.SQRT1_2))))
        const pooled = tf.div(tf.sum(tf.slice(act, [0, 0, 0], [2, 3, 6]), 1), 3)
        const norm = tf.div(pooled, tf.norm(pooled, 'euclidean', -1, true))
        const sim = tf.matMul(norm, norm, false, true)
        return tf.neg(tf.mean(tf.logSoftmax(tf.mul(sim, 20))))
      })
      return g([x, w, emb])
    }
    matchesCpu('block gradients', block, 2e-4)
  })

  test('torch: fused ops match their composites, forward and backward', async () => {
    await useTestBackend()
    const fused = () => {
      const q = r([2, 2, 4, 3], 21)
      const k = r([2, 2, 4, 3], 22)
      const v = r([2, 2, 4, 3], 23)
      const mask = tf.reshape(tf.tensor1d([0, 0, 0, -1e9, 0, 0, -1e9, -1e9]), [2, 1, 1, 4])
      const gamma = r([3], 24)
      const beta = r([3], 25)
      const x = r([2, 4, 3], 26)
      const [dq, dk, dv, dg, db, dx] = tf.grads((qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor, xi: tf.Tensor) => {
        const att = ops.attention(qi, ki, vi, {maskBias: mask})
        const plain = ops.attention(qi, ki, vi, {scale: 0.7})
        const ln = ops.layerNorm(tf.add(xi, tf.slice(tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [2, 4, 6]), [0, 0, 0], [2, 4, 3])), gi, bi, 1e-5)
        return tf.add(tf.sum(tf.mul(ops.gelu(ln), r([2, 4, 3], 27))), tf.sum(tf.mul(ops.gelu(plain, 'tanh'), r([2, 2, 4, 3], 28))))
      })([q, k, v, gamma, beta, x])
      const maskGrad = tf.grad((m: tf.Tensor) => tf.sum(tf.mul(ops.attention(q, k, v, {maskBias: m}), r([2, 2, 4, 3], 29))))(tf.zeros([2, 1, 1, 4]))
      return [ops.attention(q, k, v, {maskBias: mask}), ops.layerNorm(x, gamma, beta, 1e-5), ops.gelu(x), dq!, dk!, dv!, dg!, db!, dx!, maskGrad]
    }
    tf.setBackend('torch')
    assert.ok(ops.fusedKernelsActive(), 'torch registers the fused kernels')
    tf.setBackend('cpu')
    assert.ok(!ops.fusedKernelsActive(), 'cpu runs the composites')
    matchesCpu('fused ops', fused, 2e-4)
  })

  test('torch: fused dropout keeps about 1-rate of the elements, scaled, and backprops through its mask', async () => {
    await useTestBackend()
    tf.tidy(() => {
      const x = tf.ones([200, 50])
      const [y, dx] = (() => {
        let out: tf.Tensor | undefined
        const g = tf.grad((xi: tf.Tensor) => {
          out = tf.keep(ops.dropout(xi, 0.25, 7))
          return tf.sum(tf.mul(out, 3))
        })(x)
        return [out!, g]
      })()
      const ys = y.dataSync()
      const ds = dx.dataSync()
      let kept = 0
      for (let i = 0; i < ys.length; i++) {
        if (ys[i] !== 0) {
          kept++
          assert.ok(Math.abs(ys[i]! - 1 / 0.75) < 1e-6)
          assert.ok(Math.abs(ds[i]! - 3 / 0.75) < 1e-5, 'gradient flows through kept elements')
        } else assert.equal(ds[i], 0, 'no gradient through dropped elements')
      }
      const frac = kept / ys.length
      assert.ok(frac > 0.72 && frac < 0.78, `kept fraction ${frac}`)
      assert.equal(ops.dropout(x, 0), x, 'rate 0 is the identity')
      y.dispose()
    })
  })

  test('torch: the addon’s parallel dropout gives x·keep·scale bit for bit, which native_dropout_backward inverts; the seed fixes the mask', async () => {
    await useTestBackend()
    const {loadTorchAddon} = await import('../../src/tensor/torch/addon.js')
    const addon = loadTorchAddon()
    assert.ok(addon.dropout, 'this addon has dropout (npm run build:torch)')
    const n = 100_001 // odd: the last element is the low half of its pair's draw
    const x = addon.fromArray(rand(n, 3), [n], 'float32')
    const bits = (t: unknown) => Buffer.from((addon.toArray(t as any) as Float32Array).buffer)
    const [y, keep] = addon.dropout(x, 0.3, 11)
    const [y2, keep2] = addon.dropout(x, 0.3, 11)
    const [, other] = addon.dropout(x, 0.3, 12)
    const mask = addon.toArray(keep) as Uint8Array
    const fraction = mask.reduce((a, b) => a + b, 0) / n
    assert.ok(Math.abs(fraction - 0.7) < 0.01, `kept fraction ${fraction} (expected ≈ 0.7)`)
    assert.ok(bits(y).equals(bits(y2)) && Buffer.from(mask).equals(Buffer.from(addon.toArray(keep2) as Uint8Array)), 'the same seed draws the same mask')
    assert.ok(!Buffer.from(mask).equals(Buffer.from(addon.toArray(other) as Uint8Array)), 'another seed draws another mask')
    const mul = addon.op('aten::mul', 'Tensor')
    assert.ok(bits(y).equals(bits(addon.op('aten::mul', 'Scalar')(mul(x, keep), 1 / 0.7))), 'y = x · keep · 1/(1 − rate), bit for bit')
    const dy = addon.fromArray(rand(n, 4), [n], 'float32')
    const backward = addon.op('aten::native_dropout_backward')(dy, keep, 1 / 0.7)
    assert.ok(bits(backward).equals(bits(addon.op('aten::mul', 'Scalar')(mul(dy, keep), 1 / 0.7))), 'the backward scales dy by the same mask')
  })

  test('torch: fused AdamW update matches the composite update', async () => {
    await useTestBackend()
    const step = (): tf.Tensor[] => {
      const params = [tf.variable(r([3, 4], 31)), tf.variable(r([4], 32))]
      const m = [tf.variable(tf.mul(r([3, 4], 33), 0.1)), tf.variable(tf.zeros([4]))]
      const v = [tf.variable(tf.abs(r([3, 4], 34))), tf.variable(tf.zeros([4]))]
      const grads = [r([3, 4], 35), r([4], 36)]
      ops.adamwUpdate(params, grads, m, v, {learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-6, weightDecay: [0.01, 0], step: 3})
      const out = [...params, ...m, ...v].map((t) => tf.clone(t))
      for (const t of [...params, ...m, ...v]) t.dispose()
      return out
    }
    tf.setBackend('torch')
    assert.equal(typeof (tf.backend() as any).adamw, 'function', 'torch takes the native AdamW path')
    matchesCpu('adamw', step, 1e-5)
  })

  test('torch: AdamW updates variables that own their data in place, bit-identical to the out-of-place update', async () => {
    await useTestBackend()
    tf.setBackend('torch')
    const hp = {learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-6, weightDecay: [0.01, 0]}
    // Two identical sets of variables: `solo` own their data (in place from the first step), `shared`
    // are each also held by a clone, which forces fresh tensors and must keep the old values.
    const make = () => ({
      params: [tf.variable(r([3, 4], 31)), tf.variable(r([4], 32))],
      m: [tf.variable(tf.mul(r([3, 4], 33), 0.1)), tf.variable(tf.zeros([4]))],
      v: [tf.variable(tf.abs(r([3, 4], 34))), tf.variable(tf.zeros([4]))],
    })
    const solo = tf.tidy(make)
    const shared = make()
    const all = (s: ReturnType<typeof make>) => [...s.params, ...s.m, ...s.v]
    const before = all(shared).map((t) => tf.clone(t))
    const beforeValues = before.map((t) => Array.from(t.dataSync()))
    const soloIds = all(solo).map((t) => t.dataId)
    for (let step = 1; step <= 2; step++) {
      const grads = [r([3, 4], 35 + step), r([4], 37 + step)]
      ops.adamwUpdate(solo.params, grads, solo.m, solo.v, {...hp, step})
      ops.adamwUpdate(shared.params, grads, shared.m, shared.v, {...hp, step})
      tf.dispose(grads)
    }
    assert.deepEqual(all(solo).map((t) => t.dataId), soloIds, 'variables that own their data keep it (updated in place)')
    all(solo).forEach((t, i) => assert.deepEqual(Array.from(t.dataSync()), Array.from(all(shared)[i]!.dataSync()), `in place = out of place, bit for bit (tensor ${i})`))
    before.forEach((t, i) => assert.deepEqual(Array.from(t.dataSync()), beforeValues[i], `a tensor sharing a variable's data keeps its values (tensor ${i})`))
    assert.notDeepEqual(Array.from(solo.params[0]!.dataSync()), beforeValues[0], 'the parameters moved')
    tf.dispose([...all(solo), ...all(shared), ...before])
  })

  test('torch: ATen errors name the operator and shapes; a missing kernel names the kernel', async () => {
    await useTestBackend()
    tf.setBackend('torch')
    assert.throws(() => tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([2, 3]))), /aten::matmul\(\[2,3\]Float, \[2,3\]Float\).*cannot be multiplied/)
    assert.throws(() => tf.tidy(() => tf.conv2d(tf.ones([1, 2, 2, 1]) as tf.Tensor4D, tf.ones([1, 1, 1, 1]) as tf.Tensor4D, 1, 'same')), /Kernel 'Conv2D' not registered for backend 'torch'/)
    const {loadTorchAddon} = await import('../../src/tensor/torch/addon.js')
    const addon = loadTorchAddon()
    assert.throws(() => addon.op('aten::no_such_operator'), /op\(aten::no_such_operator\): .*Could not find schema/)
    assert.throws(() => addon.toArray({} as any), /toArray: expected a torch tensor handle/)
    const h = addon.fromArray(new Float32Array([1, 2]), [2], 'float32')
    addon.release(h)
    assert.throws(() => addon.toArray(h), /already released/)
    assert.throws(() => addon.fromArray(new Float32Array(3), [2, 2], 'float32'), /12 bytes but shape needs 16/)
  })

  test('torch: no tensors or backend data leak through kernels, gradients and fused ops', async () => {
    await useTestBackend()
    tf.setBackend('torch')
    const backend = tf.backend()
    const before = tf.memory().numTensors
    const idsBefore = backend.numDataIds()
    tf.tidy(() => {
      const x = r([2, 3, 4], 1)
      for (const fn of Object.values(CASES)) fn()
      tf.grads((a: tf.Tensor) => tf.sum(ops.layerNorm(ops.attention(a, a, a), tf.ones([4]), tf.zeros([4]), 1e-5)))([x])
    })
    assert.equal(tf.memory().numTensors, before, 'tfjs tensors')
    assert.equal(backend.numDataIds(), idsBefore, 'torch backend data ids')
  })

  test('torch: kernel temporaries are released as kernels return, not left to the GC', async () => {
    await useTestBackend()
    tf.setBackend('torch')
    const {loadTorchAddon} = await import('../../src/tensor/torch/addon.js')
    const addon = loadTorchAddon()
    const a = r([64, 64], 41)
    const b = r([64, 64], 42)
    // Node-API finalizers only run when JS yields, so a synchronous training step would keep every
    // temporary (SquaredDifference's difference, matmul+bias's product, ...) alive until it ends.
    tf.squaredDifference(a, b).dispose()
    const before = addon.liveTensors()
    for (let i = 0; i < 50; i++) {
      tf.squaredDifference(a, b).dispose()
      tf.tidy(() => tf.fused.matMul({a, b, bias: tf.ones([64]), activation: 'relu'}).dispose())
      tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(ops.attention(x, x, x, {maskBias: tf.zeros([32]), dropoutRate: 0.1})))(tf.reshape(a, [2, 2, 32, 32]))).dispose()
    }
    assert.equal(addon.liveTensors() - before, 0, 'live ATen tensor handles after 150 kernels calls')
    tf.dispose([a, b])
  })

  test('torch: a handle reports its host storage to V8 once (a view adds nothing); no CUDA statistics without CUDA', async () => {
    await useTestBackend()
    const {loadTorchAddon} = await import('../../src/tensor/torch/addon.js')
    const addon = loadTorchAddon()
    // V8 starts a collection each time external memory grows ~64 MB past its last mark-compact, so
    // every byte reported twice (a view of a storage already counted) costs collections for nothing.
    const bytes = 64 * 2 ** 20
    const external = () => addon.reportedBytes()
    const row = addon.fromArray(new Float32Array(1024), [1024], 'float32')
    const before = external()
    const base = addon.op('aten::repeat')(row, [bytes / 4 / 1024])
    const afterBase = external()
    const view = addon.op('aten::reshape')(base, [1024, bytes / 4 / 1024])
    const afterView = external()
    assert.ok(afterBase - before === bytes, `a fresh 64 MiB tensor reports its bytes (external grew ${afterBase - before})`)
    assert.ok(afterView === afterBase, `a view of it reports nothing more (external grew ${afterView - afterBase})`)
    addon.release(view)
    addon.release(base)
    assert.ok(afterBase - external() === bytes, `releasing the tensor gives its bytes back (${afterBase - external()})`)
    addon.release(row)
    const info = addon.info()
    if (!info.builtWithCuda) {
      assert.equal(addon.cudaMemoryStats(), null)
      assert.equal(addon.cudaResetPeakMemoryStats(), false)
      assert.equal(addon.cudaEmptyCache(), false)
    } else if (info.cudaAvailable) {
      const stats = addon.cudaMemoryStats()!
      assert.ok(stats.peakReserved >= stats.reserved && stats.peakAllocated >= stats.allocated, JSON.stringify(stats))
    }
  })

  test('torch: probe reports the libtorch version and devices; a CUDA request on a CPU build explains itself', async () => {
    const probe = await torchPlugin.probe()
    assert.equal(probe.available, true, probe.reason)
    assert.match(probe.reason, /^libtorch \d+\.\d+/)
    assert.match(String(probe.detail?.libtorchVersion), /^\d+\.\d+\.\d+/)
    const {loadTorchAddon, resolveTorchDevice} = await import('../../src/tensor/torch/index.js')
    const info = loadTorchAddon().info()
    assert.equal(resolveTorchDevice('cpu', info), 'cpu')
    assert.throws(() => resolveTorchDevice('tpu', info), /unknown torch device "tpu"/)
    if (!info.cudaAvailable) assert.throws(() => resolveTorchDevice('cuda', info), /cuda:?0? requested but/)
    else assert.equal(resolveTorchDevice('cuda', info), 'cuda:0')
  })

  test('torch: --precision bf16 runs matrix products in bfloat16 and keeps float32 tensors, weights and loss', async () => {
    // A backend's precision is fixed when it is registered, so the bf16 backend runs in its own process.
    const {spawnSync} = await import('node:child_process')
    const dist = (p: string) => new URL(`../../src/${p}`, import.meta.url).href
    const script = `
      import * as tf from '@tensorflow/tfjs-core'
      import {registerTorchBackend} from '${dist('tensor/torch/index.js')}'
      import * as ops from '${dist('tensor/ops.js')}'
      import '${dist('tensor/gradients.js')}'
      registerTorchBackend({device: 'cpu', precision: 'bf16'})
      await tf.setBackend('torch')
      let s = 7
      const rnd = (n) => Float32Array.from({length: n}, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31 - 1))
      const a = rnd(32 * 128), b = rnd(128 * 16)
      const exact = new Float64Array(32 * 16)
      for (let i = 0; i < 32; i++) for (let j = 0; j < 16; j++) { let acc = 0; for (let k = 0; k < 128; k++) acc += a[i * 128 + k] * b[k * 16 + j]; exact[i * 16 + j] = acc }
      const c = tf.matMul(tf.tensor2d(a, [32, 128]), tf.tensor2d(b, [128, 16]))
      const got = c.dataSync()
      let maxErr = 0
      for (let i = 0; i < got.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - exact[i]))
      const q = tf.tensor4d(rnd(2 * 2 * 8 * 4), [2, 2, 8, 4])
      const g = tf.grad((x) => tf.sum(ops.attention(x, x, x)))(q)
      const w = tf.variable(tf.tensor2d(rnd(128 * 16), [128, 16]))
      const {value, grads} = tf.variableGrads(() => tf.sum(tf.square(tf.matMul(tf.tensor2d(a, [32, 128]), w))), [w])
      console.log(JSON.stringify({dtype: c.dtype, maxErr, gradDtype: g.dtype, gradFinite: g.dataSync().every(Number.isFinite),
        lossDtype: value.dtype, wDtype: w.dtype, wGradDtype: grads[w.name].dtype}))
    `
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', cwd: new URL('../../..', import.meta.url).pathname})
    assert.equal(r.status, 0, r.stderr)
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!)
    assert.equal(out.dtype, 'float32')
    // bfloat16 keeps 8 bits of mantissa: products of 128 terms of size ~1 err by ~1e-2, float32 by ~1e-5.
    assert.ok(out.maxErr > 1e-4, `bf16 matmul is as exact as float32 (max error ${out.maxErr}): the products did not run in bfloat16`)
    assert.ok(out.maxErr < 0.5, `bf16 matmul error ${out.maxErr} is larger than bfloat16 rounding explains`)
    assert.deepEqual([out.gradDtype, out.lossDtype, out.wDtype, out.wGradDtype], ['float32', 'float32', 'float32', 'float32'])
    assert.equal(out.gradFinite, true)
  })
})
