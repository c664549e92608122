import {Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import type {TrainSection, TrainSectionInput} from '../train/config.js'
import type {TrainPlan} from '../train/plan.js'
import type {TrainRunResult} from '../train/run.js'

export type TrainCommandResult = {dryRun: true; plan: TrainPlan} | ({dryRun: false} & TrainRunResult)

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

/** "ir 2.9132, sts 3.1045 (mid-infonce 1.2, pro 0.9, …)" */
function probeText(loss: Record<string, number>, components: Record<string, Record<string, number>>): string {
  return Object.entries(loss)
    .map(([task, v]) => {
      const parts = Object.entries(components[task] ?? {}).map(([name, c]) => `${name} ${c.toFixed(3)}`)
      return `${task} ${v.toFixed(4)}${parts.length ? ` (${parts.join(', ')})` : ''}`
    })
    .join(', ')
}

function deferred(): {promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void; settled: boolean} {
  let resolve!: () => void
  let reject!: (e: unknown) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {})
  const d = {promise, settled: false, resolve: () => ((d.settled = true), resolve()), reject: (e: unknown) => ((d.settled = true), reject(e))}
  return d
}

export default class Train extends CodiembCommand<typeof Train> {
  static {applyHelp(this, 'train')}
  static override flags = {
    ...CodiembCommand.backendFlags,
    ...CodiembCommand.progressFlags,
    config: Flags.string({char: 'c', summary: 'Configuration file with a train section.', helpValue: 'FILE', required: true}),
    resume: Flags.string({summary: 'Continue from this checkpoint directory (written by an earlier run of the same config).', helpValue: 'DIR'}),
    'dry-run': Flags.boolean({summary: 'Print the training plan without loading a model.'}),
  }

  protected async exec(): Promise<TrainCommandResult> {
    const f = this.flags
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

    if (f['dry-run']) {
      const setup = await setupTraining(section, registry, {defaultSeed}).catch(asUsageError)
      this.printPlan(setup.plan)
      this.emit({type: 'plan', ...setup.plan})
      return {dryRun: true, plan: setup.plan}
    }

    await this.activateBackend()
    type Ctx = {run?: Promise<TrainRunResult>; result?: TrainRunResult; plan?: TrainPlan}
    const ctx: Ctx = {}
    const epochs = section.epochs
    const epochDone = Array.from({length: epochs}, () => deferred())
    const planned = deferred()
    const outputs: {output: string}[] = []
    let setupTask: {output: string} | undefined
    let currentEpoch = -1
    let probeLine = ''
    const setOutput = (epoch: number, text: string) => {
      const holder = outputs[epoch]
      if (holder) holder.output = text
    }
    const finishEpochs = (upTo: number) => {
      for (let e = 0; e < Math.min(upTo, epochs); e++) if (!epochDone[e].settled) epochDone[e].resolve()
    }

    const startRun = () =>
      runTraining(section, {
        registry,
        resume: f.resume,
        defaultSeed,
        asWritten: loaded.asWritten.train as TrainSectionInput,
        onPlan: (plan) => {
          ctx.plan = plan
          this.emit({type: 'plan', ...plan})
          planned.resolve()
        },
        onStatus: (message) => {
          this.emit({type: 'status', message})
          if (currentEpoch < 0 && setupTask) setupTask.output = message
        },
        onStep: (e) => {
          this.emit({...e})
          if (e.epoch !== currentEpoch) {
            finishEpochs(e.epoch)
            currentEpoch = e.epoch
          }
          const losses = Object.entries(e.loss).map(([task, v]) => `${task} ${v.toFixed(4)}`).join(', ')
          setOutput(
            e.epoch,
            `step ${e.step}/${e.totalSteps} · loss ${losses} · lr ${e.lr.toExponential(2)} · ${e.examplesPerSecond.toFixed(1)} ex/s · ${Math.round(e.tokensPerSecond)} tok/s · ETA ${duration(e.etaSeconds)}${probeLine}`,
          )
        },
        onProbe: (p) => {
          this.emit({...p})
          const text = Object.entries(p.loss).map(([task, v]) => `${task} ${v.toFixed(4)}`).join(', ')
          probeLine = ` · probe (step ${p.step}) ${text}`
          if (currentEpoch < 0 && setupTask) setupTask.output = `probe loss before training: ${probeText(p.loss, p.components)}`
          this.info(`probe loss at step ${p.step}/${p.totalSteps}: ${probeText(p.loss, p.components)}`)
        },
        onCheckpoint: (path, step) => this.emit({type: 'checkpoint', path, step}),
        onValidation: (v) => {
          this.emit({type: 'validation', ...v})
          const text = Object.entries(v.spearman).map(([name, s]) => `${name} Spearman ${s.toFixed(2)}`).join(', ')
          if (v.epoch === 0) {
            if (setupTask) setupTask.output = `before training: ${text}`
          }
          else setOutput(v.epoch - 1, `validation: ${text}`)
          this.info(`validation after epoch ${v.epoch}: ${text}`)
        },
      })

    await this.tasks<Ctx>(
      [
        {
          title: 'Loading data, losses, sampler and model',
          task: async (c, task) => {
            setupTask = task
            c.run = startRun()
            c.run.then(
              () => {
                finishEpochs(epochs)
                planned.resolve()
              },
              (error) => {
                planned.reject(error)
                for (const d of epochDone) if (!d.settled) d.reject(error)
              },
            )
            await planned.promise
            const p = c.plan!
            task.title = `Plan: ${p.totalSteps} steps (${p.stepsPerEpoch}/epoch × ${p.epochs}), ${p.datasets.length} datasets, warm-up ${p.warmupSteps}`
          },
        },
        ...Array.from({length: epochs}, (_, e) => ({
          title: `Epoch ${e + 1}/${epochs}`,
          task: async (_c: Ctx, task: {output: string; title: string}) => {
            outputs[e] = task
            await epochDone[e].promise
          },
        })),
        {
          title: 'Saving the final model',
          task: async (c, task) => {
            c.result = await c.run!
            task.title = `Saved ${c.result.output}`
          },
        },
      ],
      ctx,
    ).catch(asUsageError)
    const result = ctx.result!
    const s = result.summary
    this.info(
      `trained ${s.steps}/${s.totalSteps} steps in ${duration(s.seconds)} (${(s.examples / s.seconds).toFixed(1)} examples/s); loss ` +
        Object.keys(s.lossFirst).map((t) => `${t} ${s.lossFirst[t].toFixed(4)} → ${s.lossLast[t].toFixed(4)}`).join(', '),
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
