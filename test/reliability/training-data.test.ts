/**
 * Training data and resume, end to end, as a hostile user meets them: `codiemb train` run as the
 * CLI (bin/run.js, --json) on prepared files that were hand-edited, damaged, emptied or cut, on a
 * model with NaN weights, on a run whose loss turns NaN, and resumed from edited, truncated and
 * mismatched checkpoints. Every refusal must exit 2 (bad input) or 1 (a run that failed) with a
 * message naming the file and the row, field, tensor or step; nothing half-written may appear where
 * the output goes; a stopped run's last checkpoint must resume. Seeded (byte flips, rows), no
 * ../shared needed, one tiny model; about 40 s on two cores.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Float32, Utf8} from 'apache-arrow'
import {prepare} from '../../src/data/prepare.js'
import {ArrowRecordWriter, RecordFile, readAllRecords, type StsPairRecord} from '../../src/io/arrow-records.js'
import {closeTrainingData, loadTrainingDataset, readRows, type RowSource} from '../../src/train/data.js'
import {readTrainerState} from '../../src/train/checkpoint.js'
import {Rng} from '../../src/core/rng.js'
import {BUILTINS, REPO_ROOT, TEST_BACKEND} from '../helpers/env.js'
import type {CliRun} from '../helpers/cli.js'
import {writeArrowColumns} from '../helpers/arrow-files.js'

let root: string
const WORDS = ['cat', 'dog', 'bird', 'fish', 'horse', 'cow', 'sheep', 'pig']

/** 24 clean STS pairs, as `codiemb prepare` writes them from a TSV (labels 0–5). */
function tsv(): string {
  return Array.from({length: 24}, (_, i) => `the ${WORDS[i % 8]} eats\ta ${WORDS[(i * 3) % 8]} eats\t${(i * 7) % 6}`).join('\n') + '\n'
}

/** A configuration training a 1-layer BERT (own 57-token vocabulary) on `data` for 2 epochs of 4 steps. */
function config(name: string, data: string[], extra: Record<string, unknown> = {}, model?: string): string {
  const file = join(root, `${name}.json`)
  const init = {init: {arch: 'bert', tokenizer: join(root, 'vocab'), layers: 1, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32, seed: 3}}
  const train = {
    model: model ?? init,
    output: join(root, name, 'out'),
    data,
    sampler: {name: 'dynamic', options: {batchSizes: {sts: 6}}},
    tasks: {sts: {maxLength: 16}},
    epochs: 2,
    learningRate: 1e-3,
    seed: 5,
    checkpoint: {everySteps: 1, keepLast: 0},
    ...extra,
  }
  writeFileSync(file, JSON.stringify({train}))
  return file
}

/** Runs `codiemb train --json` (bin/run.js) in a child process without blocking, so independent cases run side by side. */
function train(args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(REPO_ROOT, 'bin', 'run.js'), 'train', '--json', '--backend', TEST_BACKEND, ...args], {cwd: REPO_ROOT, env: {...process.env, NO_COLOR: '1'}, maxBuffer: 1 << 26}, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error)
      const last = stdout.trim().startsWith('{') ? stdout.trim() : ''
      let json: any
      try {
        json = last ? JSON.parse(last) : undefined
      } catch {
        json = undefined
      }
      resolve({status: error ? (error.code as number) : 0, stdout, stderr, json})
    })
  })
}

/** The run failed with exit code `status` (also in the --json envelope) and a message matching every pattern. */
function refused(r: CliRun, status: number, ...patterns: (string | RegExp)[]): string {
  assert.equal(r.status, status, r.stdout + r.stderr)
  assert.equal(r.json?.exitCode, status, r.stdout)
  const message = r.json.message as string
  assert.doesNotMatch(message, /Cannot read properties|undefined|is not a function/)
  for (const p of patterns) typeof p === 'string' ? assert.ok(message.includes(p), `${JSON.stringify(p)} in:\n${message}`) : assert.match(message, p)
  return message
}

