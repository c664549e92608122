/**
 * The tokenizer.json kinds of decoder embedders, built small here (no real one can be vendored): a
 * Qwen2-style byte-level BPE whose template appends <|endoftext|> (also the pad token, padding on the
 * left), and a Llama/MiniCPM-style SentencePiece BPE (▁ for spaces, byte fallback) whose template
 * prepends <s>. Special tokens come from the tokenizer's template alone: an instructed query built by
 * the prompt builder holds exactly one, and the instruction is left out of pooling by offsets.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {loadTokenizer} from '../../../src/model/tokenizer/tokenizer.js'
import {applyPrompt, fillTemplate} from '../../../src/core/prompts.js'

/** GPT-2's byte-to-unicode table: printable bytes stand for themselves, the rest map to 256 + n. */
function bytesToUnicode(): string[] {
  const out: string[] = []
  let n = 0
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)
    out.push(String.fromCodePoint(printable ? b : 256 + n++))
  }
  return out
}

const template = (single: unknown[], special: string, id: number) => ({
  type: 'TemplateProcessing',
  single,
  pair: [...single, {Sequence: {id: 'B', type_id: 1}}],
  special_tokens: {[special]: {id: special, ids: [id], tokens: [special]}},
})

const added = (content: string, id: number) => ({id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true})

function byteLevelBpe(): Record<string, unknown> {
  const chars = bytesToUnicode()
  const vocab: Record<string, number> = Object.fromEntries(chars.map((c, i) => [c, i]))
  const merges = [['Ġ', 't'], ['Ġt', 'h'], ['Ġth', 'e'], ['Q', 'u']]
  merges.forEach(([a, b], i) => (vocab[a! + b!] = 256 + i))
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [added('<|endoftext|>', 260)],
    normalizer: null,
    pre_tokenizer: {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true},
    post_processor: template([{Sequence: {id: 'A', type_id: 0}}, {SpecialToken: {id: '<|endoftext|>', type_id: 0}}], '<|endoftext|>', 260),
    decoder: {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true},
    model: {type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`)},
  }
}

function sentencePieceBpe(): Record<string, unknown> {
  const vocab: Record<string, number> = {'<unk>': 0, '<s>': 1, '</s>': 2}
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b
  const pieces = ['▁', ...'abcdefghijklmnopqrstuvwxyzIQ:'.split(''), '▁t', '▁th', '▁the']
  pieces.forEach((p) => (vocab[p] ??= Object.keys(vocab).length))
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [added('<unk>', 0), added('<s>', 1), added('</s>', 2)],
    normalizer: {type: 'Sequence', normalizers: [{type: 'Prepend', prepend: '▁'}, {type: 'Replace', pattern: {String: ' '}, content: '▁'}]},
    pre_tokenizer: null,
    post_processor: template([{SpecialToken: {id: '<s>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}}], '<s>', 1),
    decoder: null,
    model: {type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges: ['▁ t', '▁t h', '▁th e']},
  }
}

const CASES = [
  {name: 'byte-level BPE (Qwen2/Qwen3 style)', json: byteLevelBpe(), config: {pad_token: '<|endoftext|>', padding_side: 'left'}, special: '<|endoftext|>', at: 'end', template: 'Instruct: {task}\nQuery:{query}'},
  {name: 'SentencePiece BPE (Llama/MiniCPM style)', json: sentencePieceBpe(), config: {pad_token: '<unk>', padding_side: 'right'}, special: '<s>', at: 'start', template: 'Instruction: {task} Query: '},
] as const

for (const c of CASES) {
  test(`${c.name}: the template adds exactly one ${c.special}; padding side and prompt masking follow the tokenizer`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-dectok-'))
    try {
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(c.json))
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(c.config))
      const tok = await loadTokenizer(dir)
      assert.equal(tok.paddingSide, c.config.padding_side)
      const specialId = tok.tokenToId(c.special)!
      assert.equal(tok.padId, tok.tokenToId(c.config.pad_token))
      const prompt = fillTemplate(c.template, 'find the answer')
      const query = applyPrompt(prompt, 'the quiz 答')
      const batch = await tok.encodeBatch([query.input, 'the'], {maxLength: 512, prefixLengths: [query.prefix.length, 0]})
      const T = batch.seqLen
      const row0 = [...batch.inputIds.subarray(0, T)]
      const mask0 = [...batch.attentionMask.subarray(0, T)]
      const real = row0.filter((_, t) => mask0[t])
      assert.equal(real.filter((id) => id === specialId).length, 1, `one ${c.special} in ${JSON.stringify(real)}`)
      assert.equal(c.at === 'end' ? real[real.length - 1] : real[0], specialId)
      // The short row is padded on the tokenizer's side.
      const mask1 = [...batch.attentionMask.subarray(T, 2 * T)]
      assert.equal(c.config.padding_side === 'left' ? mask1[0] : mask1[T - 1], 0)
      assert.equal(c.config.padding_side === 'left' ? mask1[T - 1] : mask1[0], 1)
      // Pooled: the text's tokens and the trailing special token, never the instruction's.
      const pooled: number[] = []
      for (let t = 0; t < T; t++) if (batch.poolMask[t]) pooled.push(batch.offsets[t * 2]!)
      const firstTextToken = [...batch.offsets.subarray(0, 2 * T)].findIndex((o, i) => i % 2 === 1 && o > query.prefix.length)
      assert.ok(pooled.length > 0 && pooled.length < real.length - 1, `pooled ${pooled.length} of ${real.length}`)
      for (let t = 0; t < T; t++) {
        if (!batch.poolMask[t] && mask0[t] && !batch.specialTokensMask[t]) assert.ok(batch.offsets[t * 2 + 1]! <= query.prefix.length, `token ${t} of the text is not pooled`)
      }
      assert.ok(firstTextToken > 0)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
}
