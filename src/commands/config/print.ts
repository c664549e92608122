import {Flags} from '@oclif/core'
import {CodiembCommand} from '../../cli/base-command.js'

export default class ConfigPrint extends CodiembCommand<typeof ConfigPrint> {
  static override summary = 'Print the resolved, validated configuration ($import layers merged).'
  static override description =
    'Without --config, looks in the standard places: a "codiemb" key in package.json, .codiembrc(.json|.yaml|.yml|.js|.mjs|.cjs|.ts), codiemb.config.(js|mjs|cjs|ts). An invalid configuration lists every problem as "JSON-pointer: expected …, got …" and exits with code 2.'
  static override examples = [
    {description: 'The tiny training recipe on ../shared data, validated, as YAML.', command: '<%= config.bin %> config print --config recipes/train/tiny-zh.yaml'},
    {description: 'A recipe layered on the paper base with $import, resolved into one configuration, as a --json envelope.', command: '<%= config.bin %> config print --config recipes/train/bge-large-zh-v1.5.yaml --json'},
  ]
  static override flags = {
    config: Flags.string({char: 'c', summary: 'Configuration file (JSON, YAML, .js/.mjs/.cjs/.ts).', helpValue: 'FILE'}),
  }

  protected async exec(): Promise<{file?: string; config: Record<string, unknown>}> {
    const {loadConfig} = await import('../../config/load.js')
    const loaded = await loadConfig(this.flags.config)
    if (!this.jsonEnabled()) {
      const {stringify} = await import('yaml')
      this.log(`# ${loaded.filepath ? `from ${loaded.filepath}` : 'no configuration file found; defaults'}`)
      this.log(stringify(loaded.asWritten).trimEnd())
    }
    return {file: loaded.filepath, config: loaded.asWritten}
  }
}
