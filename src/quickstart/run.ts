/**
 * `codiemb quickstart` as a library: the whole CoDiEmb pipeline on the sample bundled in the
 * repository (quickstart/data, derived from SNLI 1.0, CC BY-SA 4.0).
 *
 *   prepare (recipes/quickstart/prepare.yaml)
 *   -> a small random BERT with the bundled WordPiece tokenizer, saved as the base θ0 ("init")
 *   -> checkpoint A: IR-heavy mix (all IR triplets + a little STS), dynamic sampler
 *   -> checkpoint B: STS-heavy mix (all STS pairs + a little IR), dynamic sampler
 *   -> delta fusion of A and B over θ0 ("merged")
 *   -> evaluation of init / A / B / merged on the held-out STS pairs and the retrieval task
 *   -> report.html
 *
 * The stages are returned as a list so that the command can show each one as a listr2 task; the
 * orchestration (what each stage does, with which settings) lives here, not in the command.
 */
import {existsSync, mkdirSync, rmSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {writeFileAtomic} from '../core/fs-atomic.js'
import type {Registry} from '../registry/registry.js'
import type {PrepareConfig, PrepareResult} from '../data/prepare.js'
import type {TrainSectionInput} from '../train/config.js'
import type {TrainRunResult} from '../train/run.js'
import type {MergeReport} from '../merge/engine.js'
import type {TaskDefinition} from '../eval/tasks.js'
import type {TaskEvaluation} from '../eval/evaluate.js'
import type {ModelScores, QuickstartEvent, QuickstartResult} from '../core/events.js'

export type {ModelScores, QuickstartEvent, QuickstartResult} from '../core/events.js'

/** The repository root: this file is src/quickstart/run.ts, compiled to dist/src/quickstart/run.js. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'quickstart', 'data')) && existsSync(join(dir, 'package.json'))) return dir
    dir = dirname(dir)
  }
  throw new Error('cannot find the repository root (a folder with package.json and quickstart/data) above ' + fileURLToPath(import.meta.url))
}

/** Shape of the random encoder: small enough to train in minutes on 2 CPU cores. */
export const QUICKSTART_MODEL = {arch: 'bert', layers: 2, hidden: 32, heads: 2, intermediate: 64, maxPositions: 64, pooling: 'mean' as const, seed: 1}

/** Default optimizer steps per checkpoint (one pass over the larger task of each mix). */
export const DEFAULT_STEPS = 40

/** The two task mixes: which rows of each prepared training file go into a checkpoint. */
export const MIXES = [
  {id: 'a', name: 'ir-heavy', title: 'IR-heavy', irRows: 1500, stsRows: 600},
  {id: 'b', name: 'sts-heavy', title: 'STS-heavy', irRows: 300, stsRows: 3000},
] as const

export interface QuickstartOptions {
  /** Output folder (created; an existing quickstart output there is replaced: the command claims it first, cli/outputs.ts). */
  out: string
  registry: Registry
  /** Optimizer steps per checkpoint (default DEFAULT_STEPS). */
  steps?: number
  /** Evaluate only the first N STS pairs / retrieval queries (tests). */
  evalLimit?: number
  /**
   * Progress: each stage's start and end, and the events of the engines the stages run (tagged
   * with the stage, or with the model for evaluation events).
   */
  onEvent?: (event: QuickstartEvent) => void
}

export interface QuickstartStage {
  id: string
  title: string
  /** Runs the stage (reporting through `onEvent`). Returns the stage's final title. */
  run(): Promise<string>
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), {recursive: true})
  writeFileAtomic(path, text)
}

const EVAL_TASKS: TaskDefinition[] = [
  {name: 'SNLI-STS', type: 'sts', split: 'test', mainScore: 'cosine_spearman', languages: ['eng-Latn'], scoreRange: [0, 1], files: {pairs: 'snli-sts/test.sts-pair.arrow'}},
  {
    name: 'SNLI-Retrieval',
    type: 'retrieval',
    split: 'test',
    mainScore: 'ndcg_at_10',
    languages: ['eng-Latn'],
    files: {corpus: 'snli-retrieval/corpus.arrow', queries: 'snli-retrieval/queries.arrow', qrels: 'snli-retrieval/test.qrels.arrow'},
  },
]

