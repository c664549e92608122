import {Args, Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import {OUTPUTS, overwriteFileFlag} from '../cli/outputs.js'

export default class Report extends CodiembCommand<typeof Report> {
  static {applyHelp(this, 'report')}
  static override args = {
    dir: Args.string({description: 'Run, results or merge directory.', required: true}),
  }
  static override flags = {
    out: Flags.string({char: 'o', summary: 'Output HTML file.', default: 'report.html', helpValue: 'FILE'}),
    title: Flags.string({summary: 'Page title.'}),
    ...overwriteFileFlag,
  }

  protected async exec(): Promise<{out: string; charts: number; sections: {training: number; evaluation: number; merge: number}; bytes: number}> {
    const {existsSync, statSync} = await import('node:fs')
    const {writeFileAtomic} = await import('../core/fs-atomic.js')
    const {resolve} = await import('node:path')
    const dir = resolve(this.args.dir)
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CodiembError(`${this.args.dir}: not a directory`, {exitCode: 2})
    const {path: out} = await this.outputs.claim(this.flags.out, OUTPUTS.report, {flag: '--out', overwrite: this.flags.overwrite})
    const {buildReport} = await import('../eval/report.js')
    const report = buildReport(dir, {title: this.flags.title})
    if (!report.charts && !report.sections.evaluation) this.addWarning(`nothing to chart under ${dir}: no train events, summary.json or merge.json found`)
    writeFileAtomic(out, report.html)
    this.info(`report: ${out} (${report.charts} charts; training runs ${report.sections.training}, evaluations ${report.sections.evaluation}, merges ${report.sections.merge})`)
    return {out, charts: report.charts, sections: report.sections, bytes: Buffer.byteLength(report.html)}
  }
}
