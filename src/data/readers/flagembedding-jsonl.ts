/**
 * `flagembedding-jsonl` reader: FlagEmbedding / BGE fine-tuning data, one JSON object per line:
 * `{query, pos: [text...], neg: [text...], pos_scores?: [number...], neg_scores?: [number...], prompt?}`,
 * into IR examples (`query` -> query, `pos` -> positives, `neg` -> negatives, scores kept, `prompt`
 * -> the example's instruction, else the dataset's).
 *
 * Inputs: one file per split. Options: `encoding` (default utf-8). A malformed line, a non-object, or an example whose
 * `pos` is empty is a rejected row at its line (via `prepare`'s validation for the latter).
 * Relations: `codiemb-jsonl` is the richer CoDiEmb format (instructions, STS examples).
 */
import {excerpt} from '../text-input.js'
import type {ReadItem, ReadRequest} from '../types.js'
import {splitFileReader} from './common.js'
import {jsonObjects} from './json-objects.js'

export {flagembeddingJsonlOptions as optionsSchema} from './options.js'

export const reader = splitFileReader('flagembedding-jsonl', ['ir'], async function* (request: ReadRequest): AsyncGenerator<ReadItem> {
  const kind = 'ir-example'
  for await (const item of jsonObjects(request, 'flagembedding-jsonl', kind, 'a JSON object {query, pos, neg}')) {
    if (item.type !== 'object') {
      yield item
      continue
    }
    const {split, at, object: o} = item
    if (!('query' in o) || !('pos' in o)) {
      yield {
        type: 'reject',
        kind,
        split,
        at,
        reason: `missing field ${'query' in o ? '"pos"' : '"query"'} (FlagEmbedding lines are {query, pos, neg})`,
        raw: excerpt(JSON.stringify(o)),
      }
      continue
    }
    yield {
      type: 'row',
      kind,
      split,
      at,
      row: {
        id: String(at.line),
        query: o.query,
        positives: o.pos,
        negatives: o.neg,
        positive_scores: o.pos_scores,
        negative_scores: o.neg_scores,
        instruction: o.prompt,
      },
    }
  }
})
