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
 * template's text after the input text (see src/core/prompts.ts) and a trailing [SEP]/</s>, is pooled. This is what sentence-transformers does with `include_prompt: false`
 * (it masks the first prompt-length tokens), located by offsets so it is exact at the boundary.
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {WordPieceTokenizer} from './wordpiece.js'
import type {WordPieceWorker} from './wordpiece-thread.js'
import {buildBatch, encodeWordPieceBatch} from './batch.js'
import {TokenizerError, type EncodedRow, type TextTokenizer, type TokenBatch, type TokenizeOptions, type WordPieceSetup} from './types.js'
import {readJsonFile} from '../../core/json-file.js'

export * from './types.js'
export {buildBatch, encodeWordPieceBatch} from './batch.js'
export {codePointLength} from '../../core/prompts.js'

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

/** Reads tokenizer_config.json (or {} when absent). */
export function readTokenizerConfig(dir: string): Record<string, unknown> {
  const p = join(dir, 'tokenizer_config.json')
  if (!existsSync(p)) return {}
  return readJsonFile(p, (reason) => new TokenizerError(`${p}: not valid JSON (${reason})`)) as Record<string, unknown>
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

