import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {buildBatch, codePointLength, loadTokenizer, TokenizerError, type TokenBatch} from '../../../src/model/tokenizer/tokenizer.js'
import {shared} from '../../helpers/env.js'

interface Expected {
  sentences: string[]
  input_ids: number[][]
  attention_mask: number[][]
  token_type_ids: number[][]
  offsets: number[][][]
}

function rows(batch: TokenBatch, arr: Int32Array): number[][] {
  return Array.from({length: batch.batchSize}, (_, b) => [...arr.subarray(b * batch.seqLen, (b + 1) * batch.seqLen)])
}

function offsetRows(batch: TokenBatch): number[][][] {
  return Array.from({length: batch.batchSize}, (_, b) =>
    Array.from({length: batch.seqLen}, (_, t) => [batch.offsets[(b * batch.seqLen + t) * 2]!, batch.offsets[(b * batch.seqLen + t) * 2 + 1]!]),
  )
}

for (const name of ['bert-tiny', 'xlmr-tiny']) {
  test(`${name}: tokenizer.json reproduces ids, masks, type ids and offsets exactly`, async (t) => {
    const dir = shared(t, 'fixtures', 'models', name)
    if (!dir) return
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected
    const tok = await loadTokenizer(join(dir, 'model'))
    assert.equal(tok.source, 'tokenizer.json')
    const batch = await tok.encodeBatch(expected.sentences, {maxLength: 128})
    assert.deepEqual(rows(batch, batch.inputIds), expected.input_ids)
    assert.deepEqual(rows(batch, batch.attentionMask), expected.attention_mask)
    assert.deepEqual(rows(batch, batch.tokenTypeIds), expected.token_type_ids)
    assert.deepEqual(offsetRows(batch), expected.offsets)
    assert.deepEqual(batch.lengths, expected.attention_mask.map((m) => m.reduce((a, b) => a + b, 0)))
  })
}

