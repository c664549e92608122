/**
 * Model consistency at load (src/model/consistency.ts): every checkpoint tensor is a parameter, kept,
 * deliberately ignored or an error; the tokenizer's ids fit the embedding rows. The unit cases use
 * the bert architecture on tensor lists built here; the last cases load doctored fixture copies.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import bert from '../../src/model/encoders/bert.js'
import type {EncoderArchitecture, HfConfig} from '../../src/model/architecture.js'
import {checkModelDirectory, checkVocabulary, EncoderLoadError, selectTensors, unusedTensorsWarning, type TensorSelection} from '../../src/model/consistency.js'
import {loadEncoder} from '../../src/model/encoder.js'
import type {TensorInfo} from '../../src/io/safetensors.js'
import type {TextTokenizer} from '../../src/model/tokenizer/types.js'
import {openSafetensors} from '../../src/io/safetensors.js'
import {writeSafetensors} from '../../src/io/safetensors-stream.js'
import {BUILTINS, shared, useTestBackend} from '../helpers/env.js'

const CONFIG: HfConfig = {
  model_type: 'bert',
  hidden_size: 4,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 8,
  max_position_embeddings: 8,
  vocab_size: 10,
}

/** The tensors of a bert checkpoint for `config`, each name behind `prefix`, plus `extra`. */
function checkpoint(config: HfConfig, prefix = '', extra: TensorInfo[] = []): TensorInfo[] {
  return [...bert.parameterShapes(config).map(([name, shape]) => ({name: prefix + name, dtype: 'F32' as const, shape})), ...extra]
}

const f32 = (name: string, ...shape: number[]): TensorInfo => ({name, dtype: 'F32', shape})

function rejects(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof EncoderLoadError, `expected an EncoderLoadError, got ${String(e)}`)
    assert.equal(e.exitCode, 2)
    for (const p of patterns) assert.match(e.message, p)
    return true
  })
}

test('a checkpoint holding exactly the parameters: all used, none unused, in parameterShapes order', () => {
  const s = selectTensors(bert, CONFIG, checkpoint(CONFIG).reverse(), 'w.safetensors', 'config.json')
  assert.equal(s.prefix, '')
  assert.deepEqual(s.parameters.map((p) => p.name), bert.parameterShapes(CONFIG).map(([n]) => n))
  assert.deepEqual(s.unused, [])
  assert.equal(unusedTensorsWarning('w.safetensors', s.unused), undefined)
})

test('a task checkpoint: prefixed parameters used, pooler kept, buffers and heads ignored with their reasons', () => {
  const tensors = checkpoint(CONFIG, 'bert.', [
    f32('bert.pooler.dense.weight', 4, 4),
    {name: 'bert.embeddings.position_ids', dtype: 'I64', shape: [1, 8]},
    f32('cls.predictions.bias', 10),
    f32('cls.predictions.transform.dense.weight', 4, 4),
    f32('classifier.weight', 3, 4),
  ])
  const s = selectTensors(bert, CONFIG, tensors, 'w.safetensors', 'config.json')
  assert.equal(s.prefix, 'bert.')
  assert.equal(s.parameters[0]!.file, 'bert.embeddings.word_embeddings.weight')
  assert.equal(s.parameters[0]!.name, 'embeddings.word_embeddings.weight')
  assert.deepEqual(
    s.unused.map((u) => [u.name, u.kept]),
    [
      ['bert.pooler.dense.weight', true],
      ['bert.embeddings.position_ids', false],
      ['cls.predictions.bias', false],
      ['cls.predictions.transform.dense.weight', false],
      ['classifier.weight', false],
    ],
  )
  const warning = unusedTensorsWarning('w.safetensors', s.unused)!
  assert.equal(
    warning,
    'w.safetensors: 5 tensors not used to compute embeddings: "bert.pooler.dense.weight" (kept unchanged and written back on save); ' +
      '"bert.embeddings.position_ids" (index buffer, computed per batch; not loaded); ' +
      '"cls.predictions.bias", "cls.predictions.transform.dense.weight" (masked-LM head, not part of the encoder; not loaded); ' +
      '"classifier.weight" (task head, not part of the encoder; not loaded)',
  )
})

test('layers past num_hidden_layers fail the load, naming the weights, the tensors and the config field', () => {
  const three = {...CONFIG, num_hidden_layers: 3}
  rejects(
    () => selectTensors(bert, CONFIG, checkpoint(three), '/m/model.safetensors', '/m/config.json'),
    /^\/m\/model\.safetensors: 16 tensors would go unused: "encoder\.layer\.2\.attention\.self\.query\.weight", .* and 11 more; /,
    /\/m\/config\.json has num_hidden_layers 2 but the weights hold layer 2: fix num_hidden_layers or remove those tensors$/,
  )
  const five = {...CONFIG, num_hidden_layers: 5}
  rejects(() => selectTensors(bert, CONFIG, checkpoint(five), 'w', 'c'), /the weights hold layers 2, 3, 4:/)
})

