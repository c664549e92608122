/**
 * Text tokenization for encoders. A checkpoint's `tokenizer.json` runs through the `tokenizers` npm
 * package (Hugging Face's Rust implementation: WordPiece, Unigram/SentencePiece and BPE models with
 * their normalisers, pre-tokenisers and post-processors, and character offsets); a checkpoint with only
 * a `vocab.txt` uses the BERT WordPiece fallback in wordpiece.ts, configured from tokenizer_config.json.
 *
 * Batches are truncated to a maximum length (special tokens included), padded on the right to the
 * longest row, and carry attention masks, token type ids and character offsets. Offsets count Unicode
 * code points, as the Rust tokenizers and Python report them.
 *
 * Pooling mask: when a text starts with an instruction prefix (`prefixLengths[i]` code points), the
 * leading tokens that lie inside the prefix (those whose end offset is not past it) and the leading
 * special tokens before them are excluded from pooling; every later non-padding token, including a
 * trailing [SEP]/</s>, is pooled. This is what sentence-transformers does with `include_prompt: false`
 * (it masks the first prompt-length tokens), located by offsets so it is exact at the boundary.
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {WordPieceTokenizer, type WordPieceOptions} from './wordpiece.js'
import type {WordPieceWorker} from './wordpiece-thread.js'

/** A tokenized batch, row-major, every array [batchSize * seqLen] (offsets [batchSize * seqLen * 2]). */
export interface TokenBatch {
  batchSize: number
  seqLen: number
  inputIds: Int32Array
  attentionMask: Int32Array
  tokenTypeIds: Int32Array
  /** [start, end) code point offsets into each text; [0, 0] for special and padding tokens. */
  offsets: Int32Array
  /** 1 for special tokens ([CLS], [SEP], <s>, ...), 0 otherwise (padding counts as 0). */
  specialTokensMask: Uint8Array
  /** Number of non-padding tokens in each row. */
  lengths: number[]
  /** 1 where a token takes part in pooling (attended and past the instruction prefix), else 0. */
  poolMask: Float32Array
  /** Instruction prefix length (code points) per row, 0 when none. */
  prefixLengths: number[]
}

export interface TokenizeOptions {
  /** Truncate each row to at most this many tokens, special tokens included. */
  maxLength: number
  /** Per text, the length in code points of an instruction prefix already prepended to it. */
  prefixLengths?: number[]
}

export interface TextTokenizer {
  readonly source: 'tokenizer.json' | 'vocab.txt'
  readonly padId: number
  readonly vocabSize: number
  encodeBatch(texts: string[], options: TokenizeOptions): Promise<TokenBatch>
  tokenToId(token: string): number | undefined
  /**
   * Moves tokenization off the calling thread until the returned stop function is called (present
   * only where tokenization would otherwise block the caller: the vocab.txt WordPiece path; the
   * tokenizer.json path already runs on the native tokenizers' own thread).
   */
  startWorker?(): Promise<() => Promise<void>>
  /** While a worker runs: its thread id and the batches it has tokenized (diagnostics, tests). */
  workerStats?(): {threadId: number; batches: number} | undefined
}

/** Files that make up a tokenizer; `save` copies whichever of them a checkpoint has. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
  'sentencepiece.bpe.model',
  'spiece.model',
  'tokenizer.model',
]

/** A tokenizer that could not be loaded; the message names the directory and the missing files. */
export class TokenizerError extends Error {
  override name = 'TokenizerError'
  readonly exitCode = 2
}

interface EncodedRow {
  ids: ArrayLike<number>
  typeIds: ArrayLike<number>
  offsets: ArrayLike<ArrayLike<number>>
  special: ArrayLike<number>
}

/** Reads tokenizer_config.json (or {} when absent). */
export function readTokenizerConfig(dir: string): Record<string, unknown> {
  const p = join(dir, 'tokenizer_config.json')
  if (!existsSync(p)) return {}
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>
  } catch (error) {
    throw new TokenizerError(`${p}: not valid JSON (${(error as Error).message})`)
  }
}

/** Loads the tokenizer of a checkpoint directory. `padTokenId` (config.json) is used when the tokenizer names none. */
export async function loadTokenizer(dir: string, options: {padTokenId?: number} = {}): Promise<TextTokenizer> {
  const tokConfig = readTokenizerConfig(dir)
  const jsonPath = join(dir, 'tokenizer.json')
  const vocabPath = join(dir, 'vocab.txt')
  let nativeError: Error | undefined
  if (existsSync(jsonPath)) {
    try {
      return await HfTokenizer.load(jsonPath, tokConfig, options.padTokenId)
    } catch (error) {
      nativeError = error as Error
      if (!existsSync(vocabPath)) throw new TokenizerError(`${jsonPath}: cannot load tokenizer: ${nativeError.message}`)
    }
  }
  if (existsSync(vocabPath)) return WordPieceTextTokenizer.load(vocabPath, tokConfig, options.padTokenId)
  throw new TokenizerError(
    `${dir}: no tokenizer found: expected tokenizer.json (any Hugging Face tokenizer) or vocab.txt (BERT WordPiece)`,
  )
}

