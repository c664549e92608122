import {test} from 'node:test'
import assert from 'node:assert/strict'
import {cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import {EncoderLoadError, initRandomEncoder, loadEncoder, type Encoder} from '../../src/model/encoder.js'
import {openSafetensors} from '../../src/io/safetensors.js'
import {writeSafetensors} from '../../src/io/safetensors-stream.js'
import {TokenizerError} from '../../src/model/tokenizer/tokenizer.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'

interface HfExpected {
  sentences: string[]
  hidden_states: number[][][][]
  last_hidden_state: number[][][]
  mean_pooled: number[][]
  cls_pooled: number[][]
  mean_pooled_normalized: number[][]
  cls_pooled_normalized: number[][]
}

const TOL = 1e-4

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch')
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'codiemb-enc-'))
}

/** Copies a fixture model into a temporary directory so a test may alter it. */
function copyModel(src: string): string {
  const dir = tmp()
  cpSync(src, join(dir, 'm'), {recursive: true})
  return join(dir, 'm')
}

async function pooledRows(enc: Encoder, texts: string[]): Promise<number[]> {
  return (await enc.encode(texts)).flatMap((v) => [...v])
}

for (const name of ['bert-tiny', 'xlmr-tiny']) {
  test(`${name}: every hidden state and the pooled embeddings match transformers within 1e-4`, async (t) => {
    const dir = shared(t, 'fixtures', 'models', name)
    if (!dir) return
    await useTestBackend()
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as HfExpected
    const beforeLoad = tf.memory().numTensors
    const enc = await loadEncoder(join(dir, 'model'), {registry: BUILTINS})
    assert.equal(tf.memory().numTensors, beforeLoad + enc.variables.size, 'one tensor per variable after loading')
    assert.equal(enc.numLayers, 2)
    assert.equal(enc.hiddenSize, 64)
    assert.equal(enc.pooling, 'mean') // no sentence-transformers files: mean, as sentence-transformers does
    const before = tf.memory().numTensors
    const batch = await enc.tokenize(expected.sentences)
    tf.tidy(() => {
      const {hiddenStates, lastHiddenState} = enc.forward(batch)
      assert.equal(hiddenStates.length, 3)
      hiddenStates.forEach((h, l) => {
        const d = maxAbsDiff(h.dataSync(), expected.hidden_states[l]!.flat(2))
        assert.ok(d < TOL, `hidden_states[${l}] max |diff| ${d}`)
      })
      assert.ok(maxAbsDiff(lastHiddenState.dataSync(), expected.last_hidden_state.flat(2)) < TOL)
      const cases: [string, 'mean' | 'cls', boolean, number[][]][] = [
        ['mean', 'mean', false, expected.mean_pooled],
        ['cls', 'cls', false, expected.cls_pooled],
        ['mean normalised', 'mean', true, expected.mean_pooled_normalized],
        ['cls normalised', 'cls', true, expected.cls_pooled_normalized],
      ]
      for (const [label, pooling, normalize, want] of cases) {
        const d = maxAbsDiff(enc.pool(lastHiddenState, batch, {pooling, normalize}).dataSync(), want.flat())
        assert.ok(d < TOL, `${label}: max |diff| ${d}`)
      }
    })
    assert.equal(tf.memory().numTensors, before, 'forward + pool inside tidy must not leak tensors')
    // encode() sorts by length and batches; results come back in input order.
    const encoded = await enc.encode(expected.sentences, {batchSize: 4, normalize: true})
    assert.ok(maxAbsDiff(encoded.flatMap((v) => [...v]), expected.mean_pooled_normalized.flat()) < TOL)
    assert.equal(tf.memory().numTensors, before)
    enc.dispose()
    assert.equal(tf.memory().numTensors, beforeLoad, 'dispose() frees every variable')
  })
}

test('st-bert-tiny-cls (sentence-transformers 6): CLS + Normalize, with and without the query prompt', async (t) => {
  const dir = shared(t, 'fixtures', 'models', 'st-bert-tiny-cls')
  if (!dir) return
  await useTestBackend()
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
    sentences: string[]
    embeddings: number[][]
    embeddings_query_prompt: number[][]
  }
  const enc = await loadEncoder(join(dir, 'model'), {registry: BUILTINS})
  assert.equal(enc.pooling, 'cls')
  assert.equal(enc.normalize, true)
  assert.equal(enc.includePrompt, true)
  assert.equal(enc.prompts.query, 'Instruction: find similar text Query: ')
  assert.equal(enc.maxLength, 64)
  assert.ok(maxAbsDiff(await pooledRows(enc, expected.sentences), expected.embeddings.flat()) < TOL)
  const withPrompt = await enc.encode(expected.sentences, {prompt: 'query'})
  assert.ok(maxAbsDiff(withPrompt.flatMap((v) => [...v]), expected.embeddings_query_prompt.flat()) < TOL)
  await assert.rejects(enc.encode(['x'], {prompt: 'nope'}), /prompt "nope" is not defined by this model \(prompts: document, query\)/)
  enc.dispose()
})