const IR_BATCH = 32
const STS_BATCH = 32

/**
 * Rows of each task a mix trains on. One epoch over the full mix is about DEFAULT_STEPS batches; fewer
 * steps take the same mix with fewer rows (still one epoch, so the learning-rate schedule runs to its
 * end); more steps take more epochs.
 */
export function mixRows(mix: (typeof MIXES)[number], steps: number): {irRows: number; stsRows: number; epochs: number} {
  const fullBatches = Math.floor(mix.irRows / IR_BATCH) + Math.floor(mix.stsRows / STS_BATCH)
  const share = Math.min(1, steps / fullBatches)
  return {
    irRows: Math.max(IR_BATCH, Math.round((mix.irRows * share) / IR_BATCH) * IR_BATCH),
    stsRows: Math.max(STS_BATCH, Math.round((mix.stsRows * share) / STS_BATCH) * STS_BATCH),
    epochs: Math.max(1, Math.ceil(steps / fullBatches)),
  }
}

function trainSection(mix: (typeof MIXES)[number], dirs: {prepared: string; init: string; runs: string}, steps: number): TrainSectionInput {
  const irBatch = IR_BATCH
  const stsBatch = STS_BATCH
  const {irRows, stsRows, epochs} = mixRows(mix, steps)
  return {
    model: dirs.init,
    output: join(dirs.runs, `${mix.id}-${mix.name}`),
    dataDir: dirs.prepared,
    data: [
      {path: 'snli-ir/train.ir-example.arrow', limit: irRows},
      {path: 'snli-sts/train.sts-pair.arrow', limit: stsRows},
    ],
    tasks: {
      ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 1, temperature: 0.05}}], maxLength: {query: 32, passage: 32}},
      // No losses given: the default STS objective, the paper's mid-infonce + 0.5·pro + 2·pearson + 5·rank-kl.
      sts: {maxLength: 32},
    },
    sampler: {name: 'dynamic', options: {batchSizes: {ir: irBatch, sts: stsBatch}, policy: 'proportional'}},
    epochs,
    // A slice's batch count rounds to about `steps`; the cap makes it exact.
    maxSteps: steps,
    // A random init needs a far larger rate than the paper's fine-tuning.
    learningRate: 2e-3,
    warmupRatio: 0.05,
    weightDecay: 0.01,
    maxGradNorm: 1,
    seed: 7,
    checkpoint: {everyEpoch: false, everySteps: 0, keepLast: 1},
  }
}

