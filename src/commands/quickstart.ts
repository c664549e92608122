import {Flags} from '@oclif/core'
import {CodiembCommand} from '../cli/base-command.js'
import type {QuickstartResult} from '../quickstart/run.js'

export default class Quickstart extends CodiembCommand<typeof Quickstart> {
  static override summary = 'Run the whole pipeline (prepare, train two checkpoints, merge, evaluate, report) on the sample bundled with codiemb.'
  static override description = `Uses the SNLI-derived sample in quickstart/data (CC BY-SA 4.0): prepares it with recipes/quickstart/prepare.yaml, initialises a small random BERT with the bundled WordPiece tokenizer, trains checkpoint A on an IR-heavy and checkpoint B on an STS-heavy task mix (dynamic sampler, the paper's IR and STS losses), merges A and B with delta fusion, evaluates the untrained model, A, B and the merge on held-out SNLI test pairs (cosine Spearman) and a small retrieval task (nDCG@10), and writes report.html. Prints a results table, says plainly what improved over the untrained model and what did not, and the report path.

Everything goes under --out: prepared/ (Arrow files), models/{init,a-ir-heavy,b-sts-heavy,merged}/ (merged/merge.json), results/ (MTEB TaskResult files per model), events/ (training losses), report.html and quickstart.json. An earlier quickstart output in the same folder is replaced.

The default run takes about 4 minutes of CPU time on the cpu backend (one core); --steps lowers the training steps per checkpoint for a faster (and weaker) run.`
  static override examples = [
    {description: 'The whole pipeline on the bundled sample into quickstart-run/ (a few minutes on 2 cores).', command: '<%= config.bin %> quickstart'},
    {description: 'A faster, weaker run on the pure-JS backend: 20 training steps per checkpoint.', command: '<%= config.bin %> quickstart --out quickstart-run --backend cpu --steps 20'},
    {
      description: 'A smoke test of an installation (2 steps, 40 evaluation pairs and queries; the scores mean nothing), with a --json summary.',
      command: '<%= config.bin %> quickstart --out quickstart-smoke --steps 2 --eval-limit 40 --json',
    },
  ]
  static override flags = {
    ...CodiembCommand.backendFlags,
    ...CodiembCommand.progressFlags,
    out: Flags.string({char: 'o', summary: 'Output folder.', default: 'quickstart-run', helpValue: 'DIR'}),
    steps: Flags.integer({summary: 'Training steps per checkpoint (default 40).', min: 1}),
    'eval-limit': Flags.integer({summary: 'Evaluate only the first N STS pairs and retrieval queries (quick checks).', min: 1}),
  }

  protected async exec(): Promise<QuickstartResult> {
    const f = this.flags
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
