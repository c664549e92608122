/**
 * The decoder fixtures of ../shared/fixtures/models (qwen3-tiny, minicpm-tiny) made loadable: they ship
 * token ids, not a tokenizer, so each test copies the model and writes a WordLevel tokenizer.json
 * whose vocabulary names id i "t<i>" (special ids by their real names) with the model's special-token
 * template: Qwen3-Embedding appends <|endoftext|> (also the pad token), MiniCPM-Embedding prepends <s>.
 * The text "t5 t7" then tokenizes to exactly the fixture's ids.
 */
import {cpSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export interface DecoderExpected {
  model_type: string
  sequences: number[][]
  embeddings: number[][]
  pooling: string
  special_tokens: {pad_token_id: number; bos_token_id: number | null; appended_end_token_id: number | null; special_ids: Record<string, number>}
  batches: Record<'left' | 'right', {input_ids: number[][]; attention_mask: number[][]; hidden_states: (number[] | null)[][][]; pooled: number[][]; embeddings: number[][]}>
}

export const DECODER_FIXTURES = ['qwen3-tiny', 'minicpm-tiny'] as const

export function readExpected(fixtureDir: string): DecoderExpected {
  return JSON.parse(readFileSync(join(fixtureDir, 'expected.json'), 'utf8')) as DecoderExpected
}

/** The special tokens the tokenizer's template adds: [prepended, appended] token names. */
function template(expected: DecoderExpected): {prefix: string[]; suffix: string[]} {
  const name = (id: number | null) => Object.entries(expected.special_tokens.special_ids).find(([, v]) => v === id)?.[0]
  const bos = name(expected.special_tokens.bos_token_id)
  const eos = name(expected.special_tokens.appended_end_token_id)
  return {prefix: bos ? [bos] : [], suffix: eos ? [eos] : []}
}

/** The text that the fixture tokenizer turns into `ids` (the template's special tokens left out). */
export function textFor(expected: DecoderExpected, ids: number[]): string {
  const {prefix, suffix} = template(expected)
  return ids.slice(prefix.length, ids.length - suffix.length).map((id) => `t${id}`).join(' ')
}

/** A WordLevel tokenizer.json for a fixture (see the module docstring). */
export function fixtureTokenizerJson(expected: DecoderExpected, vocabSize: number): Record<string, unknown> {
  const specials = expected.special_tokens.special_ids
  const byId = new Map(Object.entries(specials).map(([token, id]) => [id, token]))
  const vocab: Record<string, number> = {}
  for (let i = 0; i < vocabSize; i++) vocab[byId.get(i) ?? `t${i}`] = i
  const {prefix, suffix} = template(expected)
  const piece = (t: string) => ({SpecialToken: {id: t, type_id: 0}})
  const single = [...prefix.map(piece), {Sequence: {id: 'A', type_id: 0}}, ...suffix.map(piece)]
  const pair = [...single, {Sequence: {id: 'B', type_id: 1}}, ...suffix.map(piece)]
  const special_tokens = Object.fromEntries([...prefix, ...suffix].map((t) => [t, {id: t, ids: [specials[t]], tokens: [t]}]))
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: Object.entries(specials).map(([content, id]) => ({id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true})),
    normalizer: null,
    pre_tokenizer: {type: 'WhitespaceSplit'},
    post_processor: {type: 'TemplateProcessing', single, pair, special_tokens},
    decoder: null,
    // An unknown word must not become a special token (Qwen's pad token is its end-of-text token).
    model: {type: 'WordLevel', vocab, unk_token: '<unk>' in specials ? '<unk>' : 't0'},
  }
}

/** Copies the fixture's model into a temporary directory with a tokenizer (padding on `side`); returns the model directory. */
export function loadableFixture(fixtureDir: string, side: 'left' | 'right'): string {
  const expected = readExpected(fixtureDir)
  const dir = join(mkdtempSync(join(tmpdir(), 'codiemb-dec-')), 'model')
  cpSync(join(fixtureDir, 'model'), dir, {recursive: true})
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {vocab_size: number}
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(fixtureTokenizerJson(expected, config.vocab_size)))
  const pad = Object.entries(expected.special_tokens.special_ids).find(([, id]) => id === expected.special_tokens.pad_token_id)![0]
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({padding_side: side, pad_token: pad, model_max_length: 512}))
  return dir
}
