/**
 * One process of bench/distributed.bench.ts: IR training steps of a randomly initialised BERT on
 * stsb-zh-hardneg, as one rank of a data-parallel job (torchrun's variables set) or alone. Prints one
 * JSON line: per-step wall times (after the warm-up step), examples, losses, bytes all-reduced per
 * step, and the process group's backend and device. CODIEMB_DEVICE picks the device (default cpu;
 * scripts/torch-device-check.sh runs it on cuda:0 with CODIEMB_DIST_BACKEND=nccl).
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {builtinRegistry} from '../src/builtins.js'
import {distributedEnv} from '../src/core/distributed-env.js'
import {selectBackend} from '../src/tensor/backend.js'
import {joinProcessGroup} from '../src/tensor/process-group.js'
import {initRandomEncoder} from '../src/model/encoder.js'
import {create as createIrInfoNce} from '../src/train/losses/ir-infonce.js'
import {create as createDynamic} from '../src/train/samplers/dynamic.js'
import {IrObjective} from '../src/train/objective.js'
import {PAPER_INSTRUCTIONS, type IrTrainingDataset} from '../src/train/data.js'
import {Trainer} from '../src/train/trainer.js'
import {DataParallel, ShardedSampler} from '../src/train/distributed.js'
import type {IrLoss} from '../src/train/losses/types.js'

const [globalBatch, steps, layers, hidden, crossDevice] = process.argv.slice(2).map(Number) as [number, number, number, number, number]
const SHARED = process.env.CODIEMB_SHARED ?? join(process.cwd(), '..', 'shared')
const lines = readFileSync(join(SHARED, 'data', 'stsb-zh-hardneg', 'bge_finetune_data.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, globalBatch * (steps + 1))
const rows = lines.map((line, i) => {
  const r = JSON.parse(line) as {query: string; pos: string[]; neg: string[]}
  return {id: String(i), query: r.query, instruction: '检索与这个句子语义相似的句子', positives: r.pos, negatives: r.neg, positive_scores: null, negative_scores: null}
})
const datasets: IrTrainingDataset[] = [{task: 'ir', name: 'stsb-zh-hardneg', path: 'bge_finetune_data.jsonl', rows, dropped: 0}]
const registry = await builtinRegistry()
await selectBackend(registry, 'torch', process.env.CODIEMB_DEVICE ? {device: process.env.CODIEMB_DEVICE} : {})
const env = distributedEnv()
const dp = env ? new DataParallel(await joinProcessGroup(env, 'torch')) : undefined
const encoder = await initRandomEncoder({arch: 'bert', tokenizerDir: join(SHARED, 'data', 'bert-vocab-zh'), layers, hidden, heads: Math.max(1, hidden / 64), intermediate: 4 * hidden, maxPositions: 64, seed: 1, registry})
const global = createDynamic([{name: 'ir', task: 'ir', size: rows.length}], {batchSizes: {ir: globalBatch}}, 1)
const at: number[] = []
const examples: number[] = []
const losses: Record<string, number>[] = []
const trainer = new Trainer({
  encoder, datasets,
  sampler: dp ? new ShardedSampler(global, dp.rank, dp.size) : global,
  objectives: {ir: new IrObjective([{loss: createIrInfoNce({positives: 1, negatives: 3, temperature: 0.02, crossDeviceNegatives: crossDevice === 1}) as IrLoss, weight: 1}])},
  optimizer: {learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 1},
  warmupRatio: 0, epochs: 1, gradientAccumulation: 1, seed: 1,
  maxLength: {query: 32, passage: 32, sts: 32}, instructions: PAPER_INSTRUCTIONS,
  dropout: true, prefetch: 2, stopAfterSteps: steps + 1, settings: 'bench', distributed: dp,
  onEvent: (e) => {
    if (e.type !== 'step') return
    at.push(performance.now())
    examples.push(e.examples)
    losses.push(e.loss)
  },
})
const before = dp?.group.stats().bytesReduced ?? 0
await trainer.run()
// Every step reduces the same: the gradients (one bucketed all-reduce) and the step's totals.
const bytes = (dp?.group.stats().bytesReduced ?? 0) - before
const stepSeconds = at.slice(1).map((t, i) => (t - at[i]!) / 1000)
const group = dp ? (await import('../src/tensor/torch/distributed.js')).torchDistributedInfo() : undefined
console.log(
  JSON.stringify({
    rank: dp?.rank ?? 0, world: dp?.size ?? 1, backend: group?.backend, device: group?.device, stepSeconds, examples: examples.slice(1), losses,
    bytesReducedPerStep: bytes / (steps + 1), parameters: [...encoder.variables.values()].reduce((a, v) => a + v.size, 0),
  }),
)
dp?.close()
