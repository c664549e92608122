/**
 * Text tokenization for encoders. A checkpoint's `tokenizer.json` runs through the `tokenizers` npm
 * package (Hugging Face's Rust implementation: WordPiece, Unigram/SentencePiece and BPE models with
 * their normalisers, pre-tokenisers and post-processors, and character offsets); a checkpoint with only
 * a `vocab.txt` uses the BERT WordPiece fallback in wordpiece.ts, configured from tokenizer_config.json.
 * A tokenizer.json that does not load is an error, never a reason to use a vocab.txt beside it (the
 * two may tokenize differently); every JSON tokenizer file present must parse (save copies them for
 * Python to read), and vocab.txt must be UTF-8 text.
 *
 * Batches are truncated to a maximum length (special tokens included), padded to the
 * longest row (on the right, or on the left where tokenizer_config.json says padding_side "left"), and
 * carry attention masks, token type ids and character offsets. Offsets count Unicode
 * code points, as the Rust tokenizers and Python report them.
 *
 * Pooling mask: when a text starts with an instruction prefix (`prefixLengths[i]` code points), the
 * leading tokens that lie inside the prefix (those whose end offset is not past it) and the leading
 * special tokens before them are excluded from pooling; every later non-padding token, including a
 * template's text after the input text (see src/core/prompts.ts) and a trailing [SEP]/</s>, is pooled. This is what sentence-transformers does with `include_prompt: false`
 * (it masks the first prompt-length tokens), located by offsets so it is exact at the boundary.
 */
