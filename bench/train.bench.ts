/**
 * Training throughput: optimizer steps of the CoDiEmb trainer (forward, losses, backward, AdamW;
 * WordPiece tokenization on its worker thread, as in `codiemb train`) on real text from ../shared
 * (STS-B-zh train pairs for STS, stsb-zh-hardneg for IR), for the tiny model of
 * recipes/train/tiny-zh.yaml (shape read from the recipe) and a MiniLM-sized one (6 layers,
 * hidden 384, 12 heads, intermediate 1536), randomly initialised with the Chinese BERT vocabulary,
 * on every available tensor backend (probed and selected like --backend; torch needs the addon:
 * `npm run build:torch` or CODIEMB_TORCH_ADDON=/path/codiemb_torch.node).
 * Prints one line per backend × model: examples/s (IR queries + STS pairs) and tokens/s
 * (non-padding tokens of queries, passages and STS texts) over the measured steps, after one
 * warm-up step. The pure-JS cpu backend measures the MiniLM-sized model on one small step only.
 *
 *   npm run bench -- train            BENCH_TRAIN_STEPS=6 to measure more steps on every row
 */
import {existsSync, readFileSync} from 'node:fs'
import {loadConfig} from '../src/config/load.js'
import {join} from 'node:path'
import {builtinRegistry} from '../src/builtins.js'
import {probeBackends, selectBackend} from '../src/tensor/backend.js'
import {initRandomEncoder} from '../src/model/encoder.js'
import {create as createIrInfoNce} from '../src/train/losses/ir-infonce.js'
import {create as createCodiembSts} from '../src/train/losses/codiemb-sts.js'
import {create as createDynamic} from '../src/train/samplers/dynamic.js'
import {IrObjective, StsObjective} from '../src/train/objective.js'
import {PAPER_INSTRUCTIONS, type IrTrainingDataset, type StsTrainingDataset} from '../src/train/data.js'
import {Trainer, type StepEvent} from '../src/train/trainer.js'
import type {IrLoss, StsLoss} from '../src/train/losses/types.js'

const SHARED = process.env.CODIEMB_SHARED ?? join(process.cwd(), '..', 'shared')
const vocabDir = join(SHARED, 'data', 'bert-vocab-zh')
if (!existsSync(vocabDir)) {
  console.log(`train bench skipped: ${vocabDir} not found (set CODIEMB_SHARED to the shared data directory)`)
  process.exit(0)
}

function stsRows(limit: number): StsTrainingDataset {
  const lines = readFileSync(join(SHARED, 'data', 'stsb-zh', 'STS-B.train.data'), 'utf8').split('\n').filter(Boolean).slice(0, limit)
  const rows = lines.map((line, i) => {
    const [text1, text2, score] = line.split('\t')
    return {id: String(i), text1, text2, score: Number(score) / 5, raw_score: Number(score), instruction: '检索与这个句子语义相似的句子'}
  })
  return {task: 'sts', name: 'stsb-zh', path: 'STS-B.train.data', rows, dropped: 0}
}