/** Writes sts-pair rows directly (what a user with pyarrow, or an editor, can do to a prepared file). */
async function writeSts(file: string, rows: StsPairRecord[]): Promise<void> {
  const w = new ArrowRecordWriter(file, 'sts-pair', {batchRows: 8, metadata: {'codiemb.dataset': 'edited', 'codiemb.task': 'sts', 'codiemb.label_range': '{"min":0,"max":5}'}})
  await w.writeAll(rows)
  await w.finish()
}

let clean: string
let cleanRows: StsPairRecord[]

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'codiemb-reliability-data-'))
  mkdirSync(join(root, 'vocab'))
  const letters = 'abcdefghijklmnopqrstuvwxyz'.split('')
  writeFileSync(join(root, 'vocab', 'vocab.txt'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...letters, ...letters.map((c) => `##${c}`)].join('\n') + '\n')
  writeFileSync(join(root, 'pairs.tsv'), tsv())
  await prepare({datasets: [{name: 'pairs', reader: 'delimited', task: 'sts', labelRange: {min: 0, max: 5}, splits: {train: 'pairs.tsv'}}]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'prepared')})
  clean = join(root, 'prepared', 'pairs', 'train.sts-pair.arrow')
  cleanRows = await readAllRecords(clean, 'sts-pair')
})

after(() => rmSync(root, {recursive: true, force: true}))

describe('rows the trainer refuses (exit 2, naming file and rows, before a model is loaded)', {concurrency: 2}, () => {
  it('NaN, Infinity and 7.0 scores, an empty text and a raw label outside the recorded label range: every bad row listed with its id', async () => {
    const file = join(root, 'scores.arrow')
    const edits: Record<number, Partial<StsPairRecord>> = {2: {text2: ''}, 4: {score: NaN}, 9: {score: Infinity}, 17: {score: 7}, 20: {raw_score: 6, score: 1}}
    await writeSts(file, cleanRows.map((r, i) => ({...r, ...edits[i]})))
    refused(
      await train(['--config', config('scores', [file]), '--dry-run']),
      2,
      `${file}: 5 problems against the sts-pair layout (data-schemas/records/sts-pair.schema.json) and the label range [0, 5]`,
      'row 2 (id "3"): text2: expected a non-empty text, got ""',
      'row 4 (id "5"): score: expected a finite number in [0, 1], got NaN',
      'row 9 (id "10"): score: expected a finite number in [0, 1], got Infinity',
      'row 17 (id "18"): score: expected a finite number in [0, 1], got 7',
      'row 20 (id "21"): raw_score: expected a label in [0, 5]',
    )
  })

  it('string scores and a missing text2 column: the columns named against the layout', async () => {
    const file = join(root, 'columns.arrow')
    const text = (values: string[]) => ({type: new Utf8(), values})
    writeArrowColumns(
      file,
      {id: text(cleanRows.map((r) => r.id)), text1: text(cleanRows.map((r) => r.text1)), score: text(cleanRows.map((r) => String(r.score))), raw_score: {type: new Float32(), values: cleanRows.map((r) => r.raw_score)}, instruction: text(cleanRows.map(() => ''))},
      {'codiemb.kind': 'sts-pair'},
    )
    refused(await train(['--config', config('columns', [file]), '--dry-run']), 2, `${file}: the columns do not match the sts-pair layout`, 'text2: expected a Utf8 column, but the file has none', 'score: expected a Float32 column, got Utf8')
  })

  it('a 0-byte file and a truncated file: a clear error, not "Cannot read properties of undefined"', async () => {
    const empty = join(root, 'empty.arrow')
    writeFileSync(empty, '')
    refused(await train(['--config', config('empty', [empty]), '--dry-run']), 2, `${empty}: the file is empty (0 bytes)`)
    const cut = join(root, 'cut.arrow')
    copyFileSync(clean, cut)
    truncateSync(cut, 700)
    refused(await train(['--config', config('cut', [cut]), '--dry-run']), 2, `${cut}: `)
  })

  it('a flipped byte: refused by the CLI naming the record batch (as its first row is read; start-up reads no text); a seeded sweep of 60 flips is always refused or harmless', async () => {
    const records = await RecordFile.open(clean)
    const {offset, length} = records.extents![0]!
    await records.close()
    const original = readFileSync(clean)
    const flipped = join(root, 'prepared', 'pairs', 'flipped.arrow')
    const bytes = Buffer.from(original)
    bytes[offset + Math.floor(length * 0.7)]! ^= 0x04
    writeFileSync(flipped, bytes)
    refused(await train(['--config', config('flip', [flipped], {maxSteps: 1})]), 2, `${flipped}: record batch 0 of 1`, 'does not match the checksum')
    assert.equal(existsSync(join(root, 'flip', 'out')), false)
    // The sweep damages a copy (the other cases of this group read the clean file meanwhile).
    const sweep = join(root, 'prepared', 'pairs', 'sweep.arrow')
    const rng = new Rng(2024)
    /** Every row the trainer would read from `path` (streamed, each record batch checked on first read). */
    const everyRow = async (path: string): Promise<string> => {
      const dataset = await loadTrainingDataset({path}, 0)
      try {
        return JSON.stringify(await readRows(dataset.rows as RowSource<object>, Array.from({length: dataset.rows.length}, (_, i) => i)))
      } finally {
        await closeTrainingData([dataset])
      }
    }
    const expected = await everyRow(clean)
    let caught = 0
    for (let k = 0; k < 60; k++) {
      const at = rng.int(original.length)
      const copy = Buffer.from(original)
      copy[at]! ^= 1 << rng.int(8)
      writeFileSync(sweep, copy)
      try {
        assert.equal(await everyRow(sweep), expected, `flip at byte ${at} trained on other rows`)
      } catch (error) {
        if ((error as Error).name === 'AssertionError') throw error
        assert.equal((error as Error & {exitCode?: number}).exitCode, 2, `flip at byte ${at}: ${(error as Error).stack}`)
        assert.ok((error as Error).message.includes(sweep), (error as Error).message)
        caught++
      }
    }
    assert.ok(caught >= 50, `${caught} of 60 flips refused`)
  })
})

