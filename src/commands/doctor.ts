import {CodiembCommand} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import type {BackendProbe} from '../tensor/backend.js'

export interface DoctorResult {
  node: {version: string; ok: boolean; required: string}
  platform: string
  backends: BackendProbe[]
  autoBackend?: string
  plugins: {name: string; version: string; type: string}[]
  registry: {entries: number; warnings: string[]}
}

export default class Doctor extends CodiembCommand<typeof Doctor> {
  static {applyHelp(this, 'doctor')}

  protected async exec(): Promise<DoctorResult> {
    const registry = await this.registry()
    const {probeBackends, AUTO_ORDER} = await import('../tensor/backend.js')
    const backends = await probeBackends(registry)
    const major = Number(process.versions.node.split('.')[0])
    const auto = [...backends].sort((a, b) => rank(AUTO_ORDER, a.name) - rank(AUTO_ORDER, b.name)).find((b) => b.available)
    const result: DoctorResult = {
      node: {version: process.version, ok: major >= 20, required: '>=20'},
      platform: `${process.platform}-${process.arch}`,
      backends,
      autoBackend: auto?.name,
      plugins: this.config.getPluginsList().map((p) => ({name: p.name, version: p.version, type: p.type})),
      registry: {entries: registry.list().length, warnings: registry.warnings},
    }
    if (!this.jsonEnabled()) {
      const chalk = await (await import('../cli/colour.js')).colours()
      const mark = (ok: boolean) => (ok ? chalk.green('✔') : chalk.red('✖'))
      this.log(`${mark(result.node.ok)} Node ${result.node.version} (codiemb needs ${result.node.required})`)
      this.log(`  platform ${result.platform}`)
      this.log('Tensor backends:')
      for (const b of backends) this.log(`  ${mark(b.available)} ${b.name.padEnd(11)} ${b.reason}`)
      this.log(`  --backend auto would use: ${auto ? auto.name : 'nothing (no backend available)'}`)
      this.log(`Plugins: ${result.plugins.map((p) => `${p.name}@${p.version} (${p.type})`).join(', ')}`)
      this.log(`Registry: ${result.registry.entries} entries`)
    }
    return result
  }
}

function rank(order: string[], name: string): number {
  const i = order.indexOf(name)
  return i === -1 ? order.length : i
}
