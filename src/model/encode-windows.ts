/**
 * Encoding texts to vectors in length-sorted windows (what `Encoder.encode` runs): each window of
 * texts is tokenized at once and run longest first, as sentence-transformers sorts, in batches of
 * similar token counts, so little padding is computed; the vectors go back to their input positions.
 * A window is bounded, so a corpus streamed in chunks is never held whole.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {EncodeProgressEvent} from '../core/events.js'
import {applyPrompt, type Prompt} from '../core/prompts.js'
import type {PoolingMode} from './pooling.js'
import type {TokenBatch} from './tokenizer/tokenizer.js'
import type {PaddingSide} from './tokenizer/types.js'
import {selectRows} from './tokenizer/select-rows.js'

export interface EncodeOptions {
  /** Name of a prompt from the checkpoint's prompts (e.g. "query"). */
  prompt?: string
  /**
   * What goes around every text (overrides `prompt`): a literal instruction prefix, or a template
   * already filled with its instruction (src/core/prompts.ts fillTemplate).
   */
  instruction?: string | Prompt
  batchSize?: number
  maxLength?: number
  normalize?: boolean
  /** Override the checkpoint's pooling for this call. */
  pooling?: PoolingMode
  /**
   * Texts tokenized and sorted by token count together (default 64 batches' worth): each window is
   * encoded longest first in batches of similar length, so little padding is computed, and the
   * vectors come back in input order. Bounded so a corpus streamed in chunks is never held whole;
   * `sortWindow` <= batchSize encodes in input order.
   */
  sortWindow?: number
  /**
   * Token budget of a batch: rows x its longest row (padding included) stays within it (a single
   * longer text still forms a batch of one). Batches of short texts then hold more rows; batchSize,
   * when given, still caps the rows.
   */
  maxTokensPerBatch?: number
  /** Progress after each batch: texts encoded so far, of all, their non-padding tokens and the tokens computed (padding included). */
  onEvent?: (event: EncodeProgressEvent) => void
}

/** Default sort window, in batches. */
export const SORT_WINDOW_BATCHES = 64

/** The parts of an encoder the loop runs. */
export interface WindowEncoder {
  readonly hiddenSize: number
  readonly tokenizer: {readonly paddingSide: PaddingSide}
  tokenize(texts: string[], options: {maxLength?: number; prefixes?: string[]}): Promise<TokenBatch>
  forward(batch: TokenBatch): {lastHiddenState: tf.Tensor3D}
  pool(hidden: tf.Tensor3D, batch: TokenBatch, options: {normalize?: boolean; pooling?: PoolingMode}): tf.Tensor2D
}

/** Encodes `texts` with `prompt` around each; `options.pooling` and `normalize` already resolved by the encoder. */
export async function encodeInWindows(encoder: WindowEncoder, texts: string[], prompt: Prompt, options: EncodeOptions & {pooling: PoolingMode; normalize: boolean}): Promise<Float32Array[]> {
  const {normalize, pooling} = options
  const batchSize = Math.max(1, options.batchSize ?? 32)
  const rowCap = options.batchSize ?? (options.maxTokensPerBatch ? Infinity : batchSize)
  const window = Math.max(1, options.sortWindow ?? SORT_WINDOW_BATCHES * batchSize)
  const out = new Array<Float32Array>(texts.length)
  let done = 0
  let tokens = 0
  let padded = 0
  for (let w0 = 0; w0 < texts.length; w0 += window) {
    const inputs = texts.slice(w0, w0 + window).map((t) => applyPrompt(prompt, t))
    const all = await encoder.tokenize(
      inputs.map((x) => x.input),
      {maxLength: options.maxLength, prefixes: prompt.prefix ? inputs.map((x) => x.prefix) : undefined},
    )
    const order = inputs.map((_, i) => i)
    if (window > batchSize || options.maxTokensPerBatch) order.sort((a, b) => all.lengths[b]! - all.lengths[a]! || a - b)
    for (let start = 0; start < order.length; ) {
      // rows while the batch (rows x its longest, the first in order) stays within the budgets
      const longest = all.lengths[order[start]!]!
      let end = start + 1
      while (end < order.length && end - start < rowCap && (!options.maxTokensPerBatch || (end - start + 1) * longest <= options.maxTokensPerBatch)) end++
      const rows = order.slice(start, end)
      const batch = selectRows(all, rows, encoder.tokenizer.paddingSide)
      const pooled = tf.tidy(() => encoder.pool(encoder.forward(batch).lastHiddenState, batch, {normalize, pooling}))
      const flat = (await pooled.data()) as Float32Array
      pooled.dispose()
      const H = encoder.hiddenSize
      rows.forEach((r, j) => (out[w0 + r] = flat.slice(j * H, (j + 1) * H)))
      done += rows.length
      tokens += batch.lengths.reduce((a, b) => a + b, 0)
      padded += batch.batchSize * batch.seqLen
      options.onEvent?.({type: 'encode-progress', done, total: texts.length, tokens, padded})
      start = end
      // One event-loop turn per batch: the awaits above can all resolve as microtasks, and a long
      // encode must not starve signal handlers (Ctrl-C), timers and output streams.
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  return out
}