import {existsSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {WordPieceTokenizer} from './wordpiece.js'
import type {WordPieceWorker} from './wordpiece-thread.js'
import {buildBatch, encodeWordPieceBatch} from './batch.js'
import {TokenizerError, type EncodedRow, type PaddingSide, type TextTokenizer, type TokenBatch, type TokenizeOptions, type WordPieceSetup} from './types.js'
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

/** Reads tokenizer_config.json (or {} when absent); anything but a JSON object fails naming the file. */
export function readTokenizerConfig(dir: string): Record<string, unknown> {
  const p = join(dir, 'tokenizer_config.json')
  if (!existsSync(p)) return {}
  const config = readJsonFile(p, (reason) => new TokenizerError(`${p}: not valid JSON (${reason})`))
  if (!isObject(config)) throw new TokenizerError(`${p}: expected a JSON object, got ${jsonKind(config)}`)
  return config
}

/** Loads the tokenizer of a checkpoint directory. `padTokenId` (config.json) is used when the tokenizer names none. */
export async function loadTokenizer(dir: string, options: {padTokenId?: number} = {}): Promise<TextTokenizer> {
  const tokConfig = readTokenizerConfig(dir)
  checkJsonFiles(dir)
  const jsonPath = join(dir, 'tokenizer.json')
  const vocabPath = join(dir, 'vocab.txt')
  if (existsSync(jsonPath)) return HfTokenizer.load(jsonPath, tokConfig, options.padTokenId, existsSync(vocabPath))
  if (existsSync(vocabPath)) return WordPieceTextTokenizer.load(vocabPath, tokConfig, options.padTokenId)
  throw new TokenizerError(
    `${dir}: no tokenizer found: expected tokenizer.json (any Hugging Face tokenizer) or vocab.txt (BERT WordPiece)`,
  )
}

/** The JSON tokenizer files codiemb does not read itself but copies on save: each must still parse. */
const COPIED_JSON_FILES = TOKENIZER_FILES.filter((f) => f.endsWith('.json') && f !== 'tokenizer.json' && f !== 'tokenizer_config.json')

function checkJsonFiles(dir: string): void {
  for (const file of COPIED_JSON_FILES) {
    const p = join(dir, file)
    if (!existsSync(p)) continue
    const value = readJsonFile(p, (reason) => new TokenizerError(`${p}: not valid JSON (${reason})`))
    if (!isObject(value)) throw new TokenizerError(`${p}: expected a JSON object, got ${jsonKind(value)}`)
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function jsonKind(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`
}

/**
 * The highest id a tokenizer.json tokenizer emits: its vocabulary with added tokens, and the ids its
 * post-processor (TemplateProcessing, Bert/RobertaProcessing, Sequence) and padding insert, which
 * come from their own tables rather than from the vocabulary.
 */
function highestTokenizerJsonId(vocab: Record<string, number>, json: Record<string, unknown>): {id: number; token: string} {
  let best = {id: -1, token: ''}
  const consider = (token: unknown, id: unknown) => {
    if (typeof id === 'number' && id > best.id) best = {id, token: String(token)}
  }
  for (const [token, id] of Object.entries(vocab)) consider(token, id)
  const visit = (processor: unknown): void => {
    if (!isObject(processor)) return
    for (const key of ['cls', 'sep']) {
      const pair = processor[key]
      if (Array.isArray(pair)) consider(pair[0], pair[1])
    }
    for (const special of Object.values(isObject(processor.special_tokens) ? processor.special_tokens : {})) {
      const s = special as {id?: unknown; ids?: unknown; tokens?: unknown}
      if (Array.isArray(s?.ids)) s.ids.forEach((id, i) => consider(Array.isArray(s.tokens) ? s.tokens[i] : s.id, id))
    }
    if (Array.isArray(processor.processors)) processor.processors.forEach(visit)
  }
  visit(json.post_processor)
  if (isObject(json.padding)) consider(json.padding.pad_token, json.padding.pad_id)
  return best
}

/**
 * The padding side: tokenizer_config.json `padding_side` (as transformers), else tokenizer.json's own
 * padding direction, else right.
 */
function paddingSideOf(tokConfig: Record<string, unknown>, dir: string, json?: Record<string, unknown>): PaddingSide {
  const side = tokConfig.padding_side
  if (side === 'left' || side === 'right') return side
  if (side !== undefined && side !== null) throw new TokenizerError(`${join(dir, 'tokenizer_config.json')}: padding_side must be "left" or "right", got ${JSON.stringify(side)}`)
  const direction = isObject(json?.padding) ? json!.padding.direction : undefined
  return direction === 'Left' ? 'left' : 'right'
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
    readonly paddingSide: PaddingSide,
    readonly vocabSize: number,
    readonly highestId: {id: number; token: string},
  ) {}

  static async load(path: string, tokConfig: Record<string, unknown>, padTokenId: number | undefined, besideVocabTxt: boolean): Promise<HfTokenizer> {
    const unusable = (reason: string) =>
      new TokenizerError(`${path}: ${reason}${besideVocabTxt ? ' (vocab.txt beside it is not used instead: the two may tokenize differently)' : ''}`)
    const json = readJsonFile(path, (reason) => unusable(`not valid JSON (${reason})`))
    if (!isObject(json)) throw unusable(`expected a JSON object (a Hugging Face tokenizer), got ${jsonKind(json)}`)
    const {Tokenizer} = await import('tokenizers')
    let tk: import('tokenizers').Tokenizer
    try {
      tk = Tokenizer.fromFile(path)
    } catch (error) {
      throw unusable(`not a tokenizer the tokenizers library can load: ${(error as Error).message.replace(/^Error loading from file/, '')}`)
    }
    tk.disablePadding()
    tk.disableTruncation()
    const padding = isObject(json.padding) ? json.padding : undefined
    const padName = specialToken(tokConfig, 'pad_token', '')
    const padId = (typeof padding?.pad_id === 'number' ? padding.pad_id : undefined) ?? (padName ? tk.tokenToId(padName) : null) ?? padTokenId ?? 0
    return new HfTokenizer(tk, padId, paddingSideOf(tokConfig, dirname(path), json), tk.getVocabSize(true), highestTokenizerJsonId(tk.getVocab(true), json))
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
      return buildBatch(rows, this.padId, options.prefixLengths, this.paddingSide)
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
    readonly highestId: {id: number; token: string},
  ) {}

  get padId(): number {
    return this.setup.padId
  }

  get paddingSide(): PaddingSide {
    return this.setup.paddingSide
  }

  get vocabSize(): number {
    return this.wp.vocab.size
  }

  static load(path: string, tokConfig: Record<string, unknown>, padTokenId?: number): WordPieceTextTokenizer {
    const vocab = WordPieceTokenizer.parseVocab(readUtf8Lines(path))
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
    let highest = {id: -1, token: ''}
    for (const [token, id] of vocab) if (id > highest.id) highest = {id, token}
    const setup: WordPieceSetup = {
      vocabPath: path,
      options: wp.options,
      clsId: vocab.get(names.cls)!,
      sepId: vocab.get(names.sep)!,
      padId: vocab.get(names.pad) ?? padTokenId ?? 0,
      paddingSide: paddingSideOf(tokConfig, dirname(path)),
    }
    return new WordPieceTextTokenizer(wp, setup, highest)
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

/** A vocab.txt's text; a line that is not UTF-8 (a binary or mis-encoded file) fails naming its number. */
function readUtf8Lines(path: string): string {
  const bytes = readFileSync(path)
  const decoder = new TextDecoder('utf-8', {fatal: true})
  try {
    return decoder.decode(bytes)
  } catch {
    let start = 0
    for (let line = 1; ; line++) {
      const end = bytes.indexOf(0x0a, start)
      try {
        decoder.decode(bytes.subarray(start, end === -1 ? bytes.length : end))
      } catch {
        throw new TokenizerError(`${path}: line ${line} is not valid UTF-8: expected a text file with one token per line`)
      }
      if (end === -1) throw new TokenizerError(`${path}: not valid UTF-8: expected a text file with one token per line`)
      start = end + 1
    }
  }
}
