import {Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import type {TaskEvaluation} from '../eval/evaluate.js'
import type {UnscoredSplit} from '../eval/results.js'
import {OUTPUTS} from '../cli/outputs.js'
import {distributedFlags, startRanks} from '../cli/distributed.js'

export interface EvalCommandResult {
  model: string
  revision: string
  dir: string
  files: string[]
  summary: unknown
  /** Per task, its scored split's result (the benchmark's split; summary.json's). */
  tasks: Record<string, {split: string; main_score: number; evaluation_time: number; cache: {hits: number; misses: number}}>
  /** Every split scored, when a task has several. */
  splits?: {task: string; split: string; main_score: number; evaluation_time: number; cache: {hits: number; misses: number}}[]
}

const result = (e: TaskEvaluation) => ({split: e.split, main_score: e.scores.main_score, evaluation_time: e.evaluationTime, cache: e.cache})

const splitList = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined)

export default class Eval extends CodiembCommand<typeof Eval> {
  static {applyHelp(this, 'eval')}
  static override flags = {
    ...CodiembCommand.encoderFlags('Model directory (sentence-transformers or Hugging Face layout).'),
    benchmark: Flags.string({char: 'b', summary: 'Benchmark(s) to run, comma-separated: cmteb, mteb-en-sts, beir, or a plugin benchmark.'}),
    tasks: Flags.string({char: 't', summary: 'Task names, comma-separated (benchmark tasks or user-defined tasks from the config).'}),
    split: Flags.string({summary: "Split(s) to score, comma-separated, instead of each task's own (e.g. dev,test); each is scored on its own data, and a missing one is reported, never replaced.", helpValue: 'SPLIT[,SPLIT]'}),
    config: Flags.string({char: 'c', summary: 'Configuration file; its eval section supplies defaults and user-defined tasks.', helpValue: 'FILE'}),
    'data-dir': Flags.string({summary: 'Directory holding the task data.', helpValue: 'DIR'}),
    out: Flags.string({char: 'o', summary: 'Results directory.', helpValue: 'DIR'}),
    'cache-dir': Flags.string({summary: 'Embedding cache directory (default: {out}/.embedding-cache).', helpValue: 'DIR'}),
    'no-cache': Flags.boolean({summary: 'Keep embeddings in memory only.'}),
    'batch-size': Flags.integer({summary: 'Texts per encoder batch.', min: 1}),
    'max-tokens-per-batch': Flags.integer({summary: 'Token budget per encoder batch, padding included (rows × longest row); texts are sorted by token count either way.', min: 1}),
    'max-length': Flags.integer({summary: 'Max tokens per text (default: the model’s).', min: 1}),
    'top-k': Flags.integer({summary: 'Documents retrieved per query (default 1000).', min: 1, max: 10000}),
    limit: Flags.integer({summary: 'Only the first N STS pairs / judged queries per task (quick checks).', min: 1}),
    'no-instructions': Flags.boolean({summary: 'Do not prefix queries and STS texts with the task instruction.'}),
    geometry: Flags.boolean({summary: 'Also measure isotropy (mean cosine of random pairs) and token-state geometry (mean token cosine, effective rank, SVD entropy, condition number).'}),
    'model-name': Flags.string({summary: 'Model name in the results path (default: the model directory name).'}),
    revision: Flags.string({summary: 'Revision label in the results path (default: the first 12 hex digits of the weight fingerprint).'}),
    'record-paths': Flags.boolean({summary: 'Write local paths (data files, model directory) into the result files as they are; by default data files are named relative to --data-dir and the model directory is left out.'}),
    ...distributedFlags('Encode in parallel'),
  }

