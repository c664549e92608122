import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {builtinRegistry} from '../../../src/builtins.js'
import type {Merger, TensorMergeInput} from '../../../src/merge/types.js'
import {MergeInputError} from '../../../src/merge/types.js'
import {DropMask, topKThreshold} from '../../../src/merge/numeric.js'
import {resolveMergerOptions} from '../../../src/merge/options.js'
import {weightsFromMagnitudes, resolveDeltaOptions} from '../../../src/merge/methods/delta.js'

/** Deterministic pseudo-random floats in [-1, 1). */
function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n)
  let s = seed * 2654435761
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) | 0
    out[i] = (((s >>> 8) / 16777216) * 2 - 1) * scale
  }
  return out
}
function add(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((x, i) => x + b[i]!)
}

async function method(name: string, raw: Record<string, unknown>, K: number): Promise<{m: Merger; o: unknown}> {
  const registry = await builtinRegistry()
  const entry = registry.entry('merger', name)
  const m = (await entry.load()) as Merger
  return {m, o: resolveMergerOptions(entry, m, raw, K)}
}

async function run(name: string, raw: Record<string, unknown>, input: Omit<TensorMergeInput, 'name' | 'shape'>): Promise<{out: Float32Array; weights: number[]}> {
  const {m, o} = await method(name, raw, input.checkpoints.length)
  const n = input.checkpoints[0]!.length
  const out = new Float32Array(n)
  const weights = m.mergeTensor({name: 'layer.weight', shape: [n], ...input}, out, o as Record<string, unknown>)
  return {out, weights}
}