describe('during training', () => {
  it('a text that is only white space stops the run as its batch is assembled (exit 2, file, row, field); checkpoints so far stay, no output appears', async () => {
    const file = join(root, 'blank.arrow')
    await writeSts(file, cleanRows.map((r, i) => (i === 23 ? {...r, text1: '   '} : r)))
    const name = 'blank'
    const r = await train(['--config', config(name, [file])])
    refused(r, 2, `${file}: row 23 (id "24"): text1: expected a text with a non-space character, got "   "`)
    assert.equal(existsSync(join(root, name, 'out')), false)
    // Whatever checkpoints the steps before it wrote are complete (and nothing else is there).
    const dir = join(root, name, 'out-checkpoints')
    for (const entry of existsSync(dir) ? readdirSync(dir) : []) {
      assert.match(entry, /^checkpoint-\d+$/)
      for (const f of ['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json']) assert.ok(existsSync(join(dir, entry, f)), `${entry}/${f}`)
      assert.equal(readTrainerState(join(dir, entry)).step, Number(entry.slice('checkpoint-'.length)))
    }
  })

  it('a NaN loss stops the run (exit 1) naming step, task, dataset and rows and the last good checkpoint, which resumes with onNonFinite: skip-batch', async () => {
    const name = 'diverge'
    const file = config(name, [clean], {learningRate: 1e30})
    const r = await train(['--config', file])
    const message = refused(r, 1, /^non-finite loss \(NaN\) at step 2 of 8 \(epoch 1, batch 1 of the epoch\): task sts, dataset pairs \(/, /file rows (\d+, ){5}\d+ \(numbered from 0\)/, 'nothing of this step was applied')
    const last = /The last good checkpoint is (\S+) \(step 1\)/.exec(message)?.[1]
    assert.equal(last, join(root, name, 'out-checkpoints', 'checkpoint-1'))
    assert.equal(existsSync(join(root, name, 'out')), false, 'no final model from a stopped run')
    assert.equal(existsSync(join(root, name, 'out-checkpoints', 'checkpoint-2')), false)
    const events = join(root, `${name}.ndjson`)
    const resumed = await train(['--config', config(name, [clean], {learningRate: 1e30, onNonFinite: 'skip-batch', maxSteps: 2}), '--resume', last!, '--events', events])
    assert.equal(resumed.status, 0, resumed.stdout + resumed.stderr)
    const warnings = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'warning')
    assert.equal(warnings.length, resumed.json.result.summary.skippedBatches)
    assert.ok(warnings.length >= 1 && warnings.every((w) => w.code === 'skipped-batch' && w.dataset === 'pairs' && w.rows.length === 6))
  })

  it('a model whose weights hold NaN is refused at load, naming the tensor', async () => {
    const source = join(root, 'diverge', 'out-checkpoints', 'checkpoint-1')
    const model = join(root, 'nan-model')
    cpSync(source, model, {recursive: true})
    const weights = join(model, 'model.safetensors')
    const bytes = readFileSync(weights)
    const headerLength = Number(bytes.readBigUInt64LE(0))
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, {data_offsets: [number, number]}>
    const tensor = Object.keys(header).find((n) => n.endsWith('output.dense.bias'))!
    bytes.writeFloatLE(NaN, 8 + headerLength + header[tensor]!.data_offsets[0] + 8)
    writeFileSync(weights, bytes)
    refused(await train(['--config', config('nanmodel', [clean], {}, model)]), 2, `${weights}: tensor "${tensor}" holds NaN at index 2`)
  })
})