  protected async exec(): Promise<EvalCommandResult> {
    const f = this.flags
    // --nproc-per-node N: every rank evaluates the same tasks, encoding every N-th slice of each text
    // set (all ranks get all vectors: EmbeddingStore); rank 0 alone owns the cache and writes results.
    const start = await startRanks('eval', this.argv, f, {json: this.jsonEnabled(), graceSeconds: 10, signal: () => this.stopSignal('stopping every rank')})
    if (start.launched) return start.result as EvalCommandResult
    const dist = start.env
    const writes = !dist || dist.rank === 0
    const {loadConfig} = await import('../config/load.js')
    const evalConfig = ((await loadConfig(f.config)).config.eval ?? {}) as Record<string, unknown>
    const registry = await this.registry()
    const {resolveTasks} = await import('../eval/resolve-tasks.js')
    const configBenchmarks = evalConfig.benchmark === undefined ? undefined : ([] as string[]).concat(evalConfig.benchmark as string | string[])
    const benchmarks = splitList(f.benchmark) ?? (f.tasks ? undefined : configBenchmarks)
    let tasks
    try {
      tasks = await resolveTasks(registry, {benchmarks, tasks: splitList(f.tasks), configTasks: evalConfig.tasks as never})
    } catch (error) {
      throw new CodiembError((error as Error).message, {exitCode: 2, name: 'UsageError'})
    }
    const out = f.out ?? (evalConfig.out as string | undefined) ?? 'results'
    const dataDir = f['data-dir'] ?? (evalConfig.dataDir as string | undefined) ?? 'data'
    const cacheDir = f['no-cache'] || evalConfig.cacheDir === false ? undefined : (f['cache-dir'] ?? (evalConfig.cacheDir as string | undefined) ?? `${out}/.embedding-cache`)

    const {splitsOf, taskSplits, scoredSplit} = await import('../eval/tasks.js')
    const splits = splitList(f.split)
    // (task, split) pairs: every split on its own data; --split replaces each task's own splits (all then required)
    const runs = tasks.flatMap((task) => {
      const own = splits?.length ? {...task, splits: undefined, scoredSplit: undefined, ...splitsOf(splits)} : task
      return taskSplits(own).map((split) => ({...own, split, required: !!splits?.length || split === scoredSplit(own)}))
    })
    if (!runs.length) throw new CodiembError('no tasks to evaluate: give --benchmark or --tasks (or eval.benchmark / eval.tasks in the config)', {exitCode: 2, name: 'UsageError'})

    // Runs evaluating other models may add to the same results folder: only this model's results are locked.
    if (writes) await this.outputs.claim(out, OUTPUTS.results, {flag: '--out', lock: false})
    const {joinShardGroup, rankSettings} = await import('../cli/distributed.js')
    if (dist) Object.assign(this.flags, rankSettings(dist, f))
    const backend = await this.activateBackend()
    const group = dist ? await joinShardGroup(dist, backend.name) : undefined
    const {loadModelForEval} = await import('../eval/model.js')
    const model = await loadModelForEval(f.model, {registry, name: f['model-name'], revision: f.revision, onWarning: (w) => this.addWarning(w)})
    const {resultDir} = await import('../eval/results.js')
    try {
      if (writes) this.outputs.lock(resultDir(out, model.info))
    } catch (error) {
      model.dispose()
      throw error
    }
    const {evaluateTask} = await import('../eval/evaluate.js')
    const {EmbeddingStore} = await import('../eval/embedding-cache.js')
    const store = new EmbeddingStore(cacheDir, {group})
    const {TaskDataError} = await import('../eval/task-data.js')
    const {isMissingSplit} = await import('../eval/evaluate.js')
    const optional = new Set<UnscoredSplit>()
    const evaluations: Awaited<ReturnType<typeof evaluateTask>>[] = []
    const unscored: UnscoredSplit[] = []
    const reporter = this.reporter()
    try {
      await this.tasks(
        runs.map((task) => ({
          title: `${task.name} (${task.type}, ${task.split})`,
          task: async (_ctx: unknown, t: {output: string; title: string}) => {
            let ev
            try {
              ev = await evaluateTask(model.encoder, task, {
                dataDir,
                cacheDir,
                store,
                batchSize: f['batch-size'] ?? (evalConfig.batchSize as number | undefined),
                maxLength: f['max-length'] ?? (evalConfig.maxLength as number | undefined),
                maxTokensPerBatch: f['max-tokens-per-batch'] ?? (evalConfig.maxTokensPerBatch as number | undefined),
                topK: f['top-k'] ?? (evalConfig.topK as number | undefined),
                limit: f.limit ?? (evalConfig.limit as number | undefined),
                instructions: f['no-instructions'] ? false : ((evalConfig.instructions as boolean | undefined) ?? true),
                instructionTemplate: evalConfig.instructionTemplate as string | undefined,
                geometry: f.geometry,
                onEvent: reporter.into(t),
              })
            } catch (error) {
              // Data that is missing or unreadable: this split is reported, the others go on; nothing stands in for it.
              if (!(error instanceof TaskDataError)) throw error
              const entry = {task: task.name, split: task.split, reason: error.message}
              unscored.push(entry)
              // a further metadata split (not the benchmark's scored one, not asked for by --split) that is simply absent is a warning
              if (!task.required && isMissingSplit(error)) optional.add(entry)
              t.title = `${task.name} (${task.split}): not scored — ${error.message.split('\n')[0]}`
              return
            }
            evaluations.push(ev)
            for (const w of ev.warnings) this.addWarning(w)
            t.title = `${task.name} (${task.split}): ${task.mainScore} ${(ev.scores.main_score * 100).toFixed(2)} (${ev.evaluationTime.toFixed(1)} s${ev.cache.misses === 0 ? ', cached' : ''})`
          },
        })),
      )
    } finally {
      model.dispose()
      group?.close()
    }
    const {writeResults, summaryRows} = await import('../eval/results.js')
    const paths = {recordPaths: f['record-paths'], dataDir}
    // ranks other than 0 computed the same scores and write nothing
    const written = evaluations.length && writes ? writeResults(out, model.info, evaluations, unscored, paths) : undefined
    if (written) {
      this.emit({type: 'eval-summary', dir: written.dir, averages: written.summary.averages})
      if (!this.jsonEnabled()) {
        const {renderTable} = await import('../cli/table.js')
        this.info('')
        this.info(renderTable(['task', 'type', 'split', 'metric', 'score'], summaryRows(written.summary)))
        this.info(`\nresults: ${written.dir}`)
      }
    }
    for (const u of optional) this.addWarning(`${u.task}: split ${u.split} not scored (its data is not there); the other splits were; summary.json lists it under "unscored"`)
    const failed = unscored.filter((u) => !optional.has(u))
    if (failed.length) {
      const list = failed.map((u) => `- ${u.task} (${u.split}): ${u.reason.replace(/\n/g, '\n    ')}`).join('\n')
      throw new CodiembError(
        `${failed.length} of ${runs.length} task split${runs.length === 1 ? '' : 's'} could not be scored; no other data was scored in ${failed.length === 1 ? 'its' : 'their'} place:\n${list}` +
          (written ? `\nThe splits that were scored are written to ${written.dir} (summary.json lists the unscored ones).` : ''),
        {exitCode: 2, name: 'TaskDataError', data: {unscored, ...(written ? {dir: written.dir, files: written.files} : {})}},
      )
    }
    // a rank other than 0 reports where rank 0 wrote (its files: none)
    const w = writes ? written! : {dir: resultDir(out, model.info), files: [], summary: null}
    return {
      model: model.info.name,
      revision: model.info.revision,
      dir: w.dir,
      files: w.files,
      summary: w.summary,
      tasks: Object.fromEntries(evaluations.filter((e) => e.split === scoredSplit(e.task)).map((e) => [e.task.name, result(e)])),
      ...(evaluations.length > new Set(evaluations.map((e) => e.task.name)).size
        ? {splits: evaluations.map((e) => ({task: e.task.name, ...result(e)}))}
        : {}),
    }
  }
}
