import {Flags} from '@oclif/core'
import {CodiembCommand} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import {KINDS, type Kind} from '../registry/types.js'

export interface ListedEntry {
  kind: Kind
  name: string
  plugin: string
  description: string
  meta?: Record<string, unknown>
  optionsSchema?: Record<string, unknown>
}

export default class List extends CodiembCommand<typeof List> {
  static {applyHelp(this, 'list')}
  static override flags = {
    kind: Flags.string({summary: 'Only entries of this kind.', options: [...KINDS]}),
  }

  protected async exec(): Promise<{entries: ListedEntry[]}> {
    const registry = await this.registry()
    const entries = registry.list(this.flags.kind as Kind | undefined).map((e) => ({
      kind: e.kind,
      name: e.name,
      plugin: e.plugin ?? 'unknown',
      description: e.description,
      ...(e.meta ? {meta: e.meta} : {}),
      ...(e.optionsSchema ? {optionsSchema: e.optionsSchema} : {}),
    }))
    if (!this.jsonEnabled()) {
      const {renderTable} = await import('../cli/table.js')
      this.log(
        entries.length
          ? renderTable(['kind', 'name', 'plugin', 'description'], entries.map((e) => [e.kind, e.name, e.plugin, e.description]))
          : 'nothing registered',
      )
    }
    return {entries}
  }
}
