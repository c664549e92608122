/**
 * The tokenizer contracts: what a tokenized batch holds, what every tokenizer offers, and the errors
 * they raise (shared by the main-thread tokenizers and the WordPiece worker thread).
 */
import type {WordPieceOptions} from './wordpiece.js'
import {CodiembError, ExecutionError} from '../../core/errors.js'

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
  /**
   * Number of non-padding tokens in each row; they sit at the start of the row (right padding) or at its
   * end (left padding): find a row's tokens from attentionMask, not from this count alone.
   */
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

/** Where padding goes in a batch (tokenizer_config.json `padding_side`; decoder embedders such as Qwen3-Embedding pad on the left). */
export type PaddingSide = 'left' | 'right'

export interface TextTokenizer {
  readonly source: 'tokenizer.json' | 'vocab.txt'
  readonly padId: number
  readonly paddingSide: PaddingSide
  readonly vocabSize: number
  /**
   * The highest token id the tokenizer can emit (vocabulary, added tokens, the ids its post-processor
   * and padding insert) and its token: the model's embedding matrix needs more rows than this id
   * (checked at load, src/model/consistency.ts).
   */
  readonly highestId: {id: number; token: string}
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

/** A tokenizer that could not be loaded; the message names the directory and the missing files. */
export class TokenizerError extends CodiembError {
  override name = 'TokenizerError'
}

export interface EncodedRow {
  ids: ArrayLike<number>
  typeIds: ArrayLike<number>
  offsets: ArrayLike<ArrayLike<number>>
  special: ArrayLike<number>
}

/** Everything a worker thread needs to rebuild the same WordPiece tokenizer. */
export interface WordPieceSetup {
  vocabPath: string
  options: WordPieceOptions
  clsId: number
  sepId: number
  padId: number
  paddingSide: PaddingSide
}

/**
 * A text of a batch could not be tokenized; `index` is its position in the batch. Exit code 1: input
 * files are checked for text fields before they reach the tokenizer, so this is a failure of the
 * caller or of the tokenizer, not something the user fixes in the input.
 */
export class TokenizeTextError extends ExecutionError {
  override name = 'TokenizeTextError'
  constructor(message: string, readonly index: number, readonly text: unknown) {
    super(message)
  }
}

/** What the WordPiece worker thread posts back for request `id`. */
export type WorkerReply =
  | {id: number; batch: TokenBatch}
  | {id: number; error: {message: string; index?: number; text?: unknown}}
