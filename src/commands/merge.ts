import {Args, Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'
import type {InputRef, MergeReport, MergeRequest} from '../merge/engine.js'

export default class Merge extends CodiembCommand<typeof Merge> {
  static override summary = 'Merge fine-tuned checkpoints of one base model into one sentence-transformers checkpoint.'
  static override description =
    'Streams tensor by tensor (peak memory about (K + 2) × the largest tensor). Methods: delta (default; each parameter leans towards the checkpoint that moved it most), soup, task-arithmetic, ties, dare — `codiemb list --kind merger --json` shows each one\'s options. Integer tensors are copied from the base; --include/--exclude merge some tensors only and copy the rest from --copy-from. The output directory gets the merged model.safetensors, the tokenizer, config, pooling config and prompts of --files-from, and merge.json (method, options, inputs with sha256, per-tensor weights). Settings may also come from the `merge` section of a config file; flags win.'
  static override examples = [
    {
      description: 'Delta fusion of the two fine-tuning runs of the train examples, relative to their base model.',
      command: '<%= config.bin %> merge --base models/tiny runs/faq-ir runs/faq-sts --out runs/faq-merged',
    },
    {description: 'TIES merging with options for the method.', command: '<%= config.bin %> merge --method ties --options \'{"density":0.3}\' --base models/tiny runs/faq-ir runs/faq-sts --out runs/faq-ties'},
    {description: 'A model soup (plain average; no base needed), with a --json summary.', command: '<%= config.bin %> merge --method soup runs/faq-ir runs/faq-sts --out runs/faq-soup --json'},
    {
      description: 'Merge only the last transformer layer; every other tensor comes from checkpoint 1.',
      command: '<%= config.bin %> merge --base models/tiny runs/faq-ir runs/faq-sts --include "^encoder\\.layer\\.1\\." --copy-from 1 --out runs/faq-top-layer',
    },
    {description: 'Everything from the merge section of a configuration file.', command: '<%= config.bin %> merge --config examples/faq/merge.yaml'},
  ]
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
    force: Flags.boolean({summary: 'Replace an existing output directory.', allowNo: true}),
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
      force: f.force ?? section.force,
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
          })
        },
      },
    ])
    for (const w of report.warnings) this.addWarning(w)
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
