/**
 * Picking rows out of a tokenized batch: `encode` tokenizes a whole window of texts at once, sorts
 * the rows by token count and runs the model on consecutive runs of that order, each cut to its
 * own longest row (right padding: a row's tokens are its first `lengths[r]` positions; left
 * padding, as decoder LLMs' tokenizers pad: its last).
 * Relations: src/model/encoder.ts (encode), src/model/tokenizer/types.ts (TokenBatch).
 */
import type {PaddingSide, TokenBatch} from './types.js'

/** A batch of the given rows of `batch`, in that order, padded only to the longest of them. */
export function selectRows(batch: TokenBatch, rows: readonly number[], paddingSide: PaddingSide = 'right'): TokenBatch {
  const seqLen = Math.max(1, ...rows.map((r) => batch.lengths[r]!))
  const n = rows.length
  const from = batch.seqLen
  const out: TokenBatch = {
    batchSize: n,
    seqLen,
    inputIds: new Int32Array(n * seqLen),
    attentionMask: new Int32Array(n * seqLen),
    tokenTypeIds: new Int32Array(n * seqLen),
    offsets: new Int32Array(n * seqLen * 2),
    specialTokensMask: new Uint8Array(n * seqLen),
    lengths: rows.map((r) => batch.lengths[r]!),
    poolMask: new Float32Array(n * seqLen),
    prefixLengths: rows.map((r) => batch.prefixLengths[r] ?? 0),
  }
  rows.forEach((r, i) => {
    const a = r * from + (paddingSide === 'left' ? from - seqLen : 0)
    const b = a + seqLen
    const at = i * seqLen
    out.inputIds.set(batch.inputIds.subarray(a, b), at)
    out.attentionMask.set(batch.attentionMask.subarray(a, b), at)
    out.tokenTypeIds.set(batch.tokenTypeIds.subarray(a, b), at)
    out.specialTokensMask.set(batch.specialTokensMask.subarray(a, b), at)
    out.poolMask.set(batch.poolMask.subarray(a, b), at)
    out.offsets.set(batch.offsets.subarray(a * 2, b * 2), at * 2)
  })
  // positions past a row's length are the source's padding (pad id, mask 0): copied as they are
  return out
}
