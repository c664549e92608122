/**
 * `flagembedding-jsonl` reader: FlagEmbedding / BGE fine-tuning data, one JSON object per line:
 * `{query, pos: [text...], neg: [text...], pos_scores?: [number...], neg_scores?: [number...], prompt?}`,
 * into IR examples (`query` -> query, `pos` -> positives, `neg` -> negatives, scores kept, `prompt`
 * -> the example's instruction, else the dataset's).
 *
 * Inputs: one file per split. Options: none. A malformed line, a non-object, or an example whose
 * `pos` is empty is a rejected row at its line (via `prepare`'s validation for the latter).
 * Relations: `codiemb-jsonl` is the richer CoDiEmb format (instructions, STS examples).
 */
import {excerpt, readJsonLines} from '../text-input.js'
import type {PreparedKind, ReadItem, Reader, ReadRequest} from '../types.js'
import {isObject, show, splitFile, splitFiles} from './common.js'

export {flagembeddingJsonlOptions as optionsSchema} from './options.js'

export const reader: Reader = {
  tasks: ['ir'],
  kindsFor(): PreparedKind[] {
    return ['ir-example']
  },
  async sources(request) {
    return splitFiles(request, 'flagembedding-jsonl')
  },
  async *read(request: ReadRequest): AsyncGenerator<ReadItem> {
    const kind = 'ir-example'
    for (const split of request.splits) {
      const file = splitFile(request, split, 'flagembedding-jsonl')
      for await (const item of readJsonLines(file)) {
        if (item.error !== undefined) {
          yield {type: 'reject', kind, split: split.name, at: item.at, reason: item.error, raw: excerpt(item.raw)}
          continue
        }
        const o = item.value
        if (!isObject(o)) {
          yield {type: 'reject', kind, split: split.name, at: item.at, reason: `expected a JSON object {query, pos, neg}, got ${show(o)}`}
          continue
        }
        if (!('query' in o) || !('pos' in o)) {
          yield {
            type: 'reject',
            kind,
            split: split.name,
            at: item.at,
            reason: `missing field ${'query' in o ? '"pos"' : '"query"'} (FlagEmbedding lines are {query, pos, neg})`,
            raw: excerpt(JSON.stringify(o)),
          }
          continue
        }
        yield {
          type: 'row',
          kind,
          split: split.name,
          at: item.at,
          row: {
            id: String(item.at.line),
            query: o.query,
            positives: o.pos,
            negatives: o.neg,
            positive_scores: o.pos_scores,
            negative_scores: o.neg_scores,
            instruction: o.prompt,
          },
        }
      }
    }
  },
}
