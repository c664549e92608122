import {basename, extname} from 'node:path'
import {Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import {OUTPUTS, overwriteFlag} from '../cli/outputs.js'
import type {DatasetConfig, PrepareConfig, PrepareResult} from '../data/prepare.js'

/** NAME=VALUE pairs of a repeatable flag. */
function pairs(values: string[] | undefined, flag: string): [string, string][] {
  return (values ?? []).map((v) => {
    const i = v.indexOf('=')
    if (i <= 0) throw new CodiembError(`--${flag} ${JSON.stringify(v)}: expected NAME=VALUE`, {exitCode: 2, name: 'UsageError'})
    return [v.slice(0, i), v.slice(i + 1)]
  })
}

/** "0:5" -> {min, max}; "0,1,2" -> {values}. */
function labelRange(spec: string): DatasetConfig['labelRange'] {
  const range = /^\s*(-?[\d.]+)\s*:\s*(-?[\d.]+)\s*$/.exec(spec)
  if (range) return {min: Number(range[1]), max: Number(range[2])}
  const values = spec.split(',').map((s) => Number(s.trim()))
  if (values.length >= 2 && values.every(Number.isFinite)) return {values}
  throw new CodiembError(`--label-range ${JSON.stringify(spec)}: expected MIN:MAX (e.g. 0:5) or a list of labels (e.g. 0,1,2)`, {exitCode: 2, name: 'UsageError'})
}

/** Option values: JSON when they parse (numbers, booleans, lists), else the string. */
function optionValue(v: string): unknown {
  try {
    return JSON.parse(v)
  } catch {
    return v
  }
}

export default class Prepare extends CodiembCommand<typeof Prepare> {
  static {applyHelp(this, 'prepare')}
  static override flags = {
    ...CodiembCommand.progressFlags,
    config: Flags.string({char: 'c', summary: 'Configuration file with a prepare section (JSON, YAML, .js/.ts).', helpValue: 'FILE'}),
    'data-root': Flags.string({summary: 'Directory that dataset paths are relative to (default: prepare.dataRoot, else the working directory).', helpValue: 'DIR'}),
    out: Flags.string({char: 'o', summary: 'Output directory (default: prepare.out).', helpValue: 'DIR'}),
    'skip-invalid': Flags.boolean({summary: 'Set invalid rows aside in <dataset>/rejects.jsonl (with file, line, reason) instead of failing.'}),
    'batch-rows': Flags.integer({summary: 'Rows per Arrow record batch (default 4096).', min: 1}),
    ...overwriteFlag,
    reader: Flags.string({summary: 'One-dataset form: the reader (codiemb list --kind reader).', helpGroup: 'ONE DATASET', exclusive: ['config']}),
    task: Flags.string({summary: 'One-dataset form: what to prepare.', options: ['ir', 'sts', 'eval'], helpGroup: 'ONE DATASET'}),
    name: Flags.string({summary: 'One-dataset form: dataset name (default: from --path or the first split file).', helpGroup: 'ONE DATASET'}),
    path: Flags.string({summary: 'One-dataset form: the dataset directory or file (beir, nli, shard directories).', helpGroup: 'ONE DATASET'}),
    split: Flags.string({summary: 'One-dataset form: SPLIT=FILE (FILE may be a glob; name a split again for more files), or a split name for readers that find files under --path (repeatable).', multiple: true, helpGroup: 'ONE DATASET'}),
    field: Flags.string({summary: 'One-dataset form: FIELD=COLUMN mapping, e.g. text1=sentence1 or score=5 (repeatable).', multiple: true, helpGroup: 'ONE DATASET'}),
    option: Flags.string({summary: 'One-dataset form: reader option KEY=VALUE, VALUE as JSON when it parses (repeatable).', multiple: true, helpGroup: 'ONE DATASET'}),
    instruction: Flags.string({summary: 'One-dataset form: task instruction stored with the rows.', helpGroup: 'ONE DATASET'}),
    'label-range': Flags.string({summary: 'One-dataset form: STS label range, MIN:MAX or a list of labels (0:5, 0,1,2).', helpGroup: 'ONE DATASET'}),
  }

  protected async exec(): Promise<PrepareResult> {
    const f = this.flags
    let section: PrepareConfig
    if (f.config) {
      if (f.task || f.split || f.field || f.option || f.path || f.name || f['label-range'] || f.instruction)
        throw new CodiembError('give either --config or the one-dataset flags (--reader, --task, --split, ...), not both', {exitCode: 2, name: 'UsageError'})
      const {loadConfig} = await import('../config/load.js')
      const loaded = await loadConfig(f.config)
      if (!loaded.config.prepare)
        throw new CodiembError(`${loaded.filepath ?? f.config} has no prepare section (expected prepare: {datasets: [...]})`, {exitCode: 2, name: 'ConfigError'})
      section = loaded.config.prepare as PrepareConfig
    } else {
      section = {datasets: [this.datasetFromFlags()]}
    }
    const out = f.out ?? section.out
    if (!out) throw new CodiembError('no output directory: give --out DIR (or prepare.out in the config)', {exitCode: 2, name: 'UsageError'})
    const dataRoot = f['data-root'] ?? section.dataRoot ?? '.'
    await this.outputs.claim(out, OUTPUTS.prepared, {flag: '--out', overwrite: f.overwrite})
    const {prepare} = await import('../data/prepare.js')
    const registry = await this.registry()
    const reporter = this.reporter()
    let result!: PrepareResult
    await this.tasks([
      {
        title: `Preparing ${section.datasets.length} dataset${section.datasets.length === 1 ? '' : 's'} into ${out}`,
        task: async (_ctx, task) => {
          result = await prepare(section, {
            dataRoot,
            out,
            registry,
            overwrite: f.overwrite,
            skipInvalid: f['skip-invalid'] || undefined,
            batchRows: f['batch-rows'],
            onEvent: reporter.into(task),
            signal: this.stopSignal('removing the staging folder; the output stays as it was'),
          })
        },
      },
    ])
    if (!this.jsonEnabled()) this.render(result)
    for (const d of result.datasets) {
      if (d.rejected) this.addWarning(`${d.name}: ${d.rejected} invalid rows set aside in ${d.rejectsFile}`)
      for (const w of d.warnings) this.addWarning(w)
    }
    return result
  }

  private datasetFromFlags(): DatasetConfig {
    const f = this.flags
    if (!f.reader || !f.task) throw new CodiembError('give --config FILE, or --reader and --task (with --split/--path) for one dataset', {exitCode: 2, name: 'UsageError'})
    const splitPairs = (f.split ?? []).map((s) => (s.includes('=') ? pairs([s], 'split')[0] : ([s, undefined] as const)))
    if (splitPairs.length === 0) throw new CodiembError('give at least one --split (SPLIT=FILE, or a split name with --path)', {exitCode: 2, name: 'UsageError'})
    const withFiles = splitPairs.filter(([, file]) => file !== undefined)
    if (withFiles.length && withFiles.length !== splitPairs.length)
      throw new CodiembError('--split: give every split as SPLIT=FILE, or every split as a name (files found under --path)', {exitCode: 2, name: 'UsageError'})
    // A split named again (--split test=a.txt --split test=b.txt) takes several files, in order.
    const byName: Record<string, string[]> = {}
    for (const [s, file] of withFiles as [string, string][]) (byName[s] ??= []).push(file)
    const splits = withFiles.length ? Object.fromEntries(Object.entries(byName).map(([s, files]) => [s, files.length === 1 ? files[0] : files])) : splitPairs.map(([s]) => s)
    const firstFile = withFiles[0]?.[1]
    const name = f.name ?? (f.path ? basename(f.path) : firstFile ? basename(firstFile, extname(firstFile)) : undefined)
    if (!name) throw new CodiembError('give --name for the dataset', {exitCode: 2, name: 'UsageError'})
    const fields = Object.fromEntries(pairs(f.field, 'field').map(([k, v]) => [k, /^\d+$/.test(v) ? Number(v) : v]))
    const options = Object.fromEntries(pairs(f.option, 'option').map(([k, v]) => [k, optionValue(v)]))
    return {
      name,
      reader: f.reader,
      task: f.task as DatasetConfig['task'],
      splits,
      ...(f.path ? {path: f.path} : {}),
      ...(Object.keys(fields).length ? {fields} : {}),
      ...(Object.keys(options).length ? {options} : {}),
      ...(f.instruction !== undefined ? {instruction: f.instruction} : {}),
      ...(f['label-range'] ? {labelRange: labelRange(f['label-range'])} : {}),
    }
  }

  private render(result: PrepareResult): void {
    for (const d of result.datasets) {
      const extra = [d.rejected ? `${d.rejected} rejected (${d.rejectsFile})` : '', d.unused ? `${d.unused} unused` : ''].filter(Boolean).join(', ')
      this.log(`${d.name} (${d.reader}, ${d.task}): ${d.rows.toLocaleString('en')} rows${extra ? `, ${extra}` : ''} in ${d.seconds.toFixed(1)} s`)
      for (const file of d.files) this.log(`  ${file.path}  ${file.rows.toLocaleString('en')} rows`)
    }
    this.log(`manifest: ${result.manifest}`)
  }
}