test('a tensor neither used nor ignored fails the load; so do a missing parameter and a wrong shape', () => {
  rejects(
    () => selectTensors(bert, CONFIG, checkpoint(CONFIG, '', [f32('adapter.down.weight', 2, 4)]), 'w', 'c.json'),
    /^w: 1 tensor would go unused: "adapter\.down\.weight"; neither part of the "bert" model that c\.json describes nor ignored by its encoder on purpose$/,
  )
  // Unprefixed encoder tensors beside prefixed ones (two models in one file) are not silently dropped.
  rejects(() => selectTensors(bert, CONFIG, [...checkpoint(CONFIG, 'bert.'), f32('embeddings.LayerNorm.bias', 4)], 'w', 'c'), /"embeddings\.LayerNorm\.bias"/)
  const missing = checkpoint(CONFIG).filter((t) => t.name !== 'encoder.layer.1.output.dense.bias')
  rejects(() => selectTensors(bert, CONFIG, missing, 'w', 'c'), /^w: tensor "encoder\.layer\.1\.output\.dense\.bias" is missing \(expected shape \[4\] for c\)$/)
  const wide = checkpoint({...CONFIG, vocab_size: 12})
  rejects(() => selectTensors(bert, CONFIG, wide, 'w', 'c'), /^w: tensor "embeddings\.word_embeddings\.weight" has shape \[12, 4\], expected \[10, 4\] from c$/)
  rejects(() => selectTensors(bert, CONFIG, [f32('x', 1)], 'w', 'c'), /^w: tensor "embeddings\.word_embeddings\.weight" is missing \(also looked for "bert\.embeddings\.word_embeddings\.weight"\)$/)
})

test('a plugin architecture without ignoredTensor accepts only its parameters and passthrough; its first parameter locates the prefix', () => {
  const plugin: EncoderArchitecture = {
    ...bert,
    weightPrefixes: ['', 'model.'],
    parameterShapes: (c) => [['embed_tokens.weight', [c.vocab_size, c.hidden_size]], ['norm.weight', [c.hidden_size]]],
    passthrough: (name) => name === 'score.weight',
    ignoredTensor: undefined,
  }
  const tensors = [f32('model.embed_tokens.weight', 10, 4), f32('model.norm.weight', 4), f32('model.score.weight', 1, 4)]
  const s = selectTensors(plugin, CONFIG, tensors, 'w', 'c')
  assert.equal(s.prefix, 'model.')
  assert.deepEqual(s.unused, [{name: 'model.score.weight', kept: true, reason: 'kept unchanged and written back on save'}])
  rejects(() => selectTensors(plugin, CONFIG, [...tensors, {name: 'model.embeddings.position_ids', dtype: 'I64', shape: [1, 8]}], 'w', 'c'), /1 tensor would go unused: "model\.embeddings\.position_ids"/)
})

test('unusedTensorsWarning lists at most eight names per reason', () => {
  const unused = Array.from({length: 11}, (_, i) => ({name: `cls.t${i}`, kept: false, reason: 'head'}))
  assert.equal(
    unusedTensorsWarning('w', unused),
    'w: 11 tensors not used to compute embeddings: "cls.t0", "cls.t1", "cls.t2", "cls.t3", "cls.t4", "cls.t5", "cls.t6", "cls.t7" and 3 more (head; not loaded)',
  )
})

test('checkVocabulary: every token id and the pad id must be a row of the embedding matrix', () => {
  const selection: TensorSelection = selectTensors(bert, CONFIG, checkpoint(CONFIG), '/m/model.safetensors', '/m/config.json')
  const tokenizer = (id: number, padId = 0) => ({highestId: {id, token: '[NEW]'}, padId}) as unknown as TextTokenizer
  checkVocabulary(tokenizer(9), '/m/tokenizer.json', CONFIG, selection, '/m/model.safetensors', '/m/config.json')
  rejects(
    () => checkVocabulary(tokenizer(10), '/m/tokenizer.json', CONFIG, selection, '/m/model.safetensors', '/m/config.json'),
    /^\/m\/tokenizer\.json: token "\[NEW\]" has id 10, past the 10 rows of tensor "embeddings\.word_embeddings\.weight" in \/m\/model\.safetensors \(vocab_size 10 in \/m\/config\.json\): the tokenizer needs 11 rows; use the tokenizer the model was trained with$/,
  )
  rejects(() => checkVocabulary(tokenizer(5, 10), '/m/vocab.txt', CONFIG, selection, 'w', 'c'), /^\/m\/vocab\.txt: the pad token id 10 is past the 10 rows of tensor "embeddings\.word_embeddings\.weight"/)
})