test('bert-tiny: the vocab.txt WordPiece fallback matches tokenizer.json (ids and offsets)', async (t) => {
  const src = shared(t, 'fixtures', 'models', 'bert-tiny')
  if (!src) return
  const expected = JSON.parse(readFileSync(join(src, 'expected.json'), 'utf8')) as Expected
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-tok-'))
  try {
    copyFileSync(join(src, 'model', 'vocab.txt'), join(dir, 'vocab.txt'))
    copyFileSync(join(src, 'model', 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'))
    const fallback = await loadTokenizer(dir)
    assert.equal(fallback.source, 'vocab.txt')
    const batch = await fallback.encodeBatch(expected.sentences, {maxLength: 128})
    assert.deepEqual(rows(batch, batch.inputIds), expected.input_ids)
    assert.deepEqual(rows(batch, batch.attentionMask), expected.attention_mask)
    assert.deepEqual(offsetRows(batch), expected.offsets)
    // Harder text: accents, emoji, control characters, punctuation runs, special tokens, truncation.
    const reference = await loadTokenizer(join(src, 'model'))
    const texts = ['Héllo, WORLD!! naïve café', '😀😀 emoji\u0007 and\ttabs', 'a [MASK] b', '中文和English混合。', '', 'x '.repeat(300)]
    for (const maxLength of [8, 512]) {
      const a = await fallback.encodeBatch(texts, {maxLength})
      const b = await reference.encodeBatch(texts, {maxLength})
      assert.deepEqual(rows(a, a.inputIds), rows(b, b.inputIds), `ids at maxLength ${maxLength}`)
      assert.deepEqual(offsetRows(a), offsetRows(b), `offsets at maxLength ${maxLength}`)
      assert.deepEqual([...a.specialTokensMask], [...b.specialTokensMask])
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('truncation keeps special tokens and padding goes to the longest row', async (t) => {
  const dir = shared(t, 'fixtures', 'models', 'xlmr-tiny', 'model')
  if (!dir) return
  const tok = await loadTokenizer(dir)
  const batch = await tok.encodeBatch(['one two three four five six seven eight', 'hi'], {maxLength: 5})
  const hi = (await tok.encodeBatch(['hi'], {maxLength: 5})).lengths[0]!
  assert.ok(hi < 5)
  assert.equal(batch.seqLen, 5)
  assert.deepEqual(batch.lengths, [5, hi])
  assert.equal(batch.inputIds[4], 2) // </s> kept at the end of the truncated row
  assert.deepEqual([...batch.attentionMask.subarray(5)], [1, 1, 1, 1, 1].map((_, i) => (i < hi ? 1 : 0)))
  assert.deepEqual([...batch.inputIds.subarray(5 + hi)], new Array(5 - hi).fill(tok.padId))
  assert.equal(tok.padId, 1)
})

test('instruction prefixes are excluded from the pooling mask by offsets', async (t) => {
  const dir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!dir) return
  const tok = await loadTokenizer(dir)
  const prefix = 'Instruction: find it. Query: '
  const texts = [prefix + 'a man', 'a man', prefix]
  const batch = await tok.encodeBatch(texts, {maxLength: 64, prefixLengths: [codePointLength(prefix), 0, codePointLength(prefix)]})
  const plain = await tok.encodeBatch(['a man'], {maxLength: 64})
  const T = batch.seqLen
  const pooledIds = (b: number) => [...batch.inputIds.subarray(b * T, (b + 1) * T)].filter((_, i) => batch.poolMask[b * T + i] === 1)
  // Row 0 pools exactly the tokens of "a man" plus the trailing [SEP] (no [CLS], no instruction tokens).
  assert.deepEqual(pooledIds(0), [...plain.inputIds].slice(1))
  // Row 1 has no prefix: every attended token is pooled.
  assert.deepEqual([...batch.poolMask.subarray(T, 2 * T)], [...batch.attentionMask.subarray(T, 2 * T)].map(Number))
  // Only the prefix: just [SEP] remains.
  assert.deepEqual(pooledIds(2), [3])
})

test('buildBatch: a prefix merged into the first text token keeps that token; [CLS] is still dropped', () => {
  const b = buildBatch(
    [{ids: [2, 10, 11, 3], typeIds: [0, 0, 0, 0], offsets: [[0, 0], [0, 6], [6, 9], [0, 0]], special: [1, 0, 0, 1]}],
    0,
    [4],
  )
  assert.deepEqual([...b.poolMask], [0, 1, 1, 1])
  assert.equal(codePointLength('a😀b'), 3)
})

test('a directory without tokenizer files fails naming the directory and what was expected', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-tok-'))
  try {
    await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof TokenizerError && e.message.includes(dir) && e.message.includes('tokenizer.json'))
    writeFileSync(join(dir, 'vocab.txt'), 'a\nb\n')
    await assert.rejects(loadTokenizer(dir), /\[CLS\] \(cls_token\) is not in the vocabulary/)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

/** A temporary directory with bert-tiny's tokenizer files, removed after the test. */
function bertTinyTokenizerCopy(t: import('node:test').TestContext): string | undefined {
  const src = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!src) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-tok-'))
  t.after(() => rmSync(dir, {recursive: true, force: true}))
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt']) copyFileSync(join(src, f), join(dir, f))
  return dir
}

test('a tokenizer.json that does not load fails naming it, never falling back to the vocab.txt beside it', async (t) => {
  const dir = bertTinyTokenizerCopy(t)
  if (!dir) return
  const good = readFileSync(join(dir, 'tokenizer.json'), 'utf8')
  const fails = async (pattern: RegExp) =>
    assert.rejects(loadTokenizer(dir), (e: unknown) => {
      assert.ok(e instanceof TokenizerError, String(e))
      assert.equal(e.exitCode, 2)
      assert.ok(e.message.startsWith(join(dir, 'tokenizer.json') + ': '), e.message)
      assert.match(e.message, pattern)
      assert.match(e.message, /\(vocab\.txt beside it is not used instead: the two may tokenize differently\)$/)
      return true
    })
  writeFileSync(join(dir, 'tokenizer.json'), good.slice(0, 3000))
  await fails(/: not valid JSON \(/)
  writeFileSync(join(dir, 'tokenizer.json'), '[1, 2]')
  await fails(/: expected a JSON object \(a Hugging Face tokenizer\), got an array/)
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({...JSON.parse(good), model: {type: 'NoSuchModel'}}))
  await fails(/: not a tokenizer the tokenizers library can load: data did not match any variant/)
  // Without vocab.txt the message does not mention it.
  rmSync(join(dir, 'vocab.txt'))
  await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof TokenizerError && !e.message.includes('vocab.txt'))
})

test('tokenizer_config.json and the JSON tokenizer files save copies must parse as objects', async (t) => {
  const dir = bertTinyTokenizerCopy(t)
  if (!dir) return
  writeFileSync(join(dir, 'special_tokens_map.json'), '{"cls_token": "[CLS]",')
  await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof TokenizerError && new RegExp(`^${join(dir, 'special_tokens_map.json')}: not valid JSON \\(`).test(e.message))
  writeFileSync(join(dir, 'special_tokens_map.json'), '{"cls_token": "[CLS]"}')
  writeFileSync(join(dir, 'added_tokens.json'), 'null')
  await assert.rejects(loadTokenizer(dir), /added_tokens\.json: expected a JSON object, got null/)
  rmSync(join(dir, 'added_tokens.json'))
  writeFileSync(join(dir, 'tokenizer_config.json'), '["do_lower_case"]')
  await assert.rejects(loadTokenizer(dir), /tokenizer_config\.json: expected a JSON object, got an array/)
})

test('a vocab.txt that is not UTF-8 fails naming the file and the line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-tok-'))
  t.after(() => rmSync(dir, {recursive: true, force: true}))
  writeFileSync(join(dir, 'vocab.txt'), Buffer.concat([Buffer.from('[PAD]\n[UNK]\n'), Buffer.from([0x61, 0xff, 0xfe, 0x0a]), Buffer.from('[CLS]\n[SEP]\n')]))
  await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof TokenizerError && e.message === `${join(dir, 'vocab.txt')}: line 3 is not valid UTF-8: expected a text file with one token per line`)
})

