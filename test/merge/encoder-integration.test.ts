import assert from 'node:assert/strict'
import {rmSync} from 'node:fs'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {mergeCheckpoints} from '../../src/merge/engine.js'
import {loadEncoder} from '../../src/model/encoder.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'
import {baseTensors, noise, perturbed, tempDir, writeCheckpoint} from './checkpoints.js'

const root = tempDir('merge-encoder')
after(() => rmSync(root, {recursive: true, force: true}))

const sentences = ['A man is playing a guitar.', '一个女人正在切洋葱。', 'The quick brown fox jumps over the lazy dog.']

async function embed(dir: string, prompt?: string): Promise<Float32Array[]> {
  const encoder = await loadEncoder(dir, {registry: BUILTINS})
  try {
    return await encoder.encode(sentences, prompt ? {prompt} : {})
  } finally {
    encoder.dispose()
  }
}

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0
  for (let i = 0; i < a.length; i++) for (let j = 0; j < a[i]!.length; j++) worst = Math.max(worst, Math.abs(a[i]![j]! - b[i]![j]!))
  return worst
}

describe('merged checkpoints load as sentence-transformers encoders', () => {
  it('the merge output loads with loadEncoder, keeps pooling/normalize/prompts, and a soup of identical checkpoints embeds identically', async (t) => {
    const models = shared(t, 'fixtures', 'models')
    if (!models) return
    await useTestBackend()
    const before = tf.memory().numTensors
    const base = await baseTensors(models)
    const a = await writeCheckpoint(models, join(root, 'a'), perturbed(base, (name, n) => noise(n, name.length).map((x) => 0.05 * x)))
    const b = await writeCheckpoint(models, join(root, 'b'), perturbed(base, (name, n) => noise(n, 3 * name.length).map((x) => 0.05 * x)))
    const baseDir = await writeCheckpoint(models, join(root, 'base'), base, false)

    const soup = join(root, 'soup')
    await mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [a, a], out: soup})
    const encoder = await loadEncoder(soup, {registry: BUILTINS})
    assert.equal(encoder.pooling, 'cls')
    assert.equal(encoder.normalize, true)
    assert.equal(encoder.prompts.query, 'Instruction: find similar text Query: ')
    encoder.dispose()
    for (const prompt of [undefined, 'query']) {
      const d = maxDiff(await embed(soup, prompt), await embed(a, prompt))
      assert.ok(d < 1e-6, `soup of identical checkpoints embeds differently (max diff ${d}, prompt ${prompt})`)
    }

    const merged = join(root, 'delta')
    await mergeCheckpoints({registry: BUILTINS, base: baseDir, checkpoints: [a, b], out: merged})
    const em = await embed(merged)
    const ea = await embed(a)
    const eb = await embed(b)
    assert.ok(em.every((v) => v.every(Number.isFinite)))
    assert.ok(maxDiff(em, ea) > 1e-4 && maxDiff(em, eb) > 1e-4, 'the delta merge is neither input')
    for (const v of em) assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5, 'normalised embeddings')
    // The merge itself allocates no tensors; loadEncoder currently keeps one tensor per weight after
    // dispose() (src/model/encoder.ts, reported to its owner), so this is a diagnostic, not an assertion.
    const leaked = tf.memory().numTensors - before
    if (leaked !== 0) t.diagnostic(`tf tensors left after 8 loadEncoder/dispose cycles: ${leaked}`)
  })
})
