/**
 * The prompt builder (src/core/prompts.ts): its template syntax, and parity — the same example gives
 * the same model input, token ids and pooling mask in training (train/data.ts batchTexts, tokenized
 * as the trainer does) and in evaluation (eval/evaluate.ts queryPrompt + encodeTexts through the
 * encoder's encode()).
 */
import {describe, it, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {
  applyPrompt,
  codePointLength,
  describePrompt,
  fillTemplate,
  INSTRUCTION_TEMPLATE,
  literalPrompt,
  NO_PROMPT,
  PromptTemplateError,
} from '../../src/core/prompts.js'
import {CodiembError, exitCodeOf} from '../../src/core/errors.js'
import {batchTexts, type IrTrainingDataset, type StsTrainingDataset} from '../../src/train/data.js'
import {Rng} from '../../src/core/rng.js'
import {encodeTexts, queryPrompt} from '../../src/eval/evaluate.js'
import {EmbeddingStore} from '../../src/eval/embedding-cache.js'
import {initRandomEncoder, loadEncoder, type Encoder, type TokenBatch} from '../../src/model/encoder.js'
import {BUILTINS, shared, useTestBackend} from '../helpers/env.js'

describe('fillTemplate + applyPrompt', () => {
  it('put the text after the template when it has no text placeholder (the paper template)', () => {
    const p = fillTemplate(INSTRUCTION_TEMPLATE, '检索相似句子')
    assert.deepEqual(p, {prefix: 'Instruction: 检索相似句子 Query: ', suffix: ''})
    assert.deepEqual(applyPrompt(p, '一个人'), {input: 'Instruction: 检索相似句子 Query: 一个人', prefix: p.prefix, prefixLength: 27})
  })

  it('place the text at {text} / {query} and the instruction at {instruction} / {task}', () => {
    assert.deepEqual(fillTemplate('Instruct: {task}\nQuery:{query}', 'find docs'), {prefix: 'Instruct: find docs\nQuery:', suffix: ''})
    assert.deepEqual(fillTemplate('Instruction: {task} Query: {query}', 'x'), fillTemplate(INSTRUCTION_TEMPLATE, 'x'))
    assert.deepEqual(fillTemplate('<{instruction}> {text} </{task}>', 'i'), {prefix: '<i> ', suffix: ' </i>'})
    // bge-zh's query prompt has no instruction placeholder: a fixed prefix for texts that have an instruction
    const bge = '为这个句子生成表示以用于检索相关文章：{query}'
    assert.deepEqual(applyPrompt(fillTemplate(bge, 'any'), '天气'), {input: '为这个句子生成表示以用于检索相关文章：天气', prefix: '为这个句子生成表示以用于检索相关文章：', prefixLength: 19})
  })

  it('give no template to a text without an instruction', () => {
    assert.equal(fillTemplate(INSTRUCTION_TEMPLATE, ''), NO_PROMPT)
    assert.equal(fillTemplate('Instruct: {task}\nQuery:{query}', undefined), NO_PROMPT)
    assert.deepEqual(applyPrompt(NO_PROMPT, 'plain'), {input: 'plain', prefix: '', prefixLength: 0})
  })

  it('insert the instruction verbatim at every placeholder: no $ patterns, no rescanning', () => {
    for (const instruction of ['$&', '$1', '$$', "$'", '$`', '$<name>', 'a $& b $$ c']) {
      assert.deepEqual(fillTemplate(INSTRUCTION_TEMPLATE, instruction), {prefix: `Instruction: ${instruction} Query: `, suffix: ''}, instruction)
    }
    assert.deepEqual(fillTemplate('{instruction}|{task}|{instruction} Q: ', '$&'), {prefix: '$&|$&|$& Q: ', suffix: ''})
    // placeholders inside the instruction or the text are text, not template
    assert.deepEqual(fillTemplate('{instruction}: {text}!', 'about {text} and {instruction}'), {prefix: 'about {text} and {instruction}: ', suffix: '!'})
    assert.equal(applyPrompt(fillTemplate('{instruction}: ', 'i'), '{query} $&').input, 'i: {query} $&')
    // other braces are literal
    assert.deepEqual(fillTemplate('{{instruction}} {other} ', 'i'), {prefix: '{i} {other} ', suffix: ''})
  })

  it('refuse a template that places the text twice, with or without an instruction (exit code 2)', () => {
    for (const template of ['{text} and {text}', '{query}{text}']) {
      for (const instruction of ['i', '']) {
        assert.throws(
          () => fillTemplate(template, instruction),
          (e: unknown) => e instanceof PromptTemplateError && e instanceof CodiembError && exitCodeOf(e) === 2 && /places the text more than once/.test((e as Error).message),
        )
      }
    }
  })

  it('count the prefix in code points, the unit of token offsets', () => {
    const p = applyPrompt(fillTemplate('😀 {instruction} ', 'é'), 'x')
    assert.equal(p.prefix, '😀 é ')
    assert.equal(p.prefixLength, 4)
    assert.equal(p.prefixLength, codePointLength(p.prefix))
  })

  it('take literal prefixes as they are, and describe prompts for reports', () => {
    assert.deepEqual(literalPrompt('Find {text}: '), {prefix: 'Find {text}: ', suffix: ''})
    assert.equal(literalPrompt(''), NO_PROMPT)
    assert.equal(describePrompt(fillTemplate(INSTRUCTION_TEMPLATE, 'i')), 'Instruction: i Query: ')
    assert.equal(describePrompt(fillTemplate('<{task}> {query} </s>', 'i')), '<i> {text} </s>')
    assert.equal(describePrompt(NO_PROMPT), '')
  })
})

/** Template, instruction and texts of one parity case. */
interface Case {
  label: string
  template: string
  instruction: string
  query: string
  text1: string
  text2: string
}

const CASES: Case[] = [
  {label: 'paper template', template: INSTRUCTION_TEMPLATE, instruction: 'Retrieve passages that answer the question', query: 'what is a comet?', text1: 'A man plays a guitar.', text2: 'Someone is playing music.'},
  {label: 'String.replace patterns in the instruction', template: INSTRUCTION_TEMPLATE, instruction: "find $& and $1, then $$ or $' or $`", query: 'cost of $5 apples', text1: 'it costs $&', text2: 'price $1'},
  {label: 'repeated placeholders', template: '{instruction} :: {task} :: {instruction} Query: ', instruction: 'rank by relevance $$', query: 'river delta', text1: 'a river', text2: 'the delta'},
  {label: 'Qwen3 / e5-instruct template', template: 'Instruct: {task}\nQuery:{query}', instruction: 'Given a web search query, retrieve relevant passages', query: 'how do engines work', text1: 'engines burn fuel', text2: 'motors run on fuel'},
  {label: 'bge-zh prompt', template: '为这个句子生成表示以用于检索相关文章：{query}', instruction: 'unused', query: '一架飞机正在起飞。', text1: '一个男人在弹吉他。', text2: '有人在演奏音乐。'},
  {label: 'text after the placeholder', template: 'This sentence for {instruction}: "{text}" means in one word:', instruction: 'retrieval $1', query: 'violet candle', text1: 'green garden', text2: 'a garden that is green'},
  {label: 'placeholders inside the instruction', template: INSTRUCTION_TEMPLATE, instruction: 'about {text} and {instruction}', query: 'ladder', text1: 'pepper', text2: 'harbor'},
  {label: 'no instruction', template: 'Instruct: {task}\nQuery:{query}', instruction: '', query: 'no prompt here', text1: 'left', text2: 'right'},
]

/** The training side: batchTexts over one IR row and one STS row with this case's template. */
async function trainingInputs(c: Case): Promise<{query: string; queryPrefix: string; texts: [string, string]; prefixes: [string, string]}> {
  const ir: IrTrainingDataset = {
    task: 'ir',
    name: 'ir',
    path: '(memory)',
    dropped: 0,
    rows: [{id: 'q', query: c.query, instruction: c.instruction, positives: ['p'], negatives: ['n'], positive_scores: null, negative_scores: null}],
  }
  const sts: StsTrainingDataset = {task: 'sts', name: 'sts', path: '(memory)', dropped: 0, rows: [{id: 's', text1: c.text1, text2: c.text2, score: 0.5, raw_score: 2.5, instruction: c.instruction}]}
  const options = {template: c.template, queries: true, sts: true}
  const irTexts = await batchTexts([ir, sts], {dataset: 0, rows: [0]}, {positives: 1, negatives: 1}, options, new Rng(1))
  const stsTexts = await batchTexts([ir, sts], {dataset: 1, rows: [0]}, {positives: 1, negatives: 1}, options, new Rng(1))
  assert.ok(irTexts.task === 'ir' && stsTexts.task === 'sts')
  return {query: irTexts.queries[0]!, queryPrefix: irTexts.queryPrefixes[0]!, texts: [stsTexts.texts1[0]!, stsTexts.texts2[0]!], prefixes: [stsTexts.prefixes1[0]!, stsTexts.prefixes2[0]!]}
}

interface Tokenized {
  texts: string[]
  prefixes: string[]
  batch: TokenBatch
}

/** The evaluation side: what encode() hands the tokenizer when encodeTexts embeds `texts` for a task with this instruction. */
async function evaluationInputs(encoder: Encoder, c: Case, texts: string[], type: 'retrieval' | 'sts', maxLength: number): Promise<Tokenized[]> {
  const seen: Tokenized[] = []
  const tokenize = encoder.tokenize
  encoder.tokenize = async (inputs, options = {}) => {
    const batch = await tokenize.call(encoder, inputs, options)
    seen.push({texts: inputs, prefixes: inputs.map((_, i) => options.prefixes?.[i] ?? ''), batch})
    return batch
  }
  try {
    const prompt = queryPrompt(encoder, c.instruction, {instructionTemplate: c.template}, type)
    await encodeTexts(encoder, texts, {task: c.label, split: 'test', role: type, prompt}, {store: new EmbeddingStore(), maxLength, batchSize: 1})
  } finally {
    encoder.tokenize = tokenize
  }
  return seen
}

function row(batch: TokenBatch, values: ArrayLike<number>): number[] {
  return Array.from(values).slice(0, batch.lengths[0])
}

/** Asserts byte-identical model inputs and prefixes, then identical token ids and pooling masks. */
async function assertParity(encoder: Encoder, maxLength: number): Promise<void> {
  for (const c of CASES) {
    const train = await trainingInputs(c)
    const pairs: {type: 'retrieval' | 'sts'; raw: string; input: string; prefix: string}[] = [
      {type: 'retrieval', raw: c.query, input: train.query, prefix: train.queryPrefix},
      {type: 'sts', raw: c.text1, input: train.texts[0], prefix: train.prefixes[0]},
      {type: 'sts', raw: c.text2, input: train.texts[1], prefix: train.prefixes[1]},
    ]
    for (const p of pairs) {
      const [evaluated] = await evaluationInputs(encoder, c, [p.raw], p.type, maxLength)
      assert.ok(evaluated, `${c.label}: encode() tokenized nothing`)
      assert.equal(Buffer.compare(Buffer.from(evaluated.texts[0]!), Buffer.from(p.input)), 0, `${c.label} (${p.type}): model input ${JSON.stringify(evaluated.texts[0])} vs training ${JSON.stringify(p.input)}`)
      assert.equal(evaluated.prefixes[0], p.prefix, `${c.label} (${p.type}): pooled-out prefix`)
      // the trainer tokenizes a batch part's texts with their prefixes (train/trainer.ts tokenizeRows)
      const trained = await encoder.tokenize([p.input], {maxLength, prefixes: [p.prefix]})
      assert.deepEqual(row(evaluated.batch, evaluated.batch.inputIds), row(trained, trained.inputIds), `${c.label} (${p.type}): token ids`)
      assert.deepEqual(row(evaluated.batch, evaluated.batch.poolMask), row(trained, trained.poolMask), `${c.label} (${p.type}): pool mask`)
    }
  }
}

/** The tokens of row 0 whose characters start at or after `from` (code points), excluding special tokens. */
function tokensFrom(batch: TokenBatch, from: number): number[] {
  const out: number[] = []
  for (let t = 0; t < batch.lengths[0]!; t++) if (!batch.specialTokensMask[t] && batch.offsets[t * 2]! >= from) out.push(t)
  return out
}

/** A tokenizer directory with a small WordPiece vocabulary (lower-case letters, digits, punctuation). */
function toyTokenizerDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-prompts-'))
  const chars = [...'abcdefghijklmnopqrstuvwxyz0123456789', ...'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~']
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...chars, ...[...'abcdefghijklmnopqrstuvwxyz0123456789'].map((ch) => `##${ch}`)]
  writeFileSync(join(dir, 'vocab.txt'), vocab.join('\n') + '\n')
  return dir
}