test('highestId: the vocabulary, added tokens and the ids a post-processor inserts; repeated vocab.txt lines keep their first id', async (t) => {
  const dir = bertTinyTokenizerCopy(t)
  if (!dir) return
  const lines = readFileSync(join(dir, 'vocab.txt'), 'utf8').split('\n').filter(Boolean)
  const fromJson = await loadTokenizer(dir)
  assert.deepEqual(fromJson.highestId, {id: lines.length - 1, token: lines.at(-1)})
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'))
  // The tokenizers library numbers an added token outside the vocabulary after it, whatever id the file gives.
  json.added_tokens.push({id: 9100, content: '[NEW]', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true})
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json))
  const added = await loadTokenizer(dir)
  assert.deepEqual(added.highestId, {id: lines.length, token: '[NEW]'})
  assert.ok([...(await added.encodeBatch(['a [NEW] b'], {maxLength: 16})).inputIds].includes(lines.length))
  json.post_processor.special_tokens['[SEP]'].ids = [9000]
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json))
  assert.deepEqual((await loadTokenizer(dir)).highestId, {id: 9000, token: '[SEP]'})

  rmSync(join(dir, 'tokenizer.json'))
  writeFileSync(join(dir, 'vocab.txt'), [...lines, lines[5]].join('\n') + '\n')
  const fromVocab = await loadTokenizer(dir)
  assert.equal(fromVocab.source, 'vocab.txt')
  assert.deepEqual(fromVocab.highestId, {id: lines.length - 1, token: lines.at(-1)})
})
