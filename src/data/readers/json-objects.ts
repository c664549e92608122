/**
 * The loop the JSON readers (codiemb-jsonl, flagembedding-jsonl, json) share: every split's file,
 * value by value, decoded in the request's `encoding`, with the values that are not JSON objects
 * turned into rejects at their line.
 */
import {detectJsonFormat, excerpt, readJsonArray, readJsonLines} from '../text-input.js'
import type {PreparedKind, ReadItem, ReadRequest, SourceLocation} from '../types.js'
import {encodingOf, isObject, show, splitFile} from './common.js'

/** One JSON object of a split's file; `element` is its 1-based position when the file is a JSON array. */
export interface JsonObjectAt {
  type: 'object'
  split: string
  at: SourceLocation
  object: Record<string, unknown>
  element?: number
}

/** How a file holds its values: JSON lines, one JSON array, or `auto` (an array when it starts with `[`). */
export type JsonFormat = 'lines' | 'array' | 'auto'

/**
 * The JSON objects of every split's file, in order. A value that does not parse is a reject of
 * `kind` with its excerpt; one that is not an object a reject "expected `expected`, got …".
 */
export async function* jsonObjects(
  request: ReadRequest,
  reader: string,
  kind: PreparedKind,
  expected: string,
  format: JsonFormat = 'lines',
): AsyncGenerator<ReadItem | JsonObjectAt> {
  const encoding = encodingOf(request)
  for (const split of request.splits) {
    const file = splitFile(request, split, reader)
    const shape = format === 'auto' ? await detectJsonFormat(file, encoding) : format
    const values = shape === 'array' ? readJsonArray(file, encoding) : readJsonLines(file, encoding)
    let index = 0
    for await (const item of values) {
      index++
      if (item.error !== undefined) {
        yield {type: 'reject', kind, split: split.name, at: item.at, reason: item.error, raw: excerpt(item.raw)}
        continue
      }
      const value = item.value
      if (!isObject(value)) {
        yield {type: 'reject', kind, split: split.name, at: item.at, reason: `expected ${expected}, got ${show(value)}`, raw: excerpt(JSON.stringify(value))}
        continue
      }
      yield {type: 'object', split: split.name, at: item.at, object: value, element: shape === 'array' ? index : undefined}
    }
  }
}
