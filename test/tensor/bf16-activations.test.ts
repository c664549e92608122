/**
 * bf16 activations (src/tensor/torch/backend.ts bf16Activations): under --precision bf16 the torch
 * backend keeps matrix products' results in bfloat16 through the kernels autocast runs in their
 * input's dtype, so a training step keeps fewer bytes for backward, with the same loss and
 * gradients as float32 activations up to bfloat16 rounding, float32 parameter gradients, no leaks,
 * and checkpointed layers that recompute exactly the forward's dropout masks.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {shared, REPO_ROOT, TEST_BACKEND} from '../helpers/env.js'

interface ChildResult {
  bf16Activations: boolean
  loss: number
  kept: Record<string, number>
  gradDtypes: string[]
  grads: Record<string, number[]>
  tensorCounts: number[]
  bf16After: number[]
  dropoutLoss: number
  checkpointedLoss: number
  checkpointMaxDiff: number
}

function runChild(tokenizerDir: string, activations: '0' | '1'): ChildResult {
  const child = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'test', 'helpers', 'bf16-activations-child.js'), JSON.stringify({tokenizerDir})], {
    encoding: 'utf8',
    env: {...process.env, CODIEMB_TORCH_BF16_ACTIVATIONS: activations},
    maxBuffer: 64 * 1024 * 1024,
  })
  assert.equal(child.status, 0, child.stderr)
  return JSON.parse(child.stdout.trim().split('\n').pop()!) as ChildResult
}

const total = (bytes: Record<string, number>): number => Object.values(bytes).reduce((a, b) => a + b, 0)

function cosine(a: number[], b: number[]): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!
    na += a[i]! * a[i]!
    nb += b[i]! * b[i]!
  }
  return dot / Math.sqrt(na * nb)
}

test('torch --precision bf16: activations stay bfloat16, a step keeps fewer bytes, gradients match float32 activations to bf16 rounding', async (t) => {
  if (TEST_BACKEND !== 'torch') return t.skip('torch backend only (run with --backend torch)')
  const tokenizerDir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!tokenizerDir) return
  const on = runChild(tokenizerDir, '1')
  const off = runChild(tokenizerDir, '0')
  assert.equal(on.bf16Activations, true)
  assert.equal(off.bf16Activations, false)

  // What the tape keeps: bfloat16 activations with them on, none with them off, and fewer bytes in all.
  assert.ok((on.kept.bfloat16 ?? 0) > 0, `no bfloat16 activations kept: ${JSON.stringify(on.kept)}`)
  assert.equal(off.kept.bfloat16 ?? 0, 0)
  const ratio = total(on.kept) / total(off.kept)
  assert.ok(ratio < 0.85, `bf16 activations keep ${(ratio * 100).toFixed(0)}% of the float32 activations' bytes (${JSON.stringify(on.kept)} vs ${JSON.stringify(off.kept)})`)

  // The same function up to bfloat16 rounding of the activations (float32 ones round only the products' operands).
  assert.ok(Math.abs(on.loss - off.loss) < 0.05 * Math.abs(off.loss), `loss ${on.loss} vs ${off.loss}`)
  for (const [name, g] of Object.entries(off.grads)) {
    // A key bias shifts each query's scores by a constant, which softmax ignores: its true gradient is
    // zero and both runs report rounding noise (norm ~1e-7), so no direction is compared.
    if (name.endsWith('attention.self.key.bias')) continue
    const c = cosine(on.grads[name]!, g)
    assert.ok(c > 0.98, `${name}: gradient cosine ${c.toFixed(4)} between bf16 and float32 activations`)
  }
  // Parameter gradients come out float32 (autocast's casts give a float32 weight a float32 gradient).
  assert.deepEqual(on.gradDtypes, ['float32'])

  // No leaks: tensor counts stay level over steps and no bfloat16 tensor outlives its step.
  assert.equal(new Set(on.tensorCounts).size, 1, `tensor counts grew: ${on.tensorCounts.join(', ')}`)
  assert.deepEqual(on.bf16After, [0, 0, 0])

  // Checkpointed layers recompute the forward in bfloat16 with the same dropout masks: equal gradients.
  assert.equal(on.checkpointedLoss, on.dropoutLoss)
  assert.equal(on.checkpointMaxDiff, 0)
})