function irRows(limit: number): IrTrainingDataset {
  const lines = readFileSync(join(SHARED, 'data', 'stsb-zh-hardneg', 'bge_finetune_data.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, limit)
  const rows = lines.map((line, i) => {
    const r = JSON.parse(line) as {query: string; pos: string[]; neg: string[]}
    return {id: String(i), query: r.query, instruction: '检索与这个句子语义相似的句子', positives: r.pos, negatives: r.neg, positive_scores: null, negative_scores: null}
  })
  return {task: 'ir', name: 'stsb-zh-hardneg', path: 'bge_finetune_data.jsonl', rows, dropped: 0}
}

const recipe = (await loadConfig(join(process.cwd(), 'recipes', 'train', 'tiny-zh.yaml'))).config.train as {
  model: {init: {layers: number; hidden: number; heads: number; intermediate: number}}
  sampler: {options: {batchSizes: {ir: number; sts: number}}}
}
const tiny = recipe.model.init
// Batch shapes per model: the tiny one as in its recipe; the MiniLM-sized one uses small batches so
// that the pure-JS backend finishes its one step in minutes; tokens/s is comparable across rows.
// Measured steps per backend (after the warm-up step).
const MODELS = [
  {
    name: `tiny (${tiny.layers} layers, hidden ${tiny.hidden})`,
    layers: tiny.layers,
    hidden: tiny.hidden,
    heads: tiny.heads,
    intermediate: tiny.intermediate,
    ir: recipe.sampler.options.batchSizes.ir,
    sts: recipe.sampler.options.batchSizes.sts,
    maxLength: 32,
    steps: {cpu: 6, other: 12},
  },
  {name: 'MiniLM-sized (6 layers, hidden 384)', layers: 6, hidden: 384, heads: 12, intermediate: 1536, ir: 4, sts: 8, maxLength: 32, steps: {cpu: 1, other: 4}},
]
const STEP_OVERRIDE = process.env.BENCH_TRAIN_STEPS ? Number(process.env.BENCH_TRAIN_STEPS) : undefined

const registry = await builtinRegistry()
const backends = (await probeBackends(registry)).filter((p) => p.available).map((p) => p.name)
console.log(`backends: ${backends.join(', ')}; measured steps after 1 warm-up; IR rows = 1 query + 1 positive + 3 negatives; examples = queries + STS pairs`)
for (const backend of backends) {
  await selectBackend(registry, backend)
  for (const model of MODELS) {
    const STEPS = STEP_OVERRIDE ?? (backend === 'cpu' ? model.steps.cpu : model.steps.other)
    const {name: _n, ir: irBatch, sts: stsBatch, maxLength, steps: _s, ...shape} = model
    const encoder = await initRandomEncoder({arch: 'bert', tokenizerDir: vocabDir, ...shape, maxPositions: 128, seed: 1, registry})
    const datasets = [irRows(irBatch * (STEPS + 1)), stsRows(stsBatch * (STEPS + 1))]
    const sampler = createDynamic(
      datasets.map((d) => ({name: d.name, task: d.task, size: d.rows.length})),
      {batchSizes: {ir: irBatch, sts: stsBatch}, policy: 'round-robin'},
      1,
    )
    const events: {event: StepEvent; at: number}[] = []
    const trainer = new Trainer({
      encoder,
      datasets,
      sampler,
      objectives: {
        ir: new IrObjective([{loss: createIrInfoNce({positives: 1, negatives: 3, temperature: 0.02}) as IrLoss, weight: 1}]),
        sts: new StsObjective([{loss: createCodiembSts({}) as StsLoss, weight: 1}]),
      },
      optimizer: {learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 1},
      warmupRatio: 0,
      epochs: 1,
      gradientAccumulation: 1,
      seed: 1,
      maxLength: {query: maxLength, passage: maxLength, sts: maxLength},
      instructions: PAPER_INSTRUCTIONS,
      dropout: true,
      prefetch: 2,
      stopAfterSteps: STEPS + 1,
      settings: 'bench',
      onEvent: (event) => {
        if (event.type === 'step') events.push({event, at: performance.now()})
      },
    })
    const summary = await trainer.run()
    const measured = events.slice(1)
    const seconds = (measured.at(-1)!.at - events[0].at) / 1000
    const examples = measured.reduce((a, e) => a + e.event.examples, 0)
    const tokens = measured.reduce((a, e) => a + e.event.tokens, 0)
    const perTask = (task: string) => measured.filter((e) => task in e.event.loss).length
    console.log(
      `${backend.padEnd(10)} ${model.name.padEnd(36)} ${(examples / seconds).toFixed(2).padStart(8)} examples/s ${(tokens / seconds).toFixed(0).padStart(8)} tokens/s  (${measured.length} steps: ${perTask('ir')} ir × ${irBatch}, ${perTask('sts')} sts × ${stsBatch}, ≤${maxLength} tokens, ${seconds.toFixed(1)} s; tokenizer ${summary.pipeline.tokenizerThread}, waited ${summary.pipeline.notReady}× ${(summary.pipeline.waitSeconds * 1000).toFixed(0)} ms)`,
    )
    trainer.dispose()
    encoder.dispose()
  }
}
