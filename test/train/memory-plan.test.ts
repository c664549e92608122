/** The memory plan's parts: an architecture's activation bytes, the step estimate, chunk resolution and the per-task plan. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {EncoderArchitecture, HfConfig} from '../../src/model/architecture.js'
import {architectureFor} from '../../src/model/encoder.js'
import {normaliseTrainSection} from '../../src/train/config.js'
import {create as createIrInfoNce} from '../../src/train/losses/ir-infonce.js'
import {create as createCodiembSts} from '../../src/train/losses/codiemb-sts.js'
import {estimateStep, modelMemory, type StepShape} from '../../src/train/memory-estimate.js'
import {largestFittingChunk, planMemory, USABLE_FRACTION, type PlanDevice} from '../../src/train/memory-plan.js'
import {IrObjective, StsObjective} from '../../src/train/objective.js'
import {create as createDynamic} from '../../src/train/samplers/dynamic.js'
import type {TrainSetup} from '../../src/train/setup.js'
import {BUILTINS} from '../helpers/env.js'

const bert = await architectureFor('bert', BUILTINS)
/** MiniLM-sized: 6 layers, hidden 384, 12 heads, intermediate 1536, the Chinese BERT vocabulary. */
const config: HfConfig = bert.randomConfig({layers: 6, hidden: 384, heads: 12, intermediate: 1536, vocabSize: 21128, padTokenId: 0})
const model = modelMemory(bert, config)
const irStep: Omit<StepShape, 'checkpointing' | 'chunkSize'> = {
  passes: [{name: 'queries', rows: 16, seqLen: 64}, {name: 'passages', rows: 96, seqLen: 128}],
  accumulates: false,
  dropout: true,
  kernels: 'fused',
}

describe('bert-family activation memory', () => {
  it('follows its documented formula: fused 8H + 2I + nT + 4 + H/2 + nT/4 floats per token and layer with dropout, a checkpointed layer its input', () => {
    const a = bert.activationMemory!(config, {seqLen: 32, dropout: true, kernels: 'fused'})
    assert.equal(a.perLayer, 4 * (8 * 384 + 2 * 1536 + 12 * 32 + 4 + 0.5 * 384 + (12 * 32) / 4))
    assert.equal(a.checkpointedPerLayer, 4 * 384)
    const composite = bert.activationMemory!(config, {seqLen: 32, dropout: true, kernels: 'composite'})
    assert.equal(composite.perLayer, 4 * (24 * 384 + 2 * 1536 + 7 * 12 * 32 + 3 * 12 + 8 + 10 * 384 + 5 * 12 * 32))
    assert.ok(composite.outsideLayers > a.outsideLayers, 'the composite path keeps more (and the mask broadcast over heads)')
  })

  it('with bf16 activations (torch, --precision bf16) follows its bytes formula 20H + 4I + 4nT + 16 + 2H + nT, about 0.6 of float32', () => {
    const f32 = bert.activationMemory!(config, {seqLen: 32, dropout: true, kernels: 'fused'})
    const bf16 = bert.activationMemory!(config, {seqLen: 32, dropout: true, kernels: 'fused', bf16Activations: true})
    assert.equal(bf16.perLayer, 20 * 384 + 4 * 1536 + 4 * 12 * 32 + 16 + 2 * 384 + 12 * 32)
    assert.ok(bf16.perLayer < 0.65 * f32.perLayer, `${bf16.perLayer} vs ${f32.perLayer}`)
    assert.equal(bf16.checkpointedPerLayer, f32.checkpointedPerLayer, 'a checkpointed layer keeps its float32 input')
  })

  it('keeps less without dropout and more per token for longer sequences (attention probabilities)', () => {
    for (const kernels of ['fused', 'composite'] as const) {
      const at = (seqLen: number, dropout: boolean) => bert.activationMemory!(config, {seqLen, dropout, kernels}).perLayer
      assert.ok(at(32, false) < at(32, true))
      assert.ok(at(256, true) > at(32, true))
    }
  })
})

describe('step estimate', () => {
  it('is the larger of the activation and optimizer phases; checkpointing and chunking lower the activations, accumulation adds the gradients', () => {
    const plain = estimateStep(model, {...irStep, checkpointing: false})
    const P = model.parameters
    assert.equal(plain.peakBytes, Math.max(plain.activationPhaseBytes, plain.optimizerPhaseBytes))
    assert.equal(plain.activationPhaseBytes, 12 * P + plain.activationBytes)
    // Fused AdamW updates in place and the clip squares one gradient at a time: gradients plus one
    // temporary of the largest tensor beside parameters and moments.
    assert.equal(plain.optimizerPhaseBytes, 16 * P + 4 * model.largestParameter)
    const checkpointed = estimateStep(model, {...irStep, checkpointing: true})
    assert.ok(checkpointed.activationBytes < plain.activationBytes / 3, `${checkpointed.activationBytes} vs ${plain.activationBytes}`)
    const chunked = estimateStep(model, {...irStep, checkpointing: false, chunkSize: 8})
    assert.ok(chunked.activationBytes < plain.activationBytes / 5)
    // With several chunks the first chunk's gradients are being summed while the next runs.
    assert.equal(chunked.activationPhaseBytes, 16 * P + chunked.activationBytes)
    const accumulating = estimateStep(model, {...irStep, accumulates: true, checkpointing: false})
    assert.equal(accumulating.activationPhaseBytes, plain.activationPhaseBytes + 4 * P)
  })

  it('the largest fitting chunk fits and one more row does not; nothing when a single row does not fit', () => {
    const step = {...irStep, checkpointing: false}
    const peak = (chunkSize: number) => estimateStep(model, {...step, chunkSize}).peakBytes
    const usable = peak(20) + 1
    const chunk = largestFittingChunk(model, step, usable)!
    assert.ok(chunk >= 20 && peak(chunk) <= usable && peak(chunk + 1) > usable, `chunk ${chunk}`)
    assert.equal(largestFittingChunk(model, step, 1e15), 96, 'at most the largest pass')
    assert.equal(largestFittingChunk(model, step, peak(1) - 1), undefined)
  })
})

