import assert from 'node:assert/strict'
import {test, type TestContext} from 'node:test'
import {describeRanks, distributedAvailable, runRanks} from '../helpers/dist.js'
import {useTestBackend} from '../helpers/env.js'
import {ensureGradients} from '../../src/train/gradients.js'
import {ShardedSampler} from '../../src/train/distributed.js'
import {crossDeviceGradients, dataParallelTrainer, globalSampler} from '../helpers/distributed-fixture.js'

/** max |a−b| ≤ tol · max(|a|) per tensor, naming the first that differs. */
function assertClose(a: Record<string, number[]>, b: Record<string, number[]>, tol: number, what: string): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort())
  for (const name of Object.keys(a)) {
    const x = a[name]!
    const y = b[name]!
    const scale = Math.max(...x.map(Math.abs), 1e-12)
    const diff = Math.max(...x.map((v, i) => Math.abs(v - y[i]!)))
    assert.ok(diff <= tol * scale, `${what} ${name}: max difference ${diff} vs scale ${scale} (tolerance ${tol} relative)`)
  }
}

test('(c) the shards of every global batch, over the ranks, are the single-process plan, and every rank runs the same dataset each step', () => {
  for (const world of [2, 3]) {
    const plan = globalSampler(world).epochPlan()
    const shards = Array.from({length: world}, (_, r) => new ShardedSampler(globalSampler(world), r, world).epochPlan())
    plan.forEach((batch, i) => {
      const parts = shards.map((s) => s[i]!.parts[0]!)
      assert.ok(parts.every((p) => p.dataset === batch.parts[0]!.dataset), `batch ${i}: ranks on different datasets`)
      assert.deepEqual(parts.flatMap((p) => p.rows), batch.parts[0]!.rows, `batch ${i}: shards ≠ global batch`)
      assert.ok(parts.every((p) => p.rows.length >= 1))
    })
    // next() walks the same shards and the global state (what checkpoints record).
    const rank1 = new ShardedSampler(globalSampler(world), 1, world)
    for (let i = 0; i < plan.length; i++) assert.deepEqual(rank1.next(), shards[1]![i])
    assert.equal(rank1.next(), undefined)
    assert.equal(rank1.getState().position, plan.length)
  }
  const inner = globalSampler(1)
  inner.epochPlan = () => [{parts: [{dataset: 0, rows: [4]}]}]
  const tiny = new ShardedSampler(inner, 0, 2)
  assert.throws(() => tiny.epochPlan(), /batch 0 of epoch 0 has 1 row\(s\) of dataset 0 for 2 processes.*dropLast: true/)
})

test('(a) 2 ranks × batch B end with the parameters of 1 rank × B with gradientAccumulation 2 over the same sub-batches', async (t) => {
  if (!(await distributedAvailable(t))) return
  const ranks = await runRanks('data-parallel-child.js', 2, {args: ['train']})
  assert.ok(ranks.every((r) => r.code === 0), describeRanks(ranks))
  await useTestBackend()
  await ensureGradients()
  const {trainer, encoder} = dataParallelTrainer({referenceParts: 2})
  const summary = await trainer.run()
  const reference: Record<string, number[]> = {}
  for (const [name, v] of encoder.variables) reference[name] = Array.from(v.dataSync())
  const [r0, r1] = ranks.map((r) => r.result)
  assert.equal(r0.steps, summary.steps)
  assert.ok(summary.steps >= 4, `steps ${summary.steps}`)
  assert.equal(r0.examples, summary.examples, 'rank 0 reports the examples of every rank')
  assertClose(r0.weights, r1.weights, 0, 'rank 0 vs rank 1')
  for (const {result} of ranks) assert.ok(result.liveAfterStep.every((n: number) => n === result.liveAfterStep[0]), `tensors alive after each step: ${result.liveAfterStep}`)
  assertClose(reference, r0.weights, 1e-5, '1 process (GA 2) vs 2 processes')
  r0.history.forEach((h: {loss: Record<string, number>}, i: number) => {
    for (const [task, v] of Object.entries(h.loss)) assert.ok(Math.abs(v - summary.history[i]!.loss[task]!) <= 1e-5 * Math.abs(v) + 1e-7, `step ${i + 1} ${task}: ${v} vs ${summary.history[i]!.loss[task]}`)
  })
  trainer.dispose()
  encoder.dispose()
})

/** Runs the 2-rank child in `mode` and compares each rank's loss (1e-5) and gradients (`gradTol`) with 1 rank × 2B. */
async function crossDeviceMatchesSingle(t: TestContext, mode: string, gradTol: number): Promise<void> {
  if (!(await distributedAvailable(t))) return
  const ranks = await runRanks('data-parallel-child.js', 2, {args: [mode]})
  assert.ok(ranks.every((r) => r.code === 0), describeRanks(ranks))
  await useTestBackend()
  await ensureGradients()
  const single = await crossDeviceGradients()
  for (const {result} of ranks) {
    assert.ok(Math.abs(result.loss - single.loss) <= 1e-5 * Math.abs(single.loss), `loss ${result.loss} vs ${single.loss}`)
    assertClose(single.grads, result.grads, gradTol, 'gradient')
  }
}

test('(b) with cross-device negatives, 2 ranks × B give the loss and gradients of 1 rank × 2B with in-batch negatives over all 2B', (t) => crossDeviceMatchesSingle(t, 'grads', 1e-5))

test('(b) cross-device negatives through GradCache give the same loss and gradients', (t) => crossDeviceMatchesSingle(t, 'grads-cache', 1e-4))

test('per-process batch sizes become global ones (× world size) for the samplers that have them', async () => {
  const {globalBatchOptions} = await import('../../src/train/global-batch.js')
  assert.deepEqual(globalBatchOptions({batchSizes: {ir: 64, sts: 32}, policy: 'proportional'}, 8), {batchSizes: {ir: 512, sts: 256}, policy: 'proportional'})
  assert.deepEqual(globalBatchOptions({batchSize: 16, dropLast: true}, 2), {batchSize: 32, dropLast: true})
  const same = {batchSize: 16}
  assert.equal(globalBatchOptions(same, 1), same)
})