function specialToken(config: Record<string, unknown>, key: string, fallback: string): string {
  const v = config[key]
  if (typeof v === 'string') return v
  if (v && typeof v === 'object' && typeof (v as {content?: unknown}).content === 'string') return (v as {content: string}).content
  return fallback
}

class HfTokenizer implements TextTokenizer {
  readonly source = 'tokenizer.json' as const
  /** Serialises calls: truncation is tokenizer state read on the native worker thread. */
  private queue: Promise<unknown> = Promise.resolve()
  private truncation = 0

  private constructor(
    private readonly tk: import('tokenizers').Tokenizer,
    readonly padId: number,
    readonly vocabSize: number,
  ) {}

  static async load(path: string, tokConfig: Record<string, unknown>, padTokenId?: number): Promise<HfTokenizer> {
    const {Tokenizer} = await import('tokenizers')
    const tk = Tokenizer.fromFile(path)
    tk.disablePadding()
    tk.disableTruncation()
    const json = JSON.parse(readFileSync(path, 'utf8')) as {padding?: {pad_id?: number} | null}
    const padName = specialToken(tokConfig, 'pad_token', '')
    const padId = json.padding?.pad_id ?? (padName ? tk.tokenToId(padName) : null) ?? padTokenId ?? 0
    return new HfTokenizer(tk, padId, tk.getVocabSize(true))
  }

  tokenToId(token: string): number | undefined {
    return this.tk.tokenToId(token) ?? undefined
  }

  encodeBatch(texts: string[], options: TokenizeOptions): Promise<TokenBatch> {
    const run = this.queue.then(async () => {
      if (this.truncation !== options.maxLength) {
        this.tk.setTruncation(options.maxLength)
        this.truncation = options.maxLength
      }
      const encodings = await this.tk.encodeBatch(texts)
      const rows: EncodedRow[] = encodings.map((e) => ({
        ids: e.getIds(),
        typeIds: e.getTypeIds(),
        offsets: e.getOffsets(),
        special: e.getSpecialTokensMask(),
      }))
      return buildBatch(rows, this.padId, options.prefixLengths)
    })
    this.queue = run.catch(() => undefined)
    return run
  }
}

/** Everything a worker thread needs to rebuild the same WordPiece tokenizer. */
export interface WordPieceSetup {
  vocabPath: string
  options: WordPieceOptions
  clsId: number
  sepId: number
  padId: number
}

/** [CLS] tokens… [SEP] per text, truncated to maxLength, padded into a batch (main thread and worker share this). */
export function encodeWordPieceBatch(wp: WordPieceTokenizer, setup: Omit<WordPieceSetup, 'vocabPath' | 'options'>, texts: string[], options: TokenizeOptions): TokenBatch {
  const room = Math.max(0, options.maxLength - 2)
  const rows: EncodedRow[] = texts.map((text, index) => {
    if (typeof text !== 'string') throw new TokenizeTextError(`text ${index} is ${text === null ? 'null' : typeof text}, expected a string`, index, text)
    let tokens
    try {
      tokens = wp.tokenize(text).slice(0, room)
    } catch (error) {
      throw new TokenizeTextError(`text ${index} ${JSON.stringify(text.slice(0, 80))}: ${(error as Error).message}`, index, text)
    }
    const n = tokens.length + 2
    const ids = new Array<number>(n)
    const offsets: number[][] = new Array(n)
    const special = new Array<number>(n).fill(0)
    ids[0] = setup.clsId
    offsets[0] = [0, 0]
    special[0] = 1
    tokens.forEach((t, i) => {
      ids[i + 1] = t.id
      offsets[i + 1] = [t.start, t.end]
    })
    ids[n - 1] = setup.sepId
    offsets[n - 1] = [0, 0]
    special[n - 1] = 1
    return {ids, typeIds: new Array<number>(n).fill(0), offsets, special}
  })
  return buildBatch(rows, setup.padId, options.prefixLengths)
}

/** A text of a batch could not be tokenized; `index` is its position in the batch. */
export class TokenizeTextError extends Error {
  override name = 'TokenizeTextError'
  constructor(message: string, readonly index: number, readonly text: unknown) {
    super(message)
  }
}

class WordPieceTextTokenizer implements TextTokenizer {
  readonly source = 'vocab.txt' as const
  private worker?: WordPieceWorker
  private workerStarting?: Promise<WordPieceWorker>
  private workerUsers = 0

  private constructor(
    private readonly wp: WordPieceTokenizer,
    private readonly setup: WordPieceSetup,
  ) {}

  get padId(): number {
    return this.setup.padId
  }

  get vocabSize(): number {
    return this.wp.vocab.size
  }

