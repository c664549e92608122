import {Flags} from '@oclif/core'
import {CodiembCommand} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import {OUTPUTS, overwriteFileFlag} from '../cli/outputs.js'
import {CodiembError} from '../core/errors.js'
import {distributedFlags, startRanks} from '../cli/distributed.js'

export default class Embed extends CodiembCommand<typeof Embed> {
  static {applyHelp(this, 'embed')}
  static override flags = {
    ...CodiembCommand.encoderFlags('Model directory (Hugging Face or sentence-transformers layout).'),
    input: Flags.string({char: 'i', summary: 'Texts: .txt, .jsonl/.json or .arrow.', required: true, helpValue: 'FILE'}),
    out: Flags.string({char: 'o', summary: 'Arrow file to write.', required: true, helpValue: 'FILE.arrow'}),
    prompt: Flags.string({summary: 'Name of a prompt defined by the model (e.g. query).', exclusive: ['instruction']}),
    instruction: Flags.string({summary: 'A literal instruction prefix to prepend to every text.', exclusive: ['prompt']}),
    pooling: Flags.string({summary: "Pooling (default: the checkpoint's, else mean).", options: ['cls', 'mean', 'last-token', 'weighted-mean']}),
    'no-normalize': Flags.boolean({summary: 'Keep raw pooled vectors (default: L2-normalised).'}),
    'batch-size': Flags.integer({summary: 'Texts per forward pass.', default: 32, min: 1}),
    'max-length': Flags.integer({summary: "Max tokens per text (default: the model's).", min: 2}),
    'text-field': Flags.string({summary: 'JSON/Arrow field holding the text.', default: 'text'}),
    'id-field': Flags.string({summary: 'JSON/Arrow field holding the id (default: id, else the line number).', default: 'id'}),
    encoding: Flags.string({summary: 'Text encoding of a .txt/.jsonl input: a TextDecoder label (utf-8, gbk, gb18030, big5, shift_jis, utf-16le, …).', default: 'utf-8', helpValue: 'LABEL'}),
    ...distributedFlags('Encode in parallel'),
    ...overwriteFileFlag,
  }

  protected async exec() {
    const f = this.flags
    const {existsSync} = await import('node:fs')
    if (!existsSync(f.input)) throw new CodiembError(`input file not found: ${f.input}`, {exitCode: 2, name: 'UsageError'})
    // --nproc-per-node N: N ranks each encode every N-th chunk; rank 0 gathers and writes (the ranks end together).
    const start = await startRanks('embed', this.argv, f, {json: this.jsonEnabled(), graceSeconds: 10, signal: () => this.stopSignal('stopping every rank')})
    if (start.launched) return start.result
    const dist = start.env
    if (!dist || dist.rank === 0) await this.outputs.claim(f.out, OUTPUTS.embeddings, {flag: '--out', overwrite: f.overwrite})
    const {textEncoding} = await import('../data/text-decoder.js')
    const encoding = textEncoding(f.encoding, '--encoding')
    const registry = await this.registry()
    const {joinShardGroup, rankSettings} = await import('../cli/distributed.js')
    if (dist) Object.assign(this.flags, rankSettings(dist, f))
    const backend = await this.activateBackend()
    const group = dist ? await joinShardGroup(dist, backend.name) : undefined
    const {loadEncoder} = await import('../model/encoder.js')
    const {embedFile} = await import('../model/embed.js')
    const encoder = await loadEncoder(f.model, {registry, trainable: false, onWarning: (w) => this.addWarning(w)})
    this.info(`model: ${f.model} (${encoder.modelType}, ${encoder.numLayers} layers, dim ${encoder.hiddenSize}, pooling ${f.pooling ?? encoder.pooling})`)
    const reporter = this.reporter()
    let result: Awaited<ReturnType<typeof embedFile>> | undefined
    try {
      await this.tasks([
        {
          title: `Embedding ${f.input}`,
          task: async (_ctx, task) => {
            result = await embedFile(encoder, f.input, f.out, {
              prompt: f.prompt,
              instruction: f.instruction,
              pooling: f.pooling as never,
              normalize: !f['no-normalize'],
              batchSize: f['batch-size'],
              maxLength: f['max-length'],
              textField: f['text-field'],
              idField: f['id-field'],
              encoding,
              modelLabel: f.model,
              onEvent: reporter.into(task),
              group,
            })
            task.title = `Embedded ${result.rows} texts into ${f.out}`
          },
        },
      ])
    } finally {
      encoder.dispose()
      group?.close()
    }
    const r = result!
    this.emit({type: 'done', command: 'embed', stage: 'embed', rows: r.rows, tokens: r.tokens, seconds: r.seconds})
    this.info(`${r.rows} vectors of dim ${r.dim} -> ${f.out} (${r.textsPerSecond.toFixed(1)} texts/s, ${r.tokensPerSecond.toFixed(0)} tokens/s)`)
    return {...r, model: f.model, backend: backend.name, ...(dist ? {worldSize: dist.worldSize} : {})}
  }
}