function assertClose(actual: Float32Array, expected: Float32Array, tol = 1e-6, what = 'tensor'): void {
  assert.equal(actual.length, expected.length)
  let worst = 0
  let at = -1
  for (let i = 0; i < actual.length; i++) {
    const e = Math.abs(actual[i]! - expected[i]!)
    if (!(e <= worst)) {
      worst = e
      at = i
    }
  }
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} at ${at} (got ${actual[at]}, expected ${expected[at]})`)
}

const N = 1000
const base = randomArray(N, 1)
const d1 = randomArray(N, 2, 0.01)
const d2 = randomArray(N, 3, 0.01)
const d3 = randomArray(N, 4, 0.01)
const c1 = add(base, d1)
const c2 = add(base, d2)
const c3 = add(base, d3)

describe('merge methods (identities from issue 7)', () => {
  it('registry: every merger has an options schema, needsBase/minCheckpoints meta matching its implementation', async () => {
    const registry = await builtinRegistry()
    const names = registry.list('merger').map((e) => e.name)
    assert.deepEqual(names, ['dare', 'delta', 'soup', 'task-arithmetic', 'ties'])
    for (const entry of registry.list('merger')) {
      assert.equal((entry.optionsSchema as {additionalProperties: boolean}).additionalProperties, false)
      const impl = (await entry.load()) as Merger
      assert.equal(impl.name, entry.name)
      assert.equal(impl.needsBase, entry.meta?.needsBase)
      assert.equal(impl.minCheckpoints, entry.meta?.minCheckpoints)
    }
  })

  it('soup of K identical checkpoints returns it (uniform and given weights)', async () => {
    assertClose((await run('soup', {}, {base: undefined, checkpoints: [c1, c1, c1]})).out, c1)
    const r = await run('soup', {weights: [1, 2, 5]}, {base: undefined, checkpoints: [c1, c1, c1]})
    assertClose(r.out, c1)
    assert.deepEqual(r.weights.map((w) => +w.toFixed(6)), [0.125, 0.25, 0.625])
  })

  it('delta and task-arithmetic with one checkpoint and λ=1 return it', async () => {
    for (const name of ['delta', 'task-arithmetic']) {
      const r = await run(name, {lambda: 1}, {base, checkpoints: [c1]})
      assertClose(r.out, c1, 1e-6, name)
      assert.ok(Math.abs(r.weights[0]! - 1) < 1e-9, `${name} weight ${r.weights[0]}`)
    }
    for (const granularity of ['element', 'tensor']) {
      assertClose((await run('delta', {granularity}, {base, checkpoints: [c1]})).out, c1, 1e-6, granularity)
    }
  })

  it('λ=0 returns the base (delta, task-arithmetic, ties, dare)', async () => {
    for (const name of ['delta', 'task-arithmetic', 'ties', 'dare']) {
      assertClose((await run(name, {lambda: 0}, {base, checkpoints: [c1, c2, c3]})).out, base, 0, name)
    }
  })

  it('ties with density 1 and no sign conflict equals task-arithmetic with λ=1/K', async () => {
    // Same sign per element in all three deltas, magnitudes differ.
    const s1 = add(base, d1.map((x) => Math.abs(x) + 1e-4))
    const s2 = add(base, d2.map((x) => Math.abs(x) + 1e-4))
    const s3 = add(base, d3.map((x) => Math.abs(x) + 1e-4))
    const neg = (c: Float32Array) => c.map((x, i) => (i % 3 === 0 ? 2 * base[i]! - x : x)) // flip some elements in all
    const cks = [neg(s1), neg(s2), neg(s3)]
    const t = await run('ties', {density: 1}, {base, checkpoints: cks})
    const ta = await run('task-arithmetic', {lambda: 1 / 3}, {base, checkpoints: cks})
    assertClose(t.out, ta.out, 1e-6)
    for (const w of t.weights) assert.ok(Math.abs(w - 1 / 3) < 1e-9)
  })

  it('ties resolves a sign conflict by total mass and trims to the density', async () => {
    const b = new Float32Array([0, 0, 0, 0])
    const x = new Float32Array([0.5, -0.1, 0.3, 0.01])
    const y = new Float32Array([-0.2, -0.3, 0.1, 0.02])
    const full = await run('ties', {density: 1}, {base: b, checkpoints: [x, y]})
    // element 0: mass 0.3 > 0 → only x agrees → 0.5; element 1: both negative → mean -0.2.
    assertClose(full.out, new Float32Array([0.5, -0.2, 0.2, 0.015]), 1e-7)
    const half = await run('ties', {density: 0.5}, {base: b, checkpoints: [x, y]})
    // keep 2 of 4 per checkpoint: x keeps 0.5, 0.3; y keeps -0.2, -0.3.
    assertClose(half.out, new Float32Array([0.5, -0.3, 0.3, 0]), 1e-7)
  })

  it('dare with p=0 equals its base method (task-arithmetic and ties)', async () => {
    const cks = [c1, c2, c3]
    const dTa = await run('dare', {p: 0, lambda: 0.7}, {base, checkpoints: cks})
    assertClose(dTa.out, (await run('task-arithmetic', {lambda: 0.7}, {base, checkpoints: cks})).out, 0)
    const dTies = await run('dare', {p: 0, combine: 'ties', density: 0.3}, {base, checkpoints: cks})
    assertClose(dTies.out, (await run('ties', {density: 0.3}, {base, checkpoints: cks})).out, 0)
  })

  it('dare drops about p of each delta, rescales the rest by 1/(1-p), reproducibly per seed', async () => {
    const n = 20000
    const b = new Float32Array(n)
    const c = new Float32Array(n).fill(1)
    const a = await run('dare', {p: 0.3, seed: 7}, {base: b, checkpoints: [c]})
    let kept = 0
    for (const v of a.out) {
      if (v !== 0) {
        kept++
        assert.ok(Math.abs(v - 1 / 0.7) < 1e-6)
      }
    }
    assert.ok(Math.abs(kept / n - 0.7) < 0.02, `kept fraction ${kept / n}`)
    assert.ok(Math.abs(a.weights[0]! - 1) < 0.03, `mean coefficient ${a.weights[0]}`)
    const again = await run('dare', {p: 0.3, seed: 7}, {base: b, checkpoints: [c]})
    assertClose(again.out, a.out, 0)
    const other = await run('dare', {p: 0.3, seed: 8}, {base: b, checkpoints: [c]})
    assert.notDeepEqual(Array.from(other.out), Array.from(a.out))
    const noRescale = await run('dare', {p: 0.3, seed: 7, rescale: false}, {base: b, checkpoints: [c]})
    assert.ok(noRescale.out.every((v, i) => v === (a.out[i] === 0 ? 0 : 1)))
  })

  it('delta weights are non-negative and sum to 1 per element; uniform where all deltas are 0', () => {
    for (const raw of [{}, {gamma: 2}, {gamma: 0}, {weighting: 'softmax', temperature: 0.1}, {gamma: 40}]) {
      const o = resolveDeltaOptions(raw)
      const w = new Float64Array(3)
      for (let i = 0; i < N; i++) {
        const a = Float64Array.from([Math.abs(d1[i]!), Math.abs(d2[i]!), Math.abs(d3[i]!)])
        weightsFromMagnitudes(a, Math.max(...a), o, w)
        const sum = w[0]! + w[1]! + w[2]!
        assert.ok(Math.abs(sum - 1) < 1e-12 && w.every((x) => x >= 0), `${JSON.stringify(raw)}: weights ${w}`)
      }
      weightsFromMagnitudes(new Float64Array(3), 0, o, w)
      assert.deepEqual(Array.from(w), [1 / 3, 1 / 3, 1 / 3])
    }
  })

  it('delta: per-tensor mean weights sum to λ, lean to the larger delta, and equal deltas give their value', async () => {
    const big = add(base, d1.map((x) => x * 10))
    const r = await run('delta', {}, {base, checkpoints: [big, c2]})
    assert.ok(Math.abs(r.weights[0]! + r.weights[1]! - 1) < 1e-9)
    assert.ok(r.weights[0]! > 0.8, `weights ${r.weights}`)
    // Both checkpoints equal: the merge is that checkpoint, weights 1/2 each by symmetry.
    const same = await run('delta', {gamma: 3}, {base, checkpoints: [c1, c1]})
    assertClose(same.out, c1, 1e-6)
    // All deltas zero → the base, uniform weights.
    const zero = await run('delta', {}, {base, checkpoints: [base, base, base]})
    assertClose(zero.out, base, 0)
    assert.deepEqual(zero.weights.map((w) => +w.toFixed(9)), [0.333333333, 0.333333333, 0.333333333])
  })

  it('delta: γ=0 is task-arithmetic with λ/K; tiny temperature picks the largest change; tensor granularity weights by norm', async () => {
    const cks = [c1, c2, c3]
    assertClose((await run('delta', {gamma: 0}, {base, checkpoints: cks})).out, (await run('task-arithmetic', {lambda: 1 / 3}, {base, checkpoints: cks})).out, 1e-6)
    const hard = await run('delta', {weighting: 'softmax', temperature: 1e-4}, {base, checkpoints: cks})
    for (let i = 0; i < N; i++) {
      const mags = cks.map((c) => Math.abs(c[i]! - base[i]!))
      const sorted = [...mags].sort((a, b) => b - a)
      if (sorted[0]! - sorted[1]! < 0.01 * sorted[0]!) continue // too close to call at T = 1e-4
      const k = mags.indexOf(sorted[0]!)
      assert.ok(Math.abs(hard.out[i]! - cks[k]![i]!) < 1e-5, `element ${i}`)
    }
    const twice = add(base, d1.map((x) => 2 * x))
    const t = await run('delta', {granularity: 'tensor'}, {base, checkpoints: [c1, twice]})
    assert.ok(Math.abs(t.weights[0]! - 1 / 3) < 1e-6 && Math.abs(t.weights[1]! - 2 / 3) < 1e-6, `weights ${t.weights}`)
  })

  it('options are validated: unknown keys, wrong types, weights per checkpoint, gamma with softmax', async () => {
    await assert.rejects(method('delta', {gama: 2}, 2), (e: Error) => e instanceof MergeInputError && /\/gama: unknown key \(allowed here: granularity/.test(e.message))
    await assert.rejects(method('ties', {density: 1.5}, 2), /\/density: expected number >= 0 <= 1, got 1.5/)
    await assert.rejects(method('soup', {weights: [1]}, 2), /\/weights has 1 numbers; expected one per checkpoint \(2\)/)
    await assert.rejects(method('delta', {weighting: 'softmax', gamma: 2}, 2), /"gamma" applies to weighting "power"/)
    await assert.rejects(method('dare', {p: 1}, 2), /\/p: expected number >= 0 < 1, got 1/)
    await assert.rejects(method('dare', {density: 0.5}, 2), /"density" applies only with combine "ties"/)
  })

  it('topKThreshold keeps exactly the k largest (distinct values) and handles the edges', () => {
    const v = randomArray(5001, 9).map(Math.abs)
    const sorted = Array.from(v).sort((a, b) => b - a)
    for (const k of [1, 2, 100, 2500, 5000]) assert.equal(topKThreshold(v.slice(), k), sorted[k - 1])
    assert.equal(topKThreshold(v.slice(), 0), Infinity)
    assert.equal(topKThreshold(v.slice(), 5001), sorted[5000])
    assert.equal(topKThreshold(new Float32Array(10).fill(0.5), 3), 0.5)
  })
})
