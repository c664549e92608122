import {Flags} from '@oclif/core'
import {CodiembCommand} from '../../cli/base-command.js'
import {applyHelp} from '../../cli/messages.js'
import {OUTPUTS, overwriteFlag} from '../../cli/outputs.js'

export default class ModelFold extends CodiembCommand<typeof ModelFold> {
  static {applyHelp(this, 'model:fold')}
  static override flags = {
    ...CodiembCommand.backendFlags,
    adapter: Flags.string({summary: 'LoRA adapter folder (adapter_config.json + adapter_model.safetensors), e.g. the output of a train run with train.lora.', required: true, helpValue: 'DIR'}),
    out: Flags.string({char: 'o', summary: 'Directory to write the full model to (a model codiemb wrote there is replaced, atomically, only with --overwrite).', required: true, helpValue: 'DIR'}),
    ...overwriteFlag,
  }

  protected async exec() {
    const f = this.flags
    const {isAdapterFolder, LoraError} = await import('../../model/lora.js')
    const {resolve} = await import('node:path')
    if (!isAdapterFolder(resolve(f.adapter))) throw new LoraError(`--adapter ${f.adapter}: not a LoRA adapter folder (expected adapter_config.json and no config.json)`)
    await this.outputs.claim(f.out, OUTPUTS.model, {flag: '--out', overwrite: f.overwrite})
    const registry = await this.registry()
    await this.activateBackend()
    const {loadEncoder} = await import('../../model/encoder.js')
    const encoder = await loadEncoder(f.adapter, {registry, trainable: false, onWarning: (w) => this.addWarning(w)})
    try {
      const {modules, basePath, options} = encoder.lora!
      encoder.foldLora()
      await encoder.save(f.out, {outputOf: 'model fold'})
      this.info(`folded ${modules.length} LoRA adapters (rank ${options.rank}, alpha ${options.alpha}) into ${basePath} -> ${f.out}`)
      return {out: f.out, base: basePath, adapted: modules.length, rank: options.rank, alpha: options.alpha, modelType: encoder.modelType, fingerprint: encoder.fingerprint()}
    } finally {
      encoder.dispose()
    }
  }
}
