import {Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'
import {formatDuration} from '../cli/progress.js'
import type {TrainEvent} from '../core/events.js'
import {applyHelp} from '../cli/messages.js'
import {OUTPUTS, overwriteFlag} from '../cli/outputs.js'
import {distributedFlags, startRanks} from '../cli/distributed.js'
import type {TrainSection, TrainSectionInput} from '../train/config.js'
import type {TrainPlan} from '../train/plan.js'
import type {TrainRunResult} from '../train/run.js'
import type {MemoryPlan} from '../core/events.js'
import type {MemoryTarget} from '../train/memory-plan.js'

export type TrainCommandResult =
  | {dryRun: true; plan: TrainPlan}
  /** --dry-run without the training files: the memory plan alone. */
  | {dryRun: true; plan: null; memory: MemoryPlan; missingData: string[]}
  | ({dryRun: false} & TrainRunResult)

export default class Train extends CodiembCommand<typeof Train> {
  static {applyHelp(this, 'train')}
  static override flags = {
    ...CodiembCommand.backendFlags,
    ...CodiembCommand.progressFlags,
    config: Flags.string({char: 'c', summary: 'Configuration file with a train section.', helpValue: 'FILE', required: true}),
    resume: Flags.string({summary: 'Continue from this checkpoint directory (written by an earlier run of the same config).', helpValue: 'DIR'}),
    'dry-run': Flags.boolean({summary: 'Print the training plan without loading a model.'}),
    'device-memory': Flags.string({
      summary: 'Plan memory for a device with this much memory (e.g. 141GiB, 80GB), present or not.',
      helpValue: 'SIZE',
      helpGroup: 'TENSOR',
    }),
    ...distributedFlags('Train data-parallel'),
    ...overwriteFlag,
  }

  protected async exec(): Promise<TrainCommandResult> {
    const f = this.flags
    const start = await startRanks('train', this.argv, f, {
      json: this.jsonEnabled(),
      noLaunch: f['dry-run'],
      signal: () => this.stopSignal('stopping every rank (each finishes its step; rank 0 writes a checkpoint)'),
    })
    if (start.launched) return (start.result ?? {dryRun: false}) as TrainCommandResult
    const dist = start.env
    const {loadConfig} = await import('../config/load.js')
    const loaded = await loadConfig(f.config)
    // The loader filled in the schema's defaults: the section is normalised.
    const section = loaded.config.train as TrainSection | undefined
    if (!section) throw new CodiembError(`${loaded.filepath ?? f.config}: no "train" section`, {exitCode: 2})
    const defaultSeed = loaded.config.seed as number | undefined
    const registry = await this.registry()
    const [{TrainConfigError}, {setupTraining}, {runTraining}] = await Promise.all([import('../train/config.js'), import('../train/setup.js'), import('../train/run.js')])
    const asUsageError = (error: unknown): never => {
      const e = error as Error & {exitCode?: number}
      if (error instanceof TrainConfigError || e.exitCode === 2) throw new CodiembError(e.message, {exitCode: 2})
      throw error
    }

    const {parseBytes} = await import('../core/bytes.js')
    let deviceMemory: number | undefined
    try {
      deviceMemory = f['device-memory'] === undefined ? undefined : parseBytes(f['device-memory'])
    } catch (error) {
      throw new CodiembError(`--device-memory: ${(error as Error).message}`, {exitCode: 2})
    }
    const target = {backend: f.backend, device: f.device, precision: f.precision as 'fp32' | 'tf32' | 'bf16' | undefined, deviceMemory}

    if (f['dry-run']) {
      const [{existsSync}, {fileSpec}] = await Promise.all([import('node:fs'), import('../train/config.js')])
      const missing = section.data.map((spec) => fileSpec(spec, section.dataDir).path).filter((p) => !existsSync(p))
      if (missing.length) return this.planWithoutData(section, missing, f.resume ?? section.model, target, defaultSeed)
      const setup = await setupTraining(section, registry, {defaultSeed, worldSize: dist?.worldSize ?? f['nproc-per-node']}).catch(asUsageError)
      const [{planTrainingMemory, memoryPlanLines}, {closeTrainingData}] = await Promise.all([import('../train/memory-plan.js'), import('../train/data.js')])
      try {
        setup.plan.memory = await planTrainingMemory(setup, f.resume ?? section.model, registry, target)
      } catch (error) {
        this.addWarning(`no memory plan: ${(error as Error).message}`)
      } finally {
        await closeTrainingData(setup.datasets)
      }
      this.printPlan(setup.plan)
      if (setup.plan.memory) {
        for (const line of memoryPlanLines(setup.plan.memory)) this.info(line)
        for (const warning of setup.plan.memory.warnings) this.addWarning(warning)
      }
      this.emit({type: 'plan', ...setup.plan})
      return {dryRun: true, plan: setup.plan}
    }

    // Both outputs are claimed before anything is loaded: refused, locked and checked writable now.
    // A resumed run continues a training run: it may replace a model `codiemb train` wrote.
    const {checkpointDirOf} = await import('../train/run.js')
    const {readOutputMarker} = await import('../core/outputs.js')
    const [{existsSync}, {join}] = await Promise.all([import('node:fs'), import('node:path')])
    const marker = readOutputMarker(section.output)
    const trained = marker ? marker.command === 'train' : existsSync(join(section.output, 'codiemb_training.json'))
    // Ranks other than 0 write nothing (rank 0 holds the outputs).
    if (!dist || dist.rank === 0) {
      await this.outputs.claim(section.output, OUTPUTS.model, {flag: 'train.output', overwrite: f.overwrite || (f.resume !== undefined && trained)})
      await this.outputs.claim(checkpointDirOf(section), OUTPUTS.checkpoints, {
        flag: 'the checkpoints folder',
        overwrite: f.overwrite,
        policy: f.resume ? 'add' : 'replace',
        hint: 'or --resume a checkpoint in it',
      })
    }
    const {joinDataParallel, rankSettings} = await import('../cli/distributed.js')
    if (dist) Object.assign(this.flags, rankSettings(dist, f))
    const selection = await this.activateBackend()
    const distributed = dist ? await joinDataParallel(dist, selection.name) : undefined
    const reporter = this.reporter()
    let announcePlan!: (plan: TrainPlan) => void
    const planned = new Promise<TrainPlan>((resolve) => (announcePlan = resolve))
    // An epoch's task ends when a step of a later epoch is reported (whose line then waits for the
    // next epoch's task), or when the run ends. The tasks run one after the other: one at a time waits.
    let epochsDone = 0
    let waiting: {epoch: number; resolve: () => void} | undefined
    const epochDone = (epoch: number) => new Promise<void>((resolve) => (epoch < epochsDone ? resolve() : (waiting = {epoch, resolve})))
    const onEvent = (event: TrainEvent): void => {
      if (event.type === 'plan') announcePlan(event)
      if (event.type === 'step' && event.epoch > epochsDone) {
        epochsDone = event.epoch
        reporter.target = undefined
        if (waiting && waiting.epoch < epochsDone) waiting.resolve()
      }
      const line = reporter.onEvent(event)
      // Measurements stay on screen once the task's live line has moved on.
      if (line !== undefined && (event.type === 'probe' || event.type === 'validation' || event.type === 'warning')) this.info(line)
    }

    let run!: Promise<TrainRunResult>
    let result!: TrainRunResult
    await this.tasks([
      {
        title: 'Loading data, losses, sampler and model',
        task: async (_ctx, task) => {
          reporter.into(task)
          const signal = this.stopSignal('finishing the current step, then writing a checkpoint')
          const memoryTarget = {...target, backend: selection.name}
          run = runTraining(section, {registry, resume: f.resume, defaultSeed, asWritten: loaded.asWritten.train as TrainSectionInput, onEvent, signal, onWarning: (w) => this.addWarning(w), memoryTarget, replaceCheckpoints: f.overwrite, distributed})
          const p = await Promise.race([planned, run.then(() => planned)])
          task.title = `Plan: ${p.totalSteps} steps (${p.stepsPerEpoch}/epoch × ${p.epochs}), ${p.datasets.length} datasets, warm-up ${p.warmupSteps}`
        },
      },
      ...Array.from({length: section.epochs}, (_, epoch) => ({
        title: `Epoch ${epoch + 1}/${section.epochs}`,
        task: async (_ctx: unknown, task: {output: string}) => {
          reporter.into(task)
          await Promise.race([epochDone(epoch), run])
        },
      })),
      {
        title: 'Saving the final model',
        task: async (_ctx, task) => {
          reporter.into(task)
          result = await run
          task.title = `Saved ${result.output}`
        },
      },
    ]).catch(asUsageError)
    const s = result.summary
    this.info(
      `trained ${s.steps}/${s.totalSteps} steps in ${formatDuration(s.seconds)} (${(s.examples / s.seconds).toFixed(1)} examples/s); loss ` +
        Object.keys(s.lossFirst).map((t) => `${t} ${s.lossFirst[t].toFixed(4)} → ${s.lossLast[t].toFixed(4)}`).join(', ') +
        (s.skippedBatches ? `; ${s.skippedBatches} batches skipped for a non-finite loss or gradient` : ''),
    )
    if (s.probe) {
      const {first, last} = s.probe
      const arrow = (a: number | undefined, b: number | undefined) => `${a?.toFixed(4) ?? '?'} → ${b?.toFixed(4) ?? '?'}`
      this.info(
        `probe loss (step ${first.step} → ${last.step}): ` +
          Object.keys(first.loss)
            .map((task) => {
              const parts = Object.keys(first.components[task] ?? {}).map((name) => `${name} ${arrow(first.components[task][name], last.components[task]?.[name])}`)
              return `${task} ${arrow(first.loss[task], last.loss[task])}${parts.length ? ` (${parts.join(', ')})` : ''}`
            })
            .join('; '),
      )
    }
    this.emit({type: 'done', command: 'train', output: result.output, steps: s.steps, lossFirst: s.lossFirst, lossLast: s.lossLast, probe: s.probe && {first: s.probe.first, last: s.probe.last}})
    return {dryRun: false, ...result}
  }

  /**
   * --dry-run when training files are absent (planning for a machine that has them): the memory plan
   * from the file names, batch sizes, lengths and the model's config.json (src/train/shape-plan.ts),
   * without epoch or step counts.
   */
  private async planWithoutData(section: TrainSection, missing: string[], model: TrainSection['model'], target: MemoryTarget, defaultSeed?: number): Promise<TrainCommandResult> {
    const [{planMemoryFromShapes}, {memoryPlanLines}] = await Promise.all([import('../train/shape-plan.js'), import('../train/memory-plan.js')])
    this.addWarning(`${missing.length} training file(s) not found (${missing[0]}${missing.length > 1 ? ', …' : ''}): planning memory from the file names, batch sizes and lengths only; no epoch or step counts`)
    const memory = await planMemoryFromShapes(section, await this.registry(), model, target, {defaultSeed}).catch((error: unknown) => {
      const e = error as Error & {exitCode?: number}
      throw e.exitCode === 2 ? e : new CodiembError(`no memory plan: ${e.message}`, {exitCode: 2})
    })
    for (const line of memoryPlanLines(memory)) this.info(line)
    for (const warning of memory.warnings) this.addWarning(warning)
    return {dryRun: true, plan: null, memory, missingData: missing}
  }

  private printPlan(plan: TrainPlan): void {
    this.info(`sampler ${plan.sampler.name} ${JSON.stringify(plan.sampler.options)}; gradient accumulation ${plan.gradientAccumulation}`)
    for (const d of plan.datasets)
      this.info(
        `  ${d.task.padEnd(3)} ${d.name}: ${d.rows} rows${d.droppedRows ? ` (${d.droppedRows} dropped)` : ''}, batch ${d.batchSize}, ${d.batchesPerEpoch} batches / ${d.stepsPerEpoch} steps per epoch`,
      )
    this.info(`steps: ${plan.stepsPerEpoch} per epoch (${Object.entries(plan.stepsPerEpochByTask).map(([t, n]) => `${t} ${n}`).join(', ')}) × ${plan.epochs} epochs = ${plan.totalSteps}; warm-up ${plan.warmupSteps}`)
    this.info(`examples per step: ${Object.entries(plan.examplesPerStep).map(([t, n]) => `${t} ${n}`).join(', ')}; dropped rows: ${plan.droppedRows}`)
    if (plan.negativesPerQuery) {
      const n = plan.negativesPerQuery
      this.info(`negatives per query seen by the IR loss: ${n.total} (${n.hard} hard + ${n.inBatch} in-batch), ${n.positivesPerQuery} positive slot(s)`)
    }
    for (const [task, losses] of Object.entries(plan.losses))
      this.info(`${task} loss: ${losses.map((l) => `${l.weight}·${l.name}${Object.keys(l.options).length ? JSON.stringify(l.options) : ''}`).join(' + ')}`)
  }
}
