import {Args, Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'

export default class Report extends CodiembCommand<typeof Report> {
  static override summary = 'Write a self-contained HTML report of a training run, evaluation results and merges.'
  static override description =
    'Scans DIR for train events (*.ndjson), evaluation summaries (summary.json + TaskResult files from `codiemb eval`) and merge.json files, and writes one HTML file with loss curves per task, score tables and bar charts, and merge weight statistics. The page is self-contained: inline SVG charts, no network access.'
  static override examples = [
    {description: 'Training loss curves and merge weight statistics of the runs the train and merge examples wrote.', command: '<%= config.bin %> report runs --out runs/report.html'},
    {description: 'Score tables and bar charts of the eval examples\' results, with a --json summary.', command: '<%= config.bin %> report results --out results/report.html --json'},
  ]
  static override args = {
    dir: Args.string({description: 'Run, results or merge directory.', required: true}),
  }
  static override flags = {
    out: Flags.string({char: 'o', summary: 'Output HTML file.', default: 'report.html', helpValue: 'FILE'}),
    title: Flags.string({summary: 'Page title.'}),
  }

  protected async exec(): Promise<{out: string; charts: number; sections: {training: number; evaluation: number; merge: number}; bytes: number}> {
    const {existsSync, statSync, mkdirSync} = await import('node:fs')
    const {writeFileAtomic} = await import('../core/fs-atomic.js')
    const {dirname, resolve} = await import('node:path')
    const dir = resolve(this.args.dir)
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CodiembError(`${this.args.dir}: not a directory`, {exitCode: 2})
    const {buildReport} = await import('../eval/report.js')
    const report = buildReport(dir, {title: this.flags.title})
    if (!report.charts && !report.sections.evaluation) this.addWarning(`nothing to chart under ${dir}: no train events, summary.json or merge.json found`)
    const out = resolve(this.flags.out)
    mkdirSync(dirname(out), {recursive: true})
    writeFileAtomic(out, report.html)
    this.info(`report: ${out} (${report.charts} charts; training runs ${report.sections.training}, evaluations ${report.sections.evaluation}, merges ${report.sections.merge})`)
    return {out, charts: report.charts, sections: report.sections, bytes: Buffer.byteLength(report.html)}
  }
}
