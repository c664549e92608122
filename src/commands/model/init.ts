import {Flags} from '@oclif/core'
import {CodiembCommand} from '../../cli/base-command.js'

export default class ModelInit extends CodiembCommand<typeof ModelInit> {
  static override summary = 'Create a randomly initialised encoder (for tests and for training from scratch).'
  static override description = `Writes a Hugging Face model directory (config.json, model.safetensors, the tokenizer files of --tokenizer) with sentence-transformers files (mean pooling, Normalize), initialised as transformers does: weights ~ N(0, 0.02), biases 0, LayerNorm 1/0, the padding embedding 0. The vocabulary size and padding id come from the tokenizer. Python loads it with AutoModel.from_pretrained or SentenceTransformer.`
  static override examples = [
    {
      description: 'A 2-layer BERT with the WordPiece vocabulary bundled in quickstart/data (what the embed, mine and train examples use).',
      command: '<%= config.bin %> model init --arch bert --tokenizer quickstart/data/tokenizer --layers 2 --hidden 64 --heads 2 --intermediate 256 --out models/tiny',
    },
    {
      description: 'A Chinese BERT to train from scratch, with the Chinese BERT vocabulary in ../shared, CLS pooling and a fixed seed.',
      command: '<%= config.bin %> model init --arch bert --tokenizer ../shared/data/bert-vocab-zh --layers 4 --hidden 128 --heads 4 --intermediate 512 --pooling cls --seed 7 --out models/tiny-zh --json',
    },
  ]
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
    out: Flags.string({char: 'o', summary: 'Directory to write (replaced atomically if it exists).', required: true, helpValue: 'DIR'}),
  }

  protected async exec() {
    const f = this.flags
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
      await encoder.save(f.out)
      const parameters = [...encoder.variables.values()].reduce((n, v) => n + v.size, 0)
      this.info(`${f.arch}: ${f.layers} layers, hidden ${f.hidden}, ${parameters.toLocaleString('en')} parameters -> ${f.out}`)
      return {out: f.out, modelType: encoder.modelType, parameters, config: encoder.config, fingerprint: encoder.fingerprint()}
    } finally {
      encoder.dispose()
    }
  }
}
