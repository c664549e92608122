import {Args, Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import {OUTPUTS} from '../cli/outputs.js'
import type {InputRef, MergeReport, MergeRequest} from '../merge/engine.js'

export default class Merge extends CodiembCommand<typeof Merge> {
  static {applyHelp(this, 'merge')}
  static override strict = false
  static override args = {
    checkpoints: Args.string({description: 'Checkpoint directories θ_1..θ_K (one or more).'}),
  }
  static override flags = {
    ...CodiembCommand.progressFlags,
    config: Flags.string({char: 'c', summary: 'Configuration file whose `merge` section supplies defaults.', helpValue: 'FILE'}),
    method: Flags.string({char: 'm', summary: 'Merge method (default delta).', helpValue: 'NAME'}),
    base: Flags.string({char: 'b', summary: 'The base model the checkpoints were fine-tuned from (θ_0).', helpValue: 'DIR'}),
    out: Flags.string({char: 'o', summary: 'Output directory.', helpValue: 'DIR'}),
    options: Flags.string({summary: 'The method\'s options as JSON, e.g. \'{"gamma":2}\'.', helpValue: 'JSON'}),
    include: Flags.string({summary: 'Merge only tensors whose name matches this regular expression (repeatable).', multiple: true, multipleNonGreedy: true, helpValue: 'REGEX'}),
    exclude: Flags.string({summary: 'Do not merge tensors whose name matches this regular expression (repeatable).', multiple: true, multipleNonGreedy: true, helpValue: 'REGEX'}),
    'copy-from': Flags.string({summary: 'Where tensors that are not merged come from: base, or a checkpoint number (1 = first).', helpValue: 'base|N'}),
    'files-from': Flags.string({summary: 'Whose tokenizer/config/pooling/prompts the output gets: base or a checkpoint number (default 1).', helpValue: 'base|N'}),
    dtype: Flags.string({summary: 'Floating-point dtype of the output weights.', options: ['keep', 'F32', 'F16', 'BF16']}),
    overwrite: Flags.boolean({
      summary: 'Replace an existing output that codiemb wrote (a folder codiemb did not create is never replaced).',
      aliases: ['force'],
      helpGroup: 'OUTPUT',
    }),
  }

  protected async exec(): Promise<MergeReport> {
    const {argv} = await this.parse(Merge)
    const f = this.flags
    const {loadConfig} = await import('../config/load.js')
    const section = ((await loadConfig(f.config)).config.merge ?? {}) as Partial<MergeRequest> & {checkpoints?: string[]}
    const checkpoints = argv.length > 0 ? (argv as string[]) : (section.checkpoints ?? [])
    const out = f.out ?? section.out
    if (checkpoints.length === 0) throw new CodiembError('no checkpoints to merge: pass their directories as arguments (or merge.checkpoints in the config)', {exitCode: 2})
    if (!out) throw new CodiembError('no output directory: pass --out DIR (or merge.out in the config)', {exitCode: 2})
    const claim = await this.outputs.claim(out, OUTPUTS.model, {flag: '--out', overwrite: f.overwrite || section.force})
    const request: MergeRequest = {
      method: f.method ?? section.method ?? 'delta',
      base: f.base ?? section.base,
      checkpoints,
      out,
      options: f.options === undefined ? section.options : parseOptions(f.options),
      include: f.include ?? section.include,
      exclude: f.exclude ?? section.exclude,
      copyFrom: f['copy-from'] === undefined ? section.copyFrom : parseRef(f['copy-from'], '--copy-from'),
      filesFrom: f['files-from'] === undefined ? section.filesFrom : parseRef(f['files-from'], '--files-from'),
      dtype: (f.dtype ?? section.dtype) as MergeRequest['dtype'],
      // The claim refused anything but an absent, empty or codiemb output (the latter only with --overwrite).
      force: claim.found !== 'absent',
      registry: await this.registry(),
    }
    const {mergeCheckpoints} = await import('../merge/engine.js')
    const reporter = this.reporter()
    let report!: MergeReport
    await this.tasks([
      {
        title: `Merging ${checkpoints.length} checkpoint(s) with ${request.method}`,
        task: async (_ctx, task) => {
          report = await mergeCheckpoints({
            ...request,
            onEvent: reporter.into(task),
            signal: this.stopSignal('removing the partial merge; the output stays as it was'),
          })
        },
      },
    ])
    for (const w of report.warnings) this.addWarning(w)
    // The engine merges every tensor, whether an encoder uses it or not: say which ones a load of the
    // output leaves unused (and why), or why codiemb will not load it (src/model/consistency.ts).
    const {checkModelDirectory} = await import('../model/consistency.js')
    try {
      for (const w of (await checkModelDirectory(report.output.path, {registry: request.registry})).warnings) this.addWarning(`merged model: ${w}`)
    } catch (error) {
      if (!(error instanceof CodiembError)) throw error
      this.addWarning(`codiemb will not load the merged model: ${error.message}`)
    }
    const s = report.summary
    this.info(
      `${report.output.path}: ${s.merged} tensors merged, ${s.copied} copied, ${s.mergedParameters.toLocaleString('en')} parameters in ${s.seconds.toFixed(1)} s; ` +
        `mean weight per checkpoint ${s.meanWeights.map((w) => w.toFixed(3)).join(' / ')}`,
    )
    this.emit({type: 'done', command: 'merge', out: report.output.path, summary: s})
    return report
  }
}

function parseOptions(text: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new CodiembError(`--options: not valid JSON (${(error as Error).message}): ${text}`, {exitCode: 2})
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CodiembError(`--options: expected a JSON object, got ${text}`, {exitCode: 2})
  return value as Record<string, unknown>
}

function parseRef(text: string, flag: string): InputRef {
  if (text === 'base') return 'base'
  if (/^[1-9][0-9]*$/.test(text)) return Number(text)
  throw new CodiembError(`${flag}: expected "base" or a checkpoint number (1 = the first), got "${text}"`, {exitCode: 2})
}