test('sentence-transformers 5 layout (pooling_mode_* booleans, models.* types) loads the same model', async (t) => {
  const src = shared(t, 'fixtures', 'models', 'st-bert-tiny-cls')
  if (!src) return
  await useTestBackend()
  const expected = JSON.parse(readFileSync(join(src, 'expected.json'), 'utf8')) as {sentences: string[]; embeddings: number[][]}
  const dir = copyModel(join(src, 'model'))
  try {
    writeFileSync(
      join(dir, 'modules.json'),
      JSON.stringify([
        {idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer'},
        {idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling'},
        {idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize'},
      ]),
    )
    writeFileSync(
      join(dir, '1_Pooling', 'config.json'),
      JSON.stringify({
        word_embedding_dimension: 64,
        pooling_mode_cls_token: true,
        pooling_mode_mean_tokens: false,
        pooling_mode_max_tokens: false,
        pooling_mode_mean_sqrt_len_tokens: false,
        pooling_mode_weightedmean_tokens: false,
        pooling_mode_lasttoken: false,
        include_prompt: true,
      }),
    )
    writeFileSync(join(dir, 'sentence_bert_config.json'), JSON.stringify({max_seq_length: 60, do_lower_case: false}))
    const enc = await loadEncoder(dir, {registry: BUILTINS})
    assert.equal(enc.pooling, 'cls')
    assert.equal(enc.maxLength, 60)
    assert.ok(maxAbsDiff(await pooledRows(enc, expected.sentences), expected.embeddings.flat()) < TOL)
    enc.dispose()
    // A module codiemb cannot run is an error naming modules.json and the module.
    writeFileSync(
      join(dir, 'modules.json'),
      JSON.stringify([
        {idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer'},
        {idx: 1, name: '1', path: '2_Dense', type: 'sentence_transformers.models.Dense'},
      ]),
    )
    await assert.rejects(loadEncoder(dir, {registry: BUILTINS}), /modules\.json: module 1 of type "sentence_transformers\.models\.Dense" is not supported/)
  } finally {
    rmSync(join(dir, '..'), {recursive: true, force: true})
  }
})

test('save -> reload gives identical outputs and the sentence-transformers file set', async (t) => {
  const src = shared(t, 'fixtures', 'models', 'st-bert-tiny-cls', 'model')
  if (!src) return
  await useTestBackend()
  const out = tmp()
  try {
    const enc = await loadEncoder(src, {registry: BUILTINS})
    const texts = ['A man is playing a guitar.', '今天天气很好', 'Hi']
    const a = await enc.encode(texts, {prompt: 'query'})
    await enc.save(join(out, 'ckpt'))
    // Overwriting an existing checkpoint is atomic too (old directory swapped out).
    await enc.save(join(out, 'ckpt'))
    const files = readdirSync(join(out, 'ckpt'), {recursive: true}).map(String).sort()
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'modules.json', 'sentence_bert_config.json', 'config_sentence_transformers.json', join('1_Pooling', 'config.json'), '2_Normalize']) {
      assert.ok(files.includes(f), `missing ${f} in ${files.join(', ')}`)
    }
    assert.deepEqual(readdirSync(out), ['ckpt'])
    const pooling = JSON.parse(readFileSync(join(out, 'ckpt', '1_Pooling', 'config.json'), 'utf8'))
    assert.equal(pooling.pooling_mode_cls_token, true)
    assert.equal(pooling.pooling_mode_mean_tokens, false)
    assert.equal(pooling.include_prompt, true)
    assert.equal(pooling.word_embedding_dimension, 64)
    const stc = JSON.parse(readFileSync(join(out, 'ckpt', 'config_sentence_transformers.json'), 'utf8'))
    assert.deepEqual(stc.prompts, enc.prompts)
    const cfg = JSON.parse(readFileSync(join(out, 'ckpt', 'config.json'), 'utf8'))
    assert.deepEqual(cfg.architectures, ['BertModel'])
    const st = await openSafetensors(join(out, 'ckpt'))
    assert.equal(st.metadata.format, 'pt')
    // The 37 encoder tensors plus the checkpoint's pooler, kept as it was.
    assert.equal(st.tensors().length, 39)
    assert.ok(st.has('pooler.dense.weight'))
    await st.close()
    const again = await loadEncoder(join(out, 'ckpt'), {registry: BUILTINS})
    assert.equal(again.fingerprint(), enc.fingerprint())
    const b = await again.encode(texts, {prompt: 'query'})
    assert.deepEqual(b.map((v) => [...v]), a.map((v) => [...v]))
    enc.dispose()
    again.dispose()
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})

test('F16 and BF16 checkpoints load (upcast to float32) and stay close to the F32 model', async (t) => {
  const src = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!src) return
  await useTestBackend()
  const out = tmp()
  try {
    const enc = await loadEncoder(src, {registry: BUILTINS})
    const texts = ['A man is playing a guitar.', '一架飞机正在起飞。']
    const ref = await enc.encode(texts, {normalize: true})
    const word = enc.variables.get('embeddings.word_embeddings.weight')!.dataSync()
    for (const dtype of ['F16', 'BF16'] as const) {
      await enc.save(join(out, dtype), {dtype})
      const st = await openSafetensors(join(out, dtype))
      assert.ok(st.tensors().every((x) => x.dtype === dtype))
      await st.close()
      const low = await loadEncoder(join(out, dtype), {registry: BUILTINS})
      const lowWord = low.variables.get('embeddings.word_embeddings.weight')!.dataSync()
      const rel = dtype === 'F16' ? 2 ** -11 : 2 ** -8
      for (let i = 0; i < word.length; i += 97) assert.ok(Math.abs(lowWord[i]! - word[i]!) <= Math.abs(word[i]!) * rel + 1e-7, `${dtype} weight ${i}`)
      const got = await low.encode(texts, {normalize: true})
      got.forEach((v, i) => {
        const cos = v.reduce((s, x, k) => s + x * ref[i]![k]!, 0)
        assert.ok(cos > 0.999, `${dtype} cosine ${cos}`)
      })
      low.dispose()
    }
    enc.dispose()
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})

test('sharded checkpoints load like single files', async (t) => {
  const src = shared(t, 'fixtures', 'models', 'xlmr-tiny', 'model')
  if (!src) return
  await useTestBackend()
  const dir = copyModel(src)
  try {
    const single = await openSafetensors(join(dir, 'model.safetensors'))
    const infos = single.tensors()
    const half = Math.ceil(infos.length / 2)
    const weightMap: Record<string, string> = {}
    for (const [i, part] of [infos.slice(0, half), infos.slice(half)].entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`
      const tensors = []
      for (const info of part) {
        tensors.push({name: info.name, shape: info.shape, data: (await single.read(info.name)).data})
        weightMap[info.name] = file
      }
      await writeSafetensors(join(dir, file), tensors, {format: 'pt'})
    }
    await single.close()
    const reference = await loadEncoder(dir, {registry: BUILTINS})
    const texts = ['A man is playing a guitar.', 'Hi']
    const a = await reference.encode(texts)
    rmSync(join(dir, 'model.safetensors'))
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({metadata: {}, weight_map: weightMap}))
    const sharded = await loadEncoder(dir, {registry: BUILTINS})
    assert.deepEqual((await sharded.encode(texts)).map((v) => [...v]), a.map((v) => [...v]))
    reference.dispose()
    sharded.dispose()
  } finally {
    rmSync(join(dir, '..'), {recursive: true, force: true})
  }
})

test('bad checkpoints fail naming the file and the tensor', async (t) => {
  const src = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!src) return
  await useTestBackend()
  const dir = copyModel(src)
  try {
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
    writeFileSync(join(dir, 'config.json'), JSON.stringify({...config, model_type: 'gpt-neox'}))
    await assert.rejects(loadEncoder(dir, {registry: BUILTINS}), (e: unknown) => {
      assert.ok(e instanceof EncoderLoadError)
      assert.match(e.message, /config\.json: model_type "gpt-neox" has no registered encoder \(supported: bert, llama, minicpm, mistral, qwen2, qwen3, xlm-roberta, roberta\)/)
      return true
    })
    writeFileSync(join(dir, 'config.json'), JSON.stringify({...config, hidden_act: 'mish'}))
    await assert.rejects(loadEncoder(dir, {registry: BUILTINS}), /config\.json: hidden_act "mish" is not supported/)
    writeFileSync(join(dir, 'config.json'), JSON.stringify({...config, intermediate_size: 96}))
    await assert.rejects(
      loadEncoder(dir, {registry: BUILTINS}),
      /model\.safetensors: tensor "encoder\.layer\.0\.intermediate\.dense\.weight" has shape \[128, 64\], expected \[96, 64\] from .*config\.json/,
    )
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config))

    const st = await openSafetensors(join(src, 'model.safetensors'))
    const kept = []
    for (const info of st.tensors()) {
      if (info.name !== 'encoder.layer.1.attention.self.key.bias') kept.push({name: info.name, shape: info.shape, data: (await st.read(info.name)).data})
    }
    await st.close()
    await writeSafetensors(join(dir, 'model.safetensors'), kept, {format: 'pt'})
    await assert.rejects(loadEncoder(dir, {registry: BUILTINS}), /model\.safetensors: tensor "encoder\.layer\.1\.attention\.self\.key\.bias" is missing \(expected shape \[64\]/)

    const bytes = readFileSync(join(src, 'model.safetensors'))
    writeFileSync(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 100))
    await assert.rejects(loadEncoder(dir, {registry: BUILTINS}), /model\.safetensors: tensor "[^"]+": .*truncated/)
    writeFileSync(join(dir, 'model.safetensors'), bytes)

    rmSync(join(dir, 'tokenizer.json'))
    rmSync(join(dir, 'vocab.txt'))
    await assert.rejects(loadEncoder(dir, {registry: BUILTINS}), (e: unknown) => e instanceof TokenizerError && e.message.includes(dir) && /expected tokenizer\.json .* or vocab\.txt/.test(e.message))
    rmSync(join(dir, 'config.json'))
    await assert.rejects(loadEncoder(dir, {registry: BUILTINS}), /no config\.json/)
  } finally {
    rmSync(join(dir, '..'), {recursive: true, force: true})
  }
})

test('instruction prefixes are excluded from mean pooling unless the checkpoint includes prompts', async (t) => {
  const src = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!src) return
  await useTestBackend()
  const enc = await loadEncoder(src, {registry: BUILTINS})
  assert.equal(enc.includePrompt, false)
  const instruction = 'Instruction: retrieve passages. Query: '
  const texts = ['A man is playing a guitar.', 'Hi']
  const excluded = await enc.encode(texts, {instruction})
  // By hand: hidden states of prefix + text, averaged over the tokens after the instruction.
  const batch = await enc.tokenize(texts.map((x) => instruction + x))
  const manual = tf.tidy(() => {
    const h = enc.forward(batch).lastHiddenState.arraySync()
    const plain = texts.map((x) => x)
    return h.map((row, b) => {
      const n = batch.lengths[b]!
      // Tokens of the text alone plus [SEP]: the last (textTokens + 1) positions of the row.
      const alone = plain[b]!
      return {row, n, alone}
    })
  })
  const textLens = (await enc.tokenize(texts)).lengths
  manual.forEach(({row, n}, b) => {
    const from = n - (textLens[b]! - 1) // skip [CLS] + instruction tokens; keep text tokens and [SEP]
    const mean = new Array(64).fill(0)
    for (let tk = from; tk < n; tk++) for (let k = 0; k < 64; k++) mean[k] += row[tk]![k]! / (n - from)
    assert.ok(maxAbsDiff(excluded[b]!, mean) < 1e-5, `row ${b}`)
  })
  enc.includePrompt = true
  const included = await enc.encode(texts, {instruction})
  assert.ok(maxAbsDiff(included[0]!, excluded[0]!) > 1e-3)
  // CLS pooling is unaffected by the prompt mask.
  const clsA = await enc.encode(texts, {instruction, pooling: 'cls'})
  enc.includePrompt = false
  const clsB = await enc.encode(texts, {instruction, pooling: 'cls'})
  assert.deepEqual(clsA.map((v) => [...v]), clsB.map((v) => [...v]))
  enc.dispose()
})

test('last-token and weighted-mean pooling follow sentence-transformers', async (t) => {
  const src = shared(t, 'fixtures', 'models', 'xlmr-tiny')
  if (!src) return
  await useTestBackend()
  const expected = JSON.parse(readFileSync(join(src, 'expected.json'), 'utf8')) as HfExpected
  const enc = await loadEncoder(join(src, 'model'), {registry: BUILTINS})
  const batch = await enc.tokenize(expected.sentences)
  const last = await enc.encode(expected.sentences, {pooling: 'last-token', normalize: false})
  const weighted = await enc.encode(expected.sentences, {pooling: 'weighted-mean', normalize: false})
  expected.sentences.forEach((_, b) => {
    const n = batch.lengths[b]!
    const h = expected.last_hidden_state[b]!
    assert.ok(maxAbsDiff(last[b]!, h[n - 1]!) < TOL)
    const w = new Array(64).fill(0)
    const total = (n * (n + 1)) / 2
    for (let tk = 0; tk < n; tk++) for (let k = 0; k < 64; k++) w[k] += ((tk + 1) * h[tk]![k]!) / total
    assert.ok(maxAbsDiff(weighted[b]!, w) < TOL)
  })
  enc.dispose()
})

test('forward + pool under tf.variableGrads: finite gradients for every variable, no leaks', async (t) => {
  const tokDir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!tokDir) return
  await useTestBackend()
  const enc = await initRandomEncoder({registry: BUILTINS, arch: 'bert', tokenizerDir: tokDir, layers: 2, hidden: 32, heads: 4, intermediate: 64, seed: 7, maxPositions: 64})
  const batch = await enc.tokenize(['A man is playing a guitar.', '一架飞机正在起飞。', 'Hi'], {prefixes: ['', '', '']})
  const before = tf.memory().numTensors
  for (const training of [false, true]) {
    const {value, grads} = tf.variableGrads(() => {
      const {hiddenStates, lastHiddenState} = enc.forward(batch, {training, seed: 3})
      const a = enc.pool(lastHiddenState, batch, {normalize: true})
      const mid = enc.pool(hiddenStates[Math.floor((enc.numLayers + 1) / 2)]!, batch, {normalize: true, pooling: 'mean'})
      // A contrastive-style scalar touching every parameter (incl. token type embeddings via gather).
      return tf.add(tf.sum(tf.matMul(a, mid, false, true)), tf.mul(0.1, tf.sum(tf.square(a))))
    }, [...enc.variables.values()])
    assert.ok(Number.isFinite(value.dataSync()[0]!))
    const byId = new Map([...enc.variables].map(([name, v]) => [v.name, name]))
    assert.equal(Object.keys(grads).length, enc.variables.size)
    for (const [varName, g] of Object.entries(grads)) {
      const data = g.dataSync()
      assert.ok(data.every(Number.isFinite), `non-finite gradient for ${byId.get(varName)}`)
    }
    const wq = grads[enc.variables.get('encoder.layer.0.attention.self.query.weight')!.name]!
    assert.ok(tf.tidy(() => tf.max(tf.abs(wq)).dataSync()[0]!) > 0, 'query weights must receive gradient')
    value.dispose()
    tf.dispose(grads)
  }
  assert.equal(tf.memory().numTensors, before, 'variableGrads over forward + pool leaked tensors')
  enc.dispose()
})

test('initRandomEncoder: seeded, transformers-style init, saves and reloads', async (t) => {
  const tokDir = shared(t, 'fixtures', 'models', 'xlmr-tiny', 'model')
  if (!tokDir) return
  await useTestBackend()
  const opts = {registry: BUILTINS, arch: 'xlm-roberta', tokenizerDir: tokDir, layers: 1, hidden: 16, heads: 2, intermediate: 32, seed: 11, maxPositions: 32}
  const a = await initRandomEncoder(opts)
  const b = await initRandomEncoder(opts)
  assert.equal(a.fingerprint(), b.fingerprint())
  assert.equal(a.config.max_position_embeddings, 34) // 32 + padding_idx + 1
  assert.equal(a.maxLength, 32)
  const word = a.variables.get('embeddings.word_embeddings.weight')!
  assert.deepEqual(word.shape, [6000, 16])
  const padRow = tf.tidy(() => tf.slice(word, [1, 0], [1, 16]).dataSync())
  assert.ok([...padRow].every((x) => x === 0), 'the padding row starts at zero')
  assert.deepEqual([...a.variables.get('embeddings.LayerNorm.weight')!.dataSync()], new Array(16).fill(1))
  const out = tmp()
  try {
    await a.save(join(out, 'm'))
    assert.ok(existsSync(join(out, 'm', 'tokenizer.json')))
    const re = await loadEncoder(join(out, 'm'), {registry: BUILTINS})
    assert.equal(re.fingerprint(), a.fingerprint())
    assert.equal(re.normalize, true)
    assert.equal(re.pooling, 'mean')
    const texts = ['hello world', 'a much longer sentence with more words in it']
    assert.deepEqual((await re.encode(texts)).map((v) => [...v]), (await a.encode(texts)).map((v) => [...v]))
    re.dispose()
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
  a.dispose()
  b.dispose()
  await assert.rejects(initRandomEncoder({...opts, heads: 3}), /hidden_size 16 is not a multiple of num_attention_heads 3/)
  await assert.rejects(initRandomEncoder({...opts, arch: 'gpt-neox'}), /model_type "gpt-neox" has no registered encoder/)
})