/** A run's setup as planMemory reads it: the section, the sampler and the objectives. */
function setupOf(chunkSize: number | 'auto' | undefined, section: Record<string, unknown> = {}): TrainSetup {
  const normalised = normaliseTrainSection({
    model: 'm', output: 'o', data: ['x'],
    tasks: {ir: {maxLength: {query: 64, passage: 128}}, sts: {maxLength: 48}},
    ...section,
  })
  const sampler = createDynamic([{name: 'ir', task: 'ir', size: 64}, {name: 'sts', task: 'sts', size: 64}], {batchSizes: {ir: 16, sts: 32}}, 1)
  const ir = new IrObjective([{loss: createIrInfoNce({positives: 2, negatives: 4, ...(chunkSize ? {cache: {chunkSize}} : {})}), weight: 1}])
  const sts = new StsObjective([{loss: createCodiembSts({}), weight: 1}])
  return {section: normalised, sampler, objectives: {ir, sts}} as unknown as TrainSetup
}

const device = (totalBytes?: number): PlanDevice => ({backend: 'torch', device: 'cuda:0', precision: 'bf16', totalBytes, source: 'test', fusedKernels: true})

describe('memory plan', () => {
  it('plans each task at its batch size and maximum length, with and without checkpointing and chunking', () => {
    const plan = planMemory(setupOf(undefined), {arch: bert, config}, device(80e9))
    assert.equal(plan.parameters, model.parameters)
    assert.equal(plan.usableBytes, Math.floor(80e9 * USABLE_FRACTION))
    assert.deepEqual(plan.tasks.map((t) => [t.task, t.passes]), [
      ['ir', [{name: 'queries', rows: 16, seqLen: 64}, {name: 'passages', rows: 96, seqLen: 128}]],
      ['sts', [{name: 'texts1', rows: 32, seqLen: 48}, {name: 'texts2', rows: 32, seqLen: 48}]],
    ])
    assert.deepEqual(plan.tasks[0]!.variants.map((v) => [v.checkpointing, v.chunkSize]), [[false, undefined], [false, 32], [true, undefined], [true, 32]])
    assert.deepEqual(plan.tasks[1]!.variants.map((v) => [v.checkpointing, v.chunkSize]), [[false, undefined], [true, undefined]])
    assert.deepEqual(plan.tasks[0]!.configured, plan.tasks[0]!.variants[0])
    assert.ok(plan.tasks.every((t) => t.configured.fits))
    assert.deepEqual(plan.warnings, [])
    const checkpointed = planMemory(setupOf(8, {gradientCheckpointing: true}), {arch: bert, config}, device(80e9))
    assert.deepEqual([checkpointed.tasks[0]!.configured.checkpointing, checkpointed.tasks[0]!.configured.chunkSize], [true, 8])
  })

  it('resolves cache.chunkSize auto to the largest chunk that fits, and warns when the configured step does not fit', () => {
    const setup = setupOf('auto')
    // The test device is torch at bf16: the plan counts bfloat16 activations.
    const step = {...irStep, bf16Activations: true, passes: [{name: 'queries', rows: 16, seqLen: 64}, {name: 'passages', rows: 96, seqLen: 128}], checkpointing: false}
    const total = estimateStep(model, {...step, chunkSize: 12}).peakBytes / USABLE_FRACTION + 1
    const plan = planMemory(setup, {arch: bert, config}, device(total))
    assert.equal(plan.autoChunkSize, largestFittingChunk(model, step, Math.floor(total * USABLE_FRACTION)))
    assert.ok(plan.autoChunkSize! >= 12 && plan.autoChunkSize! < 96)
    assert.equal(plan.tasks[0]!.configured.chunkSize, plan.autoChunkSize)
    assert.equal(plan.tasks[0]!.configured.fits, true)
    assert.equal(plan.tasks[0]!.variants[0]!.fits, false, 'the whole batch at once does not fit')

    const tiny = planMemory(setupOf(undefined), {arch: bert, config}, device(2 ** 20))
    assert.ok(tiny.tasks.every((t) => t.configured.fits === false))
    assert.match(tiny.warnings[0]!, /^ir: a step needs about .* GiB, more than the 922 KiB usable of cuda:0; no variant fits/)
    const unknown = planMemory(setup, {arch: bert, config}, device(undefined))
    assert.equal(unknown.autoChunkSize, undefined)
    assert.ok(unknown.tasks.every((t) => t.configured.fits === undefined))
    assert.match(unknown.warnings.join('\n'), /cache\.chunkSize auto: the memory of cuda:0 is unknown \(test\); pass --device-memory/)
  })

  it('says so when an architecture reports no activation memory', () => {
    const plugin: EncoderArchitecture = {...bert, activationMemory: undefined}
    const plan = planMemory(setupOf(undefined), {arch: plugin, config}, device(80e9))
    assert.match(plan.warnings[0]!, /the bert encoder reports no activation memory/)
    // Only gradients: those of all six layers while the bottom one is back-propagated.
    assert.equal(plan.tasks[0]!.configured.activationBytes, 4 * (model.parameters - model.largestParameter))
    assert.equal(plan.bf16Activations, true)
  })
})