/** The quickstart's stages, in order; run them one after the other, then call `result()`. */
export function quickstartStages(options: QuickstartOptions): {stages: QuickstartStage[]; result(): QuickstartResult} {
  const root = repoRoot()
  const out = resolve(options.out)
  const steps = options.steps ?? DEFAULT_STEPS
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps: expected a positive integer, got ${steps}`)
  const dirs = {prepared: join(out, 'prepared'), models: join(out, 'models'), runs: join(out, 'models'), results: join(out, 'results'), events: join(out, 'events')}
  const init = join(dirs.models, 'init')
  const merged = join(dirs.models, 'merged')
  const emit = options.onEvent ?? (() => {})
  const started = Date.now()
  const stageSeconds: Record<string, number> = {}
  const stageCpuSeconds: Record<string, number> = {}
  const cpuStart = process.cpuUsage()
  const trained: {mix: (typeof MIXES)[number]; result: TrainRunResult}[] = []
  const scores: ModelScores[] = []
  let mergeReport: MergeReport | undefined
  let reportPath = ''

  const timed = (id: string, title: string, body: () => Promise<string>): QuickstartStage => ({
    id,
    title,
    run: async () => {
      const t0 = Date.now()
      const cpu0 = process.cpuUsage()
      emit({type: 'stage-start', stage: id})
      const done = await body()
      stageSeconds[id] = (Date.now() - t0) / 1000
      const cpu = process.cpuUsage(cpu0)
      // CPU time shows the work done even when other processes share the cores (wall time then inflates).
      stageCpuSeconds[id] = (cpu.user + cpu.system) / 1e6
      emit({type: 'stage-done', stage: id, seconds: stageSeconds[id], cpuSeconds: stageCpuSeconds[id]})
      return `${done} (${stageSeconds[id].toFixed(1)} s)`
    },
  })

  const stages: QuickstartStage[] = [
    timed('prepare', 'Preparing the bundled SNLI sample', async () => {
      for (const d of [dirs.prepared, dirs.models, dirs.results, dirs.events]) rmSync(d, {recursive: true, force: true})
      mkdirSync(out, {recursive: true})
      const {loadConfig} = await import('../config/load.js')
      const recipe = (await loadConfig(join(root, 'recipes', 'quickstart', 'prepare.yaml'))).config as {prepare: PrepareConfig}
      const {prepare} = await import('../data/prepare.js')
      const result: PrepareResult = await prepare(recipe.prepare, {
        dataRoot: join(root, 'quickstart', 'data'),
        out: dirs.prepared,
        registry: options.registry,
        onEvent: (e) => emit({...e, stage: 'prepare'}),
      })
      return `Prepared ${result.datasets.map((d) => `${d.name} ${d.rows.toLocaleString('en')} rows`).join(', ')}`
    }),
    timed('init', 'Initialising a small random BERT', async () => {
      const {initRandomEncoder} = await import('../model/encoder.js')
      const {arch, seed, ...shape} = QUICKSTART_MODEL
      const encoder = await initRandomEncoder({arch, seed, ...shape, tokenizerDir: join(root, 'quickstart', 'data', 'tokenizer'), registry: options.registry})
      let parameters = 0
      for (const v of encoder.variables.values()) parameters += v.size
      await encoder.save(init, {outputOf: 'quickstart'})
      encoder.dispose()
      return `Random BERT: ${shape.layers} layers, hidden ${shape.hidden}, ${(parameters / 1e6).toFixed(2)} M parameters`
    }),
    ...MIXES.map((mix) =>
      timed(`train-${mix.id}`, `Training checkpoint ${mix.id.toUpperCase()} (${mix.title}: ${mixRows(mix, steps).irRows} IR triplets, ${mixRows(mix, steps).stsRows} STS pairs, ${steps} steps)`, async () => {
        const {normaliseTrainSection} = await import('../train/config.js')
        const section = normaliseTrainSection(trainSection(mix, {...dirs, init}, steps))
        const {runTraining} = await import('../train/run.js')
        const eventsFile = join(dirs.events, `train-${mix.id}-${mix.name}.ndjson`)
        mkdirSync(dirs.events, {recursive: true})
        const lines: string[] = []
        const result = await runTraining(section, {
          registry: options.registry,
          // Steps and status lines are passed on. The plan is in the stage's title; the mixes
          // configure neither probe nor validation; the checkpoints folder is deleted below.
          onEvent: (e) => {
            if (e.type === 'step') {
              // `losses` is the per-task map the report charts.
              lines.push(JSON.stringify({...e, losses: e.loss}))
              emit({...e, stage: `train-${mix.id}`})
            } else if (e.type === 'status') emit({...e, stage: `train-${mix.id}`})
          },
        })
        writeAtomic(eventsFile, lines.join('\n') + '\n')
        // Only the final model is kept; the trainer's own checkpoints folder is not needed here.
        rmSync(`${section.output}-checkpoints`, {recursive: true, force: true})
        trained.push({mix, result})
        const s = result.summary
        const change = Object.keys(s.lossFirst)
          .map((task) => `${task} loss ${s.lossFirst[task].toFixed(3)} → ${s.lossLast[task].toFixed(3)}`)
          .join(', ')
        return `Checkpoint ${mix.id.toUpperCase()} (${mix.title}): ${s.steps} steps, ${change}`
      }),
    ),
    timed('merge', 'Merging A and B with delta fusion', async () => {
      const {mergeCheckpoints} = await import('../merge/engine.js')
      mergeReport = await mergeCheckpoints({
        method: 'delta',
        base: init,
        checkpoints: trained.map((t) => t.result.output),
        out: merged,
        force: true,
        registry: options.registry,
        onEvent: (e) => emit({...e, stage: 'merge'}),
      })
      const w = mergeReport.summary.meanWeights.map((x) => x.toFixed(2)).join(' / ')
      return `Merged ${mergeReport.summary.merged} tensors, mean weight A / B ${w}`
    }),
    timed('eval', 'Evaluating init, A, B and merged', async () => {
      const {loadModelForEval} = await import('../eval/model.js')
      const {runTasks} = await import('../eval/evaluate.js')
      const {writeResults} = await import('../eval/results.js')
      const models = [
        {name: 'init', path: init},
        ...trained.map((t) => ({name: `${t.mix.id}-${t.mix.name}`, path: t.result.output})),
        {name: 'merged', path: merged},
      ]
      for (const m of models) {
        const model = await loadModelForEval(m.path, {registry: options.registry, name: `quickstart-${m.name}`})
        let evaluations: TaskEvaluation[]
        try {
          evaluations = await runTasks(model.encoder, EVAL_TASKS, {
            dataDir: dirs.prepared,
            batchSize: 64,
            maxLength: 32,
            limit: options.evalLimit,
            onEvent: (e) => emit({...e, model: m.name}),
          })
        } finally {
          model.dispose()
        }
        const written = writeResults(dirs.results, model.info, evaluations)
        const main = (name: string) => evaluations.find((e) => e.task.name === name)!.scores.main_score * 100
        const entry = {name: m.name, path: m.path, sts: main('SNLI-STS'), retrieval: main('SNLI-Retrieval'), resultsDir: written.dir}
        scores.push(entry)
        emit({type: 'eval-model', model: m.name, sts: entry.sts, retrieval: entry.retrieval})
      }
      return `Evaluated ${models.length} models on ${EVAL_TASKS.map((t) => t.name).join(' and ')}`
    }),
    timed('report', 'Writing the HTML report', async () => {
      const {buildReport} = await import('../eval/report.js')
      const report = buildReport(out, {title: 'codiemb quickstart'})
      reportPath = join(out, 'report.html')
      writeAtomic(reportPath, report.html)
      return `Report: ${reportPath} (${report.charts} charts)`
    }),
  ]

  const result = (): QuickstartResult => {
    const base = scores.find((s) => s.name === 'init')
    if (!base || !mergeReport) throw new Error('quickstart: result() called before every stage ran')
    const improvement: QuickstartResult['improvement'] = {}
    for (const s of scores) if (s !== base) improvement[s.name] = {sts: s.sts - base.sts, retrieval: s.retrieval - base.retrieval}
    const verdict = verdictLines(base, scores)
    const summary: QuickstartResult = {
      out,
      steps,
      models: scores,
      improvement,
      verdict,
      merge: {path: merged, meanWeights: mergeReport.summary.meanWeights},
      report: reportPath,
      seconds: (Date.now() - started) / 1000,
      stageSeconds,
      cpuSeconds: ((c) => (c.user + c.system) / 1e6)(process.cpuUsage(cpuStart)),
      stageCpuSeconds,
    }
    writeAtomic(join(out, 'quickstart.json'), JSON.stringify(summary, null, 1) + '\n')
    return summary
  }
  return {stages, result}
}

/** What improved over the untrained model and what did not, in words (points are score × 100). */
export function verdictLines(base: ModelScores, models: ModelScores[]): string[] {
  const lines: string[] = []
  const MIN_GAIN = 1 // points: smaller changes are within run-to-run noise on this sample
  for (const m of models) {
    if (m === base) continue
    for (const [task, label] of [['sts', 'STS Spearman'], ['retrieval', 'retrieval nDCG@10']] as const) {
      const delta = m[task] - base[task]
      const what = delta >= MIN_GAIN ? 'improved' : delta <= -MIN_GAIN ? 'got WORSE' : 'did NOT improve'
      lines.push(`${m.name}: ${label} ${what}: ${base[task].toFixed(2)} → ${m[task].toFixed(2)} (${delta >= 0 ? '+' : ''}${delta.toFixed(2)})`)
    }
  }
  return lines
}
