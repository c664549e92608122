/**
 * Turning token rows into a padded TokenBatch (masks, offsets, the pooling mask past an instruction
 * prefix), shared by every tokenizer and by the WordPiece worker thread.
 */
import type {WordPieceTokenizer} from './wordpiece.js'
import {TokenizeTextError, type EncodedRow, type PaddingSide, type TokenBatch, type TokenizeOptions, type WordPieceSetup} from './types.js'

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
  return buildBatch(rows, setup.padId, options.prefixLengths, setup.paddingSide)
}

/** Pads rows to the longest (on the right, or on the left) and derives masks; exported for tests. */
export function buildBatch(rows: EncodedRow[], padId: number, prefixLengths?: number[], paddingSide: PaddingSide = 'right'): TokenBatch {
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
    // Left padding puts the row's n tokens at the end: position t of the row is base + t.
    const base = b * seqLen + (paddingSide === 'left' ? seqLen - n : 0)
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