  static load(path: string, tokConfig: Record<string, unknown>, padTokenId?: number): WordPieceTextTokenizer {
    const vocab = WordPieceTokenizer.parseVocab(readFileSync(path, 'utf8'))
    const names = {
      cls: specialToken(tokConfig, 'cls_token', '[CLS]'),
      sep: specialToken(tokConfig, 'sep_token', '[SEP]'),
      pad: specialToken(tokConfig, 'pad_token', '[PAD]'),
      unk: specialToken(tokConfig, 'unk_token', '[UNK]'),
      mask: specialToken(tokConfig, 'mask_token', '[MASK]'),
    }
    for (const key of ['cls', 'sep', 'unk'] as const) {
      if (!vocab.has(names[key])) throw new TokenizerError(`${path}: special token ${names[key]} (${key}_token) is not in the vocabulary`)
    }
    const lowercase = tokConfig.do_lower_case === undefined ? true : Boolean(tokConfig.do_lower_case)
    const strip = tokConfig.strip_accents
    const wp = new WordPieceTokenizer(vocab, {
      lowercase,
      stripAccents: strip === null || strip === undefined ? undefined : Boolean(strip),
      tokenizeChineseChars: tokConfig.tokenize_chinese_chars === undefined ? true : Boolean(tokConfig.tokenize_chinese_chars),
      unkToken: names.unk,
      neverSplit: Object.values(names),
    })
    return new WordPieceTextTokenizer(wp, {vocabPath: path, options: wp.options, clsId: vocab.get(names.cls)!, sepId: vocab.get(names.sep)!, padId: vocab.get(names.pad) ?? padTokenId ?? 0})
  }

  workerStats(): {threadId: number; batches: number} | undefined {
    return this.worker && {threadId: this.worker.threadId, batches: this.worker.batches}
  }

  /** Starts the worker, or shares the running one: it stops when every caller has called its stop function. */
  async startWorker(): Promise<() => Promise<void>> {
    this.workerUsers++
    try {
      this.workerStarting ??= import('./wordpiece-thread.js').then(({WordPieceWorker}) => WordPieceWorker.start(this.setup))
      this.worker = await this.workerStarting
    } catch (error) {
      this.workerUsers--
      this.workerStarting = undefined
      throw error
    }
    let stopped = false
    return async () => {
      if (stopped) return
      stopped = true
      if (--this.workerUsers > 0 || !this.worker) return
      const worker = this.worker
      this.worker = undefined
      this.workerStarting = undefined
      await worker.terminate()
    }
  }

  tokenToId(token: string): number | undefined {
    return this.wp.vocab.get(token)
  }

  async encodeBatch(texts: string[], options: TokenizeOptions): Promise<TokenBatch> {
    if (this.worker) return this.worker.encodeBatch(texts, options)
    return encodeWordPieceBatch(this.wp, this.setup, texts, options)
  }
}

/** Pads rows to the longest and derives masks; exported for tests. */
export function buildBatch(rows: EncodedRow[], padId: number, prefixLengths?: number[]): TokenBatch {
  const batchSize = rows.length
  const seqLen = rows.reduce((m, r) => Math.max(m, r.ids.length), 0)
  const size = batchSize * seqLen
  const inputIds = new Int32Array(size).fill(padId)
  const attentionMask = new Int32Array(size)
  const tokenTypeIds = new Int32Array(size)
  const offsets = new Int32Array(size * 2)
  const specialTokensMask = new Uint8Array(size)
  const poolMask = new Float32Array(size)
  const lengths: number[] = []
  const prefixes = rows.map((_, b) => prefixLengths?.[b] ?? 0)
  rows.forEach((row, b) => {
    const n = row.ids.length
    lengths.push(n)
    const base = b * seqLen
    for (let t = 0; t < n; t++) {
      inputIds[base + t] = row.ids[t]!
      attentionMask[base + t] = 1
      tokenTypeIds[base + t] = row.typeIds[t]!
      const o = row.offsets[t]!
      offsets[(base + t) * 2] = o[0]!
      offsets[(base + t) * 2 + 1] = o[1]!
      specialTokensMask[base + t] = row.special[t] ? 1 : 0
    }
    const prefixLen = prefixes[b]!
    let cut = -1
    if (prefixLen > 0) {
      for (let t = 0; t < n; t++) if (!row.special[t] && row.offsets[t]![1]! <= prefixLen) cut = t
      if (cut === -1) while (cut + 1 < n && row.special[cut + 1]) cut++
    }
    for (let t = cut + 1; t < n; t++) poolMask[base + t] = 1
  })
  return {batchSize, seqLen, inputIds, attentionMask, tokenTypeIds, offsets, specialTokensMask, lengths, poolMask, prefixLengths: prefixes}
}

/** Length of a string in Unicode code points (the unit of token offsets). */
export function codePointLength(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) i++
    }
    n++
  }
  return n
}
