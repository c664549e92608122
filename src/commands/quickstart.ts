import {Flags} from '@oclif/core'
import {CodiembCommand} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import {OUTPUTS, overwriteFlag} from '../cli/outputs.js'
import type {QuickstartResult} from '../quickstart/run.js'

export default class Quickstart extends CodiembCommand<typeof Quickstart> {
  static {applyHelp(this, 'quickstart')}
  static override flags = {
    ...CodiembCommand.backendFlags,
    ...CodiembCommand.progressFlags,
    out: Flags.string({char: 'o', summary: 'Output folder.', default: 'quickstart-run', helpValue: 'DIR'}),
    steps: Flags.integer({summary: 'Training steps per checkpoint (default 40).', min: 1}),
    'eval-limit': Flags.integer({summary: 'Evaluate only the first N STS pairs and retrieval queries (quick checks).', min: 1}),
    ...overwriteFlag,
  }

  protected async exec(): Promise<QuickstartResult> {
    const f = this.flags
    await this.outputs.claim(f.out, OUTPUTS.quickstart, {flag: '--out', overwrite: f.overwrite})
    const registry = await this.registry()
    const backend = await this.activateBackend()
    const {quickstartStages} = await import('../quickstart/run.js')
    const reporter = this.reporter()
    const run = quickstartStages({out: f.out, registry, steps: f.steps, evalLimit: f['eval-limit'], onEvent: reporter.onEvent})
    await this.tasks(
      run.stages.map((stage) => ({
        title: stage.title,
        task: async (_ctx: unknown, task: {output: string; title: string}) => {
          reporter.into(task)
          task.title = await stage.run()
        },
      })),
    )
    const result = run.result()
    this.emit({type: 'done', command: 'quickstart', ...result})
    if (!this.jsonEnabled()) {
      const {renderTable} = await import('../cli/table.js')
      const base = result.models.find((m) => m.name === 'init')!
      const delta = (v: number, b: number) => (v === b ? '' : ` (${v - b >= 0 ? '+' : ''}${(v - b).toFixed(2)})`)
      this.info('')
      this.info(
        renderTable(
          ['model', 'SNLI-STS cosine Spearman ×100', 'SNLI-Retrieval nDCG@10 ×100'],
          result.models.map((m) => [m.name, `${m.sts.toFixed(2)}${delta(m.sts, base.sts)}`, `${m.retrieval.toFixed(2)}${delta(m.retrieval, base.retrieval)}`]),
        ),
      )
      this.info('')
      for (const line of result.verdict) this.info(line)
      this.info(`\nbackend ${backend.name}, ${result.steps} steps per checkpoint, ${Math.round(result.seconds)} s in all`)
      this.info(`report: ${result.report}`)
    }
    return result
  }
}
