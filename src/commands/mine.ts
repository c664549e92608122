import {Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../cli/base-command.js'
import {applyHelp} from '../cli/messages.js'
import {OUTPUTS, overwriteFileFlag} from '../cli/outputs.js'
import type {MineResult} from '../eval/mine.js'
import {distributedFlags, startRanks} from '../cli/distributed.js'

export default class Mine extends CodiembCommand<typeof Mine> {
  static {applyHelp(this, 'mine')}
  static override flags = {
    ...CodiembCommand.encoderFlags('Encoder directory used for mining.'),
    input: Flags.string({char: 'i', summary: 'IR examples (ir-example Arrow file).', required: true, helpValue: 'IR.arrow'}),
    corpus: Flags.string({summary: 'Documents to mine from (corpus Arrow file).', required: true, helpValue: 'CORPUS.arrow'}),
    out: Flags.string({char: 'o', summary: 'Output ir-example Arrow file.', required: true, helpValue: 'OUT.arrow'}),
    'top-k': Flags.integer({char: 'k', summary: 'Negatives to add per example.', required: true, min: 1}),
    'skip-top': Flags.integer({summary: 'Best hits to skip before taking negatives.', default: 0, min: 0}),
    'max-score-ratio': Flags.string({summary: 'Drop candidates scoring above this ratio of the lowest positive score (e.g. 0.95).'}),
    'batch-size': Flags.integer({summary: 'Texts per encoder batch.', min: 1, default: 32}),
    'max-length': Flags.integer({summary: 'Max tokens per text (default: the model’s).', min: 1}),
    'cache-dir': Flags.string({summary: 'Embedding cache directory (default: in memory).', helpValue: 'DIR'}),
    'no-instructions': Flags.boolean({summary: 'Do not prefix queries with their instruction.'}),
    ...distributedFlags('Encode in parallel'),
    ...overwriteFileFlag,
  }

  protected async exec(): Promise<MineResult & {seconds: number}> {
    const f = this.flags
    let ratio: number | undefined
    if (f['max-score-ratio'] !== undefined) {
      ratio = Number(f['max-score-ratio'])
      if (!Number.isFinite(ratio) || ratio <= 0) throw new CodiembError(`--max-score-ratio: expected a number > 0, got "${f['max-score-ratio']}"`, {exitCode: 2})
    }
    const {existsSync} = await import('node:fs')
    for (const [flag, p] of [['--input', f.input], ['--corpus', f.corpus], ['--model', f.model]] as const) {
      if (!existsSync(p)) throw new CodiembError(`${flag}: ${p} does not exist`, {exitCode: 2})
    }
    // --nproc-per-node N: every rank encodes every N-th slice of each text set and searches; rank 0 alone writes.
    const start = await startRanks('mine', this.argv, f, {json: this.jsonEnabled(), graceSeconds: 10, signal: () => this.stopSignal('stopping every rank')})
    if (start.launched) return start.result as MineResult & {seconds: number}
    const dist = start.env
    if (!dist || dist.rank === 0) await this.outputs.claim(f.out, OUTPUTS.irExamples, {flag: '--out', overwrite: f.overwrite})
    const started = performance.now()
    const registry = await this.registry()
    const {joinShardGroup, rankSettings} = await import('../cli/distributed.js')
    if (dist) Object.assign(this.flags, rankSettings(dist, f))
    const backend = await this.activateBackend()
    const group = dist ? await joinShardGroup(dist, backend.name) : undefined
    const {loadModelForEval} = await import('../eval/model.js')
    const model = await loadModelForEval(f.model, {registry, onWarning: (w) => this.addWarning(w)})
    const {mineHardNegatives} = await import('../eval/mine.js')
    const reporter = this.reporter()
    let result: MineResult | undefined
    try {
      await this.tasks([
        {
          title: `Mining ${f['top-k']} negatives per example (skipping the top ${f['skip-top']})`,
          task: async (_ctx: unknown, t: {output: string; title: string}) => {
            result = await mineHardNegatives(model.encoder, {
              input: f.input,
              corpus: f.corpus,
              out: f.out,
              topK: f['top-k'],
              skipTop: f['skip-top'],
              maxScoreRatio: ratio,
              batchSize: f['batch-size'],
              maxLength: f['max-length'],
              cacheDir: f['cache-dir'],
              instructions: !f['no-instructions'],
              onEvent: reporter.into(t),
              group,
            })
          },
        },
      ])
    } catch (error) {
      const name = (error as Error).name
      if (name === 'RecordFileError') throw new CodiembError((error as Error).message, {exitCode: 2})
      throw error
    } finally {
      model.dispose()
      group?.close()
    }
    const seconds = (performance.now() - started) / 1000
    this.info(`${result!.minedNegatives} negatives added to ${result!.examples} examples from ${result!.corpus} documents → ${result!.out} (${seconds.toFixed(1)} s)`)
    if (result!.shortExamples) this.addWarning(`${result!.shortExamples} examples got fewer than ${f['top-k']} new negatives`)
    return {...result!, seconds}
  }
}
