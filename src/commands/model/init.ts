import {Flags} from '@oclif/core'
import {CodiembCommand} from '../../cli/base-command.js'
import {applyHelp} from '../../cli/messages.js'
import {OUTPUTS, overwriteFlag} from '../../cli/outputs.js'

export default class ModelInit extends CodiembCommand<typeof ModelInit> {
  static {applyHelp(this, 'model:init')}
  static override flags = {
    ...CodiembCommand.backendFlags,
    arch: Flags.string({summary: 'Architecture (config.json model_type).', required: true, options: ['bert', 'xlm-roberta']}),
    tokenizer: Flags.string({summary: 'Directory with tokenizer.json and/or vocab.txt (+ tokenizer_config.json).', required: true, helpValue: 'DIR'}),
    layers: Flags.integer({summary: 'Transformer layers.', required: true, min: 1}),
    hidden: Flags.integer({summary: 'Hidden size.', required: true, min: 1}),
    heads: Flags.integer({summary: 'Attention heads (must divide --hidden).', required: true, min: 1}),
    intermediate: Flags.integer({summary: 'Feed-forward size.', required: true, min: 1}),
    'max-length': Flags.integer({summary: 'Maximum sequence length (position embeddings).', default: 512, min: 2}),
    pooling: Flags.string({summary: 'Pooling written to the sentence-transformers config.', options: ['cls', 'mean', 'last-token', 'weighted-mean'], default: 'mean'}),
    seed: Flags.integer({summary: 'Random seed.', default: 42}),
    out: Flags.string({char: 'o', summary: 'Directory to write (a model codiemb wrote there is replaced, atomically, only with --overwrite).', required: true, helpValue: 'DIR'}),
    ...overwriteFlag,
  }

  protected async exec() {
    const f = this.flags
    await this.outputs.claim(f.out, OUTPUTS.model, {flag: '--out', overwrite: f.overwrite})
    const registry = await this.registry()
    await this.activateBackend()
    const {initRandomEncoder} = await import('../../model/encoder.js')
    const encoder = await initRandomEncoder({
      arch: f.arch,
      tokenizerDir: f.tokenizer,
      layers: f.layers,
      hidden: f.hidden,
      heads: f.heads,
      intermediate: f.intermediate,
      seed: f.seed,
      maxPositions: f['max-length'],
      pooling: f.pooling as never,
      registry,
    })
    try {
      await encoder.save(f.out, {outputOf: 'model init'})
      const parameters = [...encoder.variables.values()].reduce((n, v) => n + v.size, 0)
      this.info(`${f.arch}: ${f.layers} layers, hidden ${f.hidden}, ${parameters.toLocaleString('en')} parameters -> ${f.out}`)
      return {out: f.out, modelType: encoder.modelType, parameters, config: encoder.config, fingerprint: encoder.fingerprint()}
    } finally {
      encoder.dispose()
    }
  }
}