test('training and evaluation build identical model inputs, token ids and pool masks (toy WordPiece encoder)', async () => {
  await useTestBackend()
  const dir = toyTokenizerDir()
  const encoder = await initRandomEncoder({registry: BUILTINS, arch: 'bert', tokenizerDir: dir, layers: 1, hidden: 8, heads: 2, intermediate: 16, seed: 3, maxPositions: 160})
  try {
    await assertParity(encoder, 160)
  } finally {
    encoder.dispose()
    rmSync(dir, {recursive: true, force: true})
  }
})

test('bert-tiny: training and evaluation give identical token ids and pool masks; a suffix is pooled, the prefix is not', async (t) => {
  const dir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!dir) return
  await useTestBackend()
  const encoder = await loadEncoder(dir, {registry: BUILTINS})
  try {
    assert.equal(encoder.includePrompt, false)
    await assertParity(encoder, 128)
    const c = CASES.find((x) => x.label === 'text after the placeholder')!
    const prompted = applyPrompt(fillTemplate(c.template, c.instruction), c.query)
    const batch = await encoder.tokenize([prompted.input], {maxLength: 128, prefixes: [prompted.prefix]})
    const inText = new Set(tokensFrom(batch, prompted.prefixLength))
    for (let tk = 0; tk < batch.lengths[0]!; tk++) {
      const pooled = batch.poolMask[tk] === 1
      if (batch.specialTokensMask[tk]) assert.equal(pooled, tk > 0, `special token ${tk}: [CLS] is left out, [SEP] pooled`)
      else assert.equal(pooled, inText.has(tk), `token ${tk} at ${batch.offsets[tk * 2]}: pooled only from the text on (suffix included)`)
    }
    const suffixStart = prompted.prefixLength + codePointLength(c.query)
    assert.ok(tokensFrom(batch, suffixStart).length > 0 && tokensFrom(batch, suffixStart).every((tk) => batch.poolMask[tk] === 1), 'the suffix tokens are pooled')
  } finally {
    encoder.dispose()
  }
})