/** A copy of a fixture model in a temporary directory, removed after the test. */
function copyFixture(t: import('node:test').TestContext, name: string): string | undefined {
  const src = shared(t, 'fixtures', 'models', name, 'model')
  if (!src) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-consistency-'))
  t.after(() => rmSync(dir, {recursive: true, force: true}))
  cpSync(src, join(dir, 'm'), {recursive: true})
  return join(dir, 'm')
}

test('loadEncoder: one warning per load for unused tensors, the same one checkModelDirectory gives', async (t) => {
  const dir = copyFixture(t, 'st-bert-tiny-cls')
  if (!dir) return
  await useTestBackend()
  const warnings: string[] = []
  const enc = await loadEncoder(dir, {registry: BUILTINS, trainable: false, onWarning: (w) => warnings.push(w)})
  enc.dispose()
  assert.equal(warnings.length, 1)
  assert.match(warnings[0]!, /model\.safetensors: 2 tensors not used to compute embeddings: "pooler\.dense\.bias", "pooler\.dense\.weight" \(kept unchanged and written back on save\)$/)
  assert.deepEqual((await checkModelDirectory(dir, {registry: BUILTINS})).warnings, warnings)
})

test('loadEncoder refuses a config with fewer layers than the weights, and a tokenizer with more ids than embedding rows', async (t) => {
  const dir = copyFixture(t, 'bert-tiny')
  const xlmr = shared(t, 'fixtures', 'models', 'xlmr-tiny', 'model')
  if (!dir || !xlmr) return
  await useTestBackend()
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
  writeFileSync(join(dir, 'config.json'), JSON.stringify({...config, num_hidden_layers: 1}))
  await assert.rejects(loadEncoder(dir, {registry: BUILTINS}), (e: unknown) => {
    assert.ok(e instanceof EncoderLoadError)
    assert.match(e.message, /model\.safetensors: 16 tensors would go unused: "encoder\.layer\.1\.[^"]+".*config\.json has num_hidden_layers 1 but the weights hold layer 1/)
    return true
  })
  await assert.rejects(checkModelDirectory(dir, {registry: BUILTINS}), /num_hidden_layers 1 but the weights hold layer 1/)
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config))

  // Another model's tokenizer (6000 ids) beside bert-tiny's 2757-row embedding matrix.
  cpSync(join(xlmr, 'tokenizer.json'), join(dir, 'tokenizer.json'))
  await assert.rejects(
    loadEncoder(dir, {registry: BUILTINS}),
    /tokenizer\.json: token "[^"]*" has id 5999, past the 2757 rows of tensor "embeddings\.word_embeddings\.weight" in .*model\.safetensors \(vocab_size 2757 in .*config\.json\)/,
  )
})

test('loadEncoder keeps the pooler, drops ignored tensors and saves what it kept', async (t) => {
  const dir = copyFixture(t, 'bert-tiny')
  if (!dir) return
  await useTestBackend()
  const st = await openSafetensors(join(dir, 'model.safetensors'))
  const tensors = []
  for (const info of st.tensors()) tensors.push({name: info.name, shape: info.shape, data: (await st.read(info.name)).data})
  await st.close()
  tensors.push({name: 'embeddings.position_ids', shape: [1, 128], data: BigInt64Array.from({length: 128}, (_, i) => BigInt(i))})
  tensors.push({name: 'pooler.dense.bias', shape: [64], data: new Float32Array(64).fill(0.5)})
  tensors.push({name: 'cls.predictions.bias', shape: [2757], data: new Float32Array(2757)})
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, {format: 'pt'})
  const warnings: string[] = []
  const enc = await loadEncoder(dir, {registry: BUILTINS, onWarning: (w) => warnings.push(w)})
  assert.equal(warnings.length, 1)
  assert.match(warnings[0]!, /3 tensors not used to compute embeddings: "embeddings\.position_ids" \(index buffer, computed per batch; not loaded\); "pooler\.dense\.bias" \(kept unchanged and written back on save\); "cls\.predictions\.bias" \(masked-LM head/)
  assert.ok(!enc.variables.has('pooler.dense.bias') && !enc.variables.has('cls.predictions.bias'))
  const out = join(dir, '..', 'saved')
  await enc.save(out)
  enc.dispose()
  const saved = await openSafetensors(out)
  const names = saved.tensors().map((i) => i.name)
  assert.deepEqual([...(await saved.read('pooler.dense.bias')).data].slice(0, 2), [0.5, 0.5])
  await saved.close()
  assert.ok(!names.includes('embeddings.position_ids') && !names.includes('cls.predictions.bias'))
})
