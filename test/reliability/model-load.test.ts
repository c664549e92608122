/**
 * Hostile users against model loading, through the CLI (`embed`, `train`, `eval`, `merge`) on
 * doctored copies of the bert-tiny fixture (docs/reliability.md § Models at load):
 *
 * - a config.json with fewer layers than the weights, a tokenizer with more ids than the embedding
 *   matrix has rows, a corrupt tokenizer.json beside a good vocab.txt: embed, train and eval exit 2
 *   naming the file and the tensor; merge (which merges every tensor on purpose) succeeds and warns
 *   that codiemb will not load its output;
 * - a checkpoint carrying tensors the encoder ignores on purpose (a position-id buffer, an MLM head)
 *   or keeps (a pooler): the commands succeed and say which, once per load, in the --json envelope's
 *   warnings and on stderr.
 *
 * The runs overlap (each mostly waits on module loading), so the suite stays well under a minute.
 */
import assert from 'node:assert/strict'
import {cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {ArrowRecordWriter} from '../../src/io/arrow-records.js'
import {openSafetensors} from '../../src/io/safetensors.js'
import {writeSafetensors} from '../../src/io/safetensors-stream.js'
import {runCliAsync, type CliRun} from '../helpers/cli.js'
import {SHARED_DIR, TEST_BACKEND} from '../helpers/env.js'

const FIXTURES = SHARED_DIR && join(SHARED_DIR, 'fixtures', 'models')
const skip = FIXTURES ? false : '../shared is absent (set CODIEMB_SHARED): these tests doctor the bert-tiny fixture'

let root: string
/** The doctored models, by what was done to them. */
const models = {fewerLayers: '', foreignTokenizer: '', corruptTokenizer: '', extraTensors: ''}

/** A copy of bert-tiny at `name` under the work directory, changed by `doctor`. */
async function doctored(name: string, doctor: (dir: string) => void | Promise<void>): Promise<string> {
  const dir = join(root, name)
  cpSync(join(FIXTURES!, 'bert-tiny', 'model'), dir, {recursive: true})
  await doctor(dir)
  return dir
}

function editJson(path: string, edit: (value: any) => void): void {
  const value = JSON.parse(readFileSync(path, 'utf8'))
  edit(value)
  writeFileSync(path, JSON.stringify(value))
}

/** 8 STS pairs for a one-step training run. */
async function writeStsData(path: string): Promise<void> {
  const sts = new ArrowRecordWriter(path, 'sts-pair', {metadata: {'codiemb.dataset': 'toy-sts', 'codiemb.task': 'sts'}})
  const words = ['cat', 'dog', 'bird', 'fish']
  for (let i = 0; i < 8; i++) {
    sts.write({id: `s${i}`, text1: `a ${words[i % 4]} runs`, text2: `a ${words[(i * 3) % 4]} runs`, score: i % 4 === (i * 3) % 4 ? 1 : 0.25, raw_score: 0, instruction: ''})
  }
  await sts.finish()
}

/** A train config that fine-tunes `model` for one step on the STS pairs. */
function trainConfig(name: string, model: string): string {
  const file = join(root, `train-${name}.json`)
  writeFileSync(
    file,
    JSON.stringify({
      train: {
        model,
        output: join(root, `trained-${name}`),
        dataDir: root,
        data: ['sts.arrow'],
        tasks: {sts: {maxLength: 16}},
        sampler: {name: 'dynamic', options: {batchSizes: {sts: 4}}},
        epochs: 1,
        maxSteps: 1,
        checkpoint: {everyEpoch: false},
      },
    }),
  )
  return file
}

/** At most four CLI runs at a time: enough overlap to hide module loading, not so many that they fight for the cores. */
let running = 0
const waiting: (() => void)[] = []
async function cli(args: string[]): Promise<CliRun> {
  // A finished run hands its slot straight to the next waiting one.
  if (running >= 4) await new Promise<void>((resolve) => waiting.push(resolve))
  else running++
  try {
    return await runCliAsync(args)
  } finally {
    const next = waiting.shift()
    if (next) next()
    else running--
  }
}

const backend = ['--backend', TEST_BACKEND]
const embed = (model: string, ...flags: string[]) => cli(['embed', '-m', model, '-i', join(root, 'texts.txt'), '-o', join(root, `${Math.random().toString(36).slice(2)}.arrow`), ...backend, ...flags])
const train = (name: string, model: string) => cli(['train', '-c', trainConfig(name, model), ...backend, '--json'])
// The model loads before any task data is read, so a task whose data is absent is enough here.
const evaluate = (model: string) => cli(['eval', '-m', model, '--tasks', 'ATEC', '--data-dir', join(root, 'no-data'), '--out', join(root, 'results'), ...backend, '--json'])
const merge = (name: string, model: string) => cli(['merge', model, model, '--method', 'soup', '--out', join(root, `merged-${name}`), '--json'])

function assertExit2(r: CliRun, what: string, ...patterns: RegExp[]): void {
  assert.equal(r.status, 2, `${what}: exit ${r.status}\n${r.stdout}\n${r.stderr}`)
  assert.equal(r.json?.exitCode, 2, `${what}: no --json error envelope\n${r.stdout}`)
  for (const p of patterns) assert.match(r.json.message, p, what)
}

function assertMergeWarns(r: CliRun, pattern: RegExp): void {
  assert.equal(r.status, 0, r.stdout + r.stderr)
  const warnings: string[] = r.json.warnings
  assert.equal(warnings.filter((w) => w.startsWith('codiemb will not load the merged model: ')).length, 1, warnings.join('\n'))
  assert.match(warnings.join('\n'), pattern)
}

describe('models at load (CLI, doctored bert-tiny copies)', {skip, concurrency: true}, () => {
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'codiemb-model-load-'))
    writeFileSync(join(root, 'texts.txt'), 'a cat runs\na dog sleeps\n')
    await writeStsData(join(root, 'sts.arrow'))
    models.fewerLayers = await doctored('fewer-layers', (dir) => editJson(join(dir, 'config.json'), (c) => (c.num_hidden_layers = 1)))
    // Another model's tokenizer (xlmr-tiny: 6000 ids) beside bert-tiny's 2757-row embedding matrix.
    models.foreignTokenizer = await doctored('foreign-tokenizer', (dir) => cpSync(join(FIXTURES!, 'xlmr-tiny', 'model', 'tokenizer.json'), join(dir, 'tokenizer.json')))
    models.corruptTokenizer = await doctored('corrupt-tokenizer', (dir) => {
      const text = readFileSync(join(dir, 'tokenizer.json'), 'utf8')
      writeFileSync(join(dir, 'tokenizer.json'), text.slice(0, text.length >> 1))
    })
    models.extraTensors = await doctored('extra-tensors', async (dir) => {
      const st = await openSafetensors(join(dir, 'model.safetensors'))
      const tensors = []
      for (const info of st.tensors()) tensors.push({name: info.name, shape: info.shape, data: (await st.read(info.name)).data})
      await st.close()
      tensors.push(
        {name: 'embeddings.position_ids', shape: [1, 128], data: BigInt64Array.from({length: 128}, (_, i) => BigInt(i))},
        {name: 'cls.predictions.bias', shape: [2757], data: new Float32Array(2757)},
        {name: 'pooler.dense.weight', shape: [64, 64], data: new Float32Array(64 * 64).fill(0.01)},
        {name: 'pooler.dense.bias', shape: [64], data: new Float32Array(64)},
      )
      await writeSafetensors(join(dir, 'model.safetensors'), tensors, {format: 'pt'})
    })
  })
  after(() => rmSync(root, {recursive: true, force: true}))

  it('a config with fewer layers than the weights: embed, train and eval exit 2 naming the weights, the tensors and num_hidden_layers; merge warns', async () => {
    const m = models.fewerLayers
    const message = [
      new RegExp(`^${join(m, 'model.safetensors')}: 16 tensors would go unused: "encoder\\.layer\\.1\\.`),
      new RegExp(`${join(m, 'config.json')} has num_hidden_layers 1 but the weights hold layer 1: fix num_hidden_layers or remove those tensors$`),
    ]
    const [e, t, v, g] = await Promise.all([embed(m, '--json'), train('fewer-layers', m), evaluate(m), merge('fewer-layers', m)])
    assertExit2(e, 'embed', ...message)
    assertExit2(t, 'train', ...message)
    assertExit2(v, 'eval', ...message)
    assertMergeWarns(g, /will not load the merged model: .*merged-fewer-layers\/model\.safetensors: 16 tensors would go unused: .*num_hidden_layers 1 but the weights hold layer 1/)
  })

  it('a tokenizer with more ids than embedding rows: exit 2 naming tokenizer.json, the token, the tensor and vocab_size (not a GatherV2 error at the first batch)', async () => {
    const m = models.foreignTokenizer
    const message = [
      new RegExp(`^${join(m, 'tokenizer.json')}: token "[^"]*" has id 5999, past the 2757 rows of tensor "embeddings\\.word_embeddings\\.weight" in ${join(m, 'model.safetensors')} \\(vocab_size 2757 in ${join(m, 'config.json')}\\)`),
    ]
    const [e, t, v, g] = await Promise.all([embed(m, '--json'), train('foreign-tokenizer', m), evaluate(m), merge('foreign-tokenizer', m)])
    assertExit2(e, 'embed', ...message)
    assertExit2(t, 'train', ...message)
    assertExit2(v, 'eval', ...message)
    assertMergeWarns(g, /will not load the merged model: .*merged-foreign-tokenizer\/tokenizer\.json: token "[^"]*" has id 5999, past the 2757 rows/)
  })

  it('a corrupt tokenizer.json beside a good vocab.txt: exit 2 naming tokenizer.json, no silent fallback to vocab.txt', async () => {
    const m = models.corruptTokenizer
    const message = [new RegExp(`^${join(m, 'tokenizer.json')}: not valid JSON \\(.*\\) \\(vocab\\.txt beside it is not used instead: the two may tokenize differently\\)$`)]
    const [e, t, v, g] = await Promise.all([embed(m, '--json'), train('corrupt-tokenizer', m), evaluate(m), merge('corrupt-tokenizer', m)])
    assertExit2(e, 'embed', ...message)
    assertExit2(t, 'train', ...message)
    assertExit2(v, 'eval', ...message)
    assertMergeWarns(g, /will not load the merged model: .*merged-corrupt-tokenizer\/tokenizer\.json: not valid JSON/)
  })

  it('tensors the encoder ignores or keeps: embed, train and merge succeed and say which, once per load (envelope and stderr)', async () => {
    const m = models.extraTensors
    const unused = new RegExp(
      `${join(m, 'model.safetensors')}: 4 tensors not used to compute embeddings: ` +
        '"embeddings\\.position_ids" \\(index buffer, computed per batch; not loaded\\); ' +
        '"cls\\.predictions\\.bias" \\(masked-LM head, not part of the encoder; not loaded\\); ' +
        '"pooler\\.dense\\.weight", "pooler\\.dense\\.bias" \\(kept unchanged and written back on save\\)$',
    )
    const [json, plain, t, g] = await Promise.all([embed(m, '--json'), embed(m), train('extra-tensors', m), merge('extra-tensors', m)])
    assert.equal(json.status, 0, json.stdout + json.stderr)
    assert.equal(json.json.warnings.length, 1, json.json.warnings.join('\n'))
    assert.match(json.json.warnings[0], unused)
    assert.equal(plain.status, 0, plain.stderr)
    const stderrWarnings = plain.stderr.split('\n').filter((l) => l.startsWith('Warning: '))
    assert.equal(stderrWarnings.length, 1, plain.stderr)
    assert.match(stderrWarnings[0]!.slice('Warning: '.length), unused)

    assert.equal(t.status, 0, t.stdout + t.stderr)
    assert.deepEqual(t.json.warnings.filter((w: string) => unused.test(w)).length, 1, t.json.warnings.join('\n'))
    // The trained model keeps the pooler, not the ignored tensors: reloading it warns about the pooler only.
    const saved = await openSafetensors(join(root, 'trained-extra-tensors'))
    const names = saved.tensors().map((i) => i.name)
    await saved.close()
    assert.ok(names.includes('pooler.dense.weight') && !names.includes('cls.predictions.bias') && !names.includes('embeddings.position_ids'), names.join(', '))

    assert.equal(g.status, 0, g.stdout + g.stderr)
    const mergeWarnings: string[] = g.json.warnings.filter((w: string) => w.startsWith('merged model: '))
    assert.equal(mergeWarnings.length, 1, g.json.warnings.join('\n'))
    assert.match(mergeWarnings[0]!, /merged-extra-tensors\/model\.safetensors: 4 tensors not used to compute embeddings: .*"cls\.predictions\.bias" \(masked-LM head/)
  })
})