// One case after the other: every case resumes into the same output, which a running case holds locked.
describe('resume trusts nothing (exit 2, naming the file, before the model is loaded)', () => {
  const checkpoint = () => join(root, 'diverge', 'out-checkpoints', 'checkpoint-3')
  /** A copy of a good checkpoint with trainer_state.json replaced by `text`. */
  function withState(name: string, text: (original: string) => string): string {
    const dir = join(root, 'edited', name)
    cpSync(checkpoint(), dir, {recursive: true})
    const file = join(dir, 'trainer_state.json')
    writeFileSync(file, text(readFileSync(file, 'utf8')))
    return dir
  }
  const resumeWith = (dir: string, extra: Record<string, unknown> = {}) => train(['--config', config('diverge', [clean], {learningRate: 1e30, onNonFinite: 'skip-batch', ...extra}), '--resume', dir])

  it('an edited step ("trained 999/8 steps"), a truncated file, another configuration', async () => {
    const step = withState('step', (t) => t.replace('"step": 3,', '"step": 999,'))
    refused(await resumeWith(step), 2, `${join(step, 'trainer_state.json')}: step 999 is beyond the 8 steps of the plan`)
    const cut = withState('cut', (t) => t.slice(0, 100))
    refused(await resumeWith(cut), 2, `${join(cut, 'trainer_state.json')}: not valid JSON`)
    refused(await resumeWith(checkpoint(), {learningRate: 1e29}), 2, 'written under different training settings', 'learningRate: 1e+30 → 1e+29')
  })

  it('a directory that is not a checkpoint, and the folder of checkpoints itself', async () => {
    refused(await resumeWith(join(root, 'vocab')), 2, `${join(root, 'vocab')}: not a training checkpoint (no trainer_state.json)`)
    const folder = join(root, 'diverge', 'out-checkpoints')
    refused(await resumeWith(folder), 2, `${folder} is a folder of checkpoints, not one checkpoint; resume from its newest with --resume ${join(folder, 'checkpoint-3')}`)
  })
})
