import {Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'

export interface EvalCommandResult {
  model: string
  revision: string
  dir: string
  files: string[]
  summary: unknown
  tasks: Record<string, {split: string; main_score: number; evaluation_time: number; cache: {hits: number; misses: number}}>
}

const splitList = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined)

export default class Eval extends CodiembCommand<typeof Eval> {
  static {applyHelp(this, 'eval')}
  static override flags = {
    ...CodiembCommand.encoderFlags('Model directory (sentence-transformers or Hugging Face layout).'),
    benchmark: Flags.string({char: 'b', summary: 'Benchmark(s) to run, comma-separated: cmteb, mteb-en-sts, beir, or a plugin benchmark.'}),
    tasks: Flags.string({char: 't', summary: 'Task names, comma-separated (benchmark tasks or user-defined tasks from the config).'}),
    config: Flags.string({char: 'c', summary: 'Configuration file; its eval section supplies defaults and user-defined tasks.', helpValue: 'FILE'}),
    'data-dir': Flags.string({summary: 'Directory holding the task data.', helpValue: 'DIR'}),
    out: Flags.string({char: 'o', summary: 'Results directory.', helpValue: 'DIR'}),
    'cache-dir': Flags.string({summary: 'Embedding cache directory (default: {out}/.embedding-cache).', helpValue: 'DIR'}),
    'no-cache': Flags.boolean({summary: 'Keep embeddings in memory only.'}),
    'batch-size': Flags.integer({summary: 'Texts per encoder batch.', min: 1}),
    'max-length': Flags.integer({summary: 'Max tokens per text (default: the model’s).', min: 1}),
    'top-k': Flags.integer({summary: 'Documents retrieved per query (default 1000).', min: 1, max: 10000}),
    limit: Flags.integer({summary: 'Only the first N STS pairs / judged queries per task (quick checks).', min: 1}),
    'no-instructions': Flags.boolean({summary: 'Do not prefix queries and STS texts with the task instruction.'}),
    geometry: Flags.boolean({summary: 'Also measure isotropy (mean cosine of random pairs) and token-state geometry (mean token cosine, effective rank, SVD entropy, condition number).'}),
    'model-name': Flags.string({summary: 'Model name in the results path (default: the model directory name).'}),
    revision: Flags.string({summary: 'Revision label in the results path (default: the first 12 hex digits of the weight fingerprint).'}),
  }

  protected async exec(): Promise<EvalCommandResult> {
    const f = this.flags
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

    await this.activateBackend()
    const {loadModelForEval} = await import('../eval/model.js')
    const model = await loadModelForEval(f.model, {registry, name: f['model-name'], revision: f.revision, onWarning: (w) => this.addWarning(w)})
    const {runTasks} = await import('../eval/evaluate.js')
    const {EmbeddingStore} = await import('../eval/embedding-cache.js')
    const store = new EmbeddingStore(cacheDir)
    const {TaskDataError} = await import('../eval/task-data.js')
    const evaluations: Awaited<ReturnType<typeof runTasks>> = []
    const reporter = this.reporter()
    try {
      await this.tasks(
        tasks.map((task) => ({
          title: `${task.name} (${task.type}, ${task.split})`,
          task: async (_ctx: unknown, t: {output: string; title: string}) => {
            const [ev] = await runTasks(model.encoder, [task], {
              dataDir,
              cacheDir,
              store,
              batchSize: f['batch-size'] ?? (evalConfig.batchSize as number | undefined),
              maxLength: f['max-length'] ?? (evalConfig.maxLength as number | undefined),
              topK: f['top-k'] ?? (evalConfig.topK as number | undefined),
              limit: f.limit ?? (evalConfig.limit as number | undefined),
              instructions: f['no-instructions'] ? false : ((evalConfig.instructions as boolean | undefined) ?? true),
              instructionTemplate: evalConfig.instructionTemplate as string | undefined,
              geometry: f.geometry,
              onEvent: reporter.into(t),
            })
            evaluations.push(ev)
            t.title = `${task.name}: ${task.mainScore} ${(ev.scores.main_score * 100).toFixed(2)} (${ev.evaluationTime.toFixed(1)} s${ev.cache.misses === 0 ? ', cached' : ''})`
          },
        })),
      )
    } catch (error) {
      if (error instanceof TaskDataError) throw new CodiembError(error.message, {exitCode: 2, name: 'TaskDataError'})
      throw error
    } finally {
      model.dispose()
    }
    const {writeResults, summaryRows} = await import('../eval/results.js')
    const written = writeResults(out, model.info, evaluations)
    this.emit({type: 'eval-summary', dir: written.dir, averages: written.summary.averages})
    if (!this.jsonEnabled()) {
      const {renderTable} = await import('../cli/table.js')
      this.info('')
      this.info(renderTable(['task', 'type', 'split', 'metric', 'score'], summaryRows(written.summary)))
      this.info(`\nresults: ${written.dir}`)
    }
    return {
      model: model.info.name,
      revision: model.info.revision,
      dir: written.dir,
      files: written.files,
      summary: written.summary,
      tasks: Object.fromEntries(evaluations.map((e) => [e.task.name, {split: e.split, main_score: e.scores.main_score, evaluation_time: e.evaluationTime, cache: e.cache}])),
    }
  }
}
