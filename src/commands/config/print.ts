import {Flags} from '@oclif/core'
import {CodiembCommand} from '../../cli/base-command.js'
import {applyHelp} from '../../cli/messages.js'

export default class ConfigPrint extends CodiembCommand<typeof ConfigPrint> {
  static {applyHelp(this, 'config:print')}
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
