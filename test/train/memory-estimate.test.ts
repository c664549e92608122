/**
 * The memory estimate (src/train/memory-estimate.ts) against measured peaks of real training steps,
 * within ±25 %, without and with activation checkpointing:
 *
 * - torch: a MiniLM-sized BERT (6 layers, hidden 384, 12 heads, intermediate 1536) on the IR batch
 *   of bench/train.bench.ts (4 queries at 32 tokens; here 2 positives + 4 negatives each), whole
 *   optimizer steps in a child process, measured as the resident set's high-water mark above what
 *   was resident before the step (the allocator's view: ATen's kept softmax probabilities, dropout
 *   masks and views included), against the estimate less the parameters and moments resident before.
 * - cpu: the pure-JS backend runs the MiniLM width at 2 layers and one query with its 6 passages
 *   (the 6-layer bench batch takes minutes there), measured exactly as the bytes of live tensor
 *   buffers: the forward and backward pass (the activation phase) and one whole optimizer step.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {test} from 'node:test'
import {architectureFor} from '../../src/model/encoder.js'
import {estimateStep, modelMemory, type StepEstimate} from '../../src/train/memory-estimate.js'
import {ensureGradients} from '../../src/train/gradients.js'
import {BUILTINS, REPO_ROOT, TEST_BACKEND, shared, useTestBackend} from '../helpers/env.js'
import {peakTensorBytes} from '../helpers/memory.js'
import {firstBatch, randomEncoder, stepPasses, stepTrainer, tf, type StepSpec} from '../helpers/step-memory.js'

const MiB = 2 ** 20

function within25(t: {diagnostic(message: string): void}, measured: number, estimated: number, what: string): void {
  const ratio = estimated / measured
  t.diagnostic(`${what}: estimated ${(estimated / MiB).toFixed(1)} MiB, measured ${(measured / MiB).toFixed(1)} MiB, ratio ${ratio.toFixed(3)}`)
  assert.ok(ratio >= 0.75 && ratio <= 1.25, `${what}: estimated ${(estimated / MiB).toFixed(1)} MiB, measured ${(measured / MiB).toFixed(1)} MiB (ratio ${ratio.toFixed(3)})`)
}

async function estimate(spec: StepSpec, config: Parameters<typeof modelMemory>[1], checkpointing: boolean, kernels: 'fused' | 'composite', bf16Activations = false): Promise<{e: StepEstimate; parameters: number}> {
  const model = modelMemory(await architectureFor('bert', BUILTINS), config)
  const e = estimateStep(model, {passes: stepPasses(spec), accumulates: false, checkpointing, dropout: true, kernels, bf16Activations})
  return {e, parameters: model.parameters}
}

for (const precision of ['fp32', 'bf16'] as const) {
test(`torch ${precision}: the estimated peak of a MiniLM-sized training step is within ±25 % of the resident-memory peak, with and without checkpointing`, async (t) => {
  if (TEST_BACKEND !== 'torch') return t.skip('measures the torch backend (run with --backend torch)')
  const tokenizerDir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!tokenizerDir) return
  // fp32: the bench batch, where the optimizer phase peaks; bf16: one where the activations peak.
  const spec: StepSpec = {layers: 6, hidden: 384, heads: 12, intermediate: 1536, queries: precision === 'bf16' ? 8 : 4, maxLength: precision === 'bf16' ? 48 : 32}
  // bf16: matrix products' results stay bfloat16 (src/tensor/torch/backend.ts bf16Activations).
  const child = spawnSync(process.execPath, ['--expose-gc', join(REPO_ROOT, 'dist', 'test', 'helpers', 'step-memory-child.js'), JSON.stringify({spec, tokenizerDir, variants: [false, true], precision})], {
    encoding: 'utf8',
    env: {...process.env, MALLOC_MMAP_THRESHOLD_: '65536', CODIEMB_TORCH_THREADS: '2'},
  })
  assert.equal(child.status, 0, child.stderr)
  const measured = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as {gradientCheckpointing: boolean; peakAbove: number; livePeakAbove: number}[]
  await useTestBackend()
  const encoder = await randomEncoder({...spec, layers: 1}, BUILTINS, tokenizerDir)
  const config = {...encoder.config, num_hidden_layers: spec.layers}
  encoder.dispose()
  for (const m of measured) {
    const {e, parameters} = await estimate(spec, config, m.gradientCheckpointing, 'fused', precision === 'bf16')
    // Parameters and moments (12 bytes per parameter) were resident before the step.
    if (precision === 'bf16' && m.gradientCheckpointing) {
      // A checkpointed bf16 step on the CPU holds native memory outside any tensor: libtorch's CPU
      // bfloat16 products run through oneDNN, whose scratch buffers (about 25 MiB here, resident peak
      // 157 MiB against 132 MiB of tensors) a GPU does not have. The estimate is checked against the
      // backend's own count of live tensor bytes (TorchBackend.liveBytes), and the resident peak must
      // stay within that plus 40 %.
      within25(t, m.livePeakAbove, e.peakBytes - 12 * parameters, `${precision} step above parameters and moments (live tensor bytes), checkpointing true`)
      t.diagnostic(`${precision} checkpointed step: resident peak ${(m.peakAbove / MiB).toFixed(1)} MiB, live tensors ${(m.livePeakAbove / MiB).toFixed(1)} MiB (${(m.peakAbove / m.livePeakAbove).toFixed(2)}x)`)
      assert.ok(m.peakAbove < 1.4 * m.livePeakAbove, `resident peak ${(m.peakAbove / MiB).toFixed(1)} MiB vs live tensors ${(m.livePeakAbove / MiB).toFixed(1)} MiB`)
      continue
    }
    within25(t, m.peakAbove, e.peakBytes - 12 * parameters, `${precision} step above parameters and moments, checkpointing ${m.gradientCheckpointing}`)
  }
})
}

test('cpu: estimated activation and step peaks are within ±25 % of the live tensor bytes of a MiniLM-width step, with and without checkpointing', async (t) => {
  if (TEST_BACKEND !== 'cpu') return t.skip('measures tensor buffers of the cpu backend')
  const tokenizerDir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!tokenizerDir) return
  await useTestBackend()
  await ensureGradients()
  const spec: StepSpec = {layers: 2, hidden: 384, heads: 12, intermediate: 1536, queries: 1, maxLength: 32}
  const encoder = await randomEncoder(spec, BUILTINS, tokenizerDir)
  for (const checkpointing of [false, true]) {
    const {e, parameters} = await estimate(spec, encoder.config, checkpointing, 'composite')
    const trainer = stepTrainer(encoder, spec, checkpointing)
    // The forward and backward pass: new buffers are activations and gradients (parameters and moments exist).
    const pass = await peakTensorBytes(async () => {
      const {grads} = await trainer.gradientsOf(firstBatch(spec))
      tf.dispose([...grads.values()])
    })
    within25(t, pass.peakBytes, e.activationPhaseBytes - 12 * parameters, `forward and backward, checkpointing ${checkpointing}`)
    assert.ok(e.activationPhaseBytes - 12 * parameters > 4 * parameters, 'activations outweigh the gradients here, so the comparison is about them')
    trainer.dispose()
  }
  // A whole optimizer step (the trainer's moments created inside; the parameters existed before).
  const step = await peakTensorBytes(async () => {
    const trainer = stepTrainer(encoder, spec, false)
    await trainer.run()
    trainer.dispose()
  })
  const {e, parameters} = await estimate(spec, encoder.config, false, 'composite')
  within25(t, step.peakBytes + 4 * parameters, e.peakBytes, 'one optimizer step, parameters included')
  encoder.dispose()
})

test('LoRA dropout: passes with dropout count the unmerged adapters per token instead of the effective weights', async () => {
  const arch = await architectureFor('qwen3', BUILTINS)
  const config = {model_type: 'qwen3', hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, num_hidden_layers: 2, vocab_size: 384, max_position_embeddings: 512}
  const lora = {rank: 4, targetModules: ['q_proj', 'down_proj']}
  const merged = modelMemory(arch, config, lora)
  const unmerged = modelMemory(arch, config, {...lora, dropout: 0.1})
  assert.equal(merged.lora!.unmergedPerLayer, undefined)
  // Per layer: q_proj [128, 64] and down_proj [64, 128]: 5·in + 4r + 4·out bytes per token each.
  assert.equal(unmerged.lora!.unmergedPerLayer, 5 * 64 + 16 + 4 * 128 + (5 * 128 + 16 + 4 * 64))
  const step = {passes: [{name: 'q', rows: 4, seqLen: 16}], accumulates: false, checkpointing: false, kernels: 'composite' as const}
  const a = estimateStep(merged, {...step, dropout: true}).activationBytes
  const b = estimateStep(unmerged, {...step, dropout: true}).activationBytes
  const perLayer = unmerged.lora!.unmergedPerLayer!
  // kept: tokens × L × perLayer; working: tokens × perLayer × 1/3; minus the effective weights (4·P_a).
  const expected = 64 * 2 * perLayer + (64 * perLayer) / 3 - 4 * merged.lora!.adapted
  assert.ok(Math.abs(b - a - expected) < 1e-6, `difference ${b - a}, expected ${expected}`)
  // Without dropout in the pass (probes, train.dropout false) the adapters are folded as before.
  assert.equal(estimateStep(unmerged, {...step, dropout: false}).activationBytes, estimateStep(merged, {...step, dropout: false}).activationBytes)
})
