/**
 * `json` reader: JSON lines or one JSON array of objects, fields mapped by name, into STS pairs or
 * IR examples.
 *
 * Inputs: one file per split. `fields` maps record fields to keys (a dotted path reaches nested
 * objects), e.g. AFQMC `{text1: sentence1, text2: sentence2, score: label}`, QBQTC
 * `{text1: query, text2: title, score: label, id: id}`. Scores given as numeric strings ("0", "2.5")
 * are accepted; `prepare` converts and range-checks them. A line that is not valid JSON, or not an
 * object, is a rejected row at its line; an array element reports the line it starts on.
 *
 * Options: `format` — `auto` (default: a file whose first character is `[` is an array), `lines`, `array`;
 * `encoding` — the files' text encoding (default utf-8).
 * Relations: like `delimited` but for JSON; `flagembedding-jsonl` and `codiemb-jsonl` know their
 * formats without a mapping.
 */
import {resolveFields} from '../mapping.js'
import {excerpt, getPath} from '../text-input.js'
import type {ReadItem, ReadRequest} from '../types.js'
import {mappedItem, splitFileReader, trainingKind} from './common.js'
import {jsonObjects, type JsonFormat} from './json-objects.js'

export {jsonOptions as optionsSchema} from './options.js'

export const reader = splitFileReader('json', ['sts', 'ir'], async function* (request: ReadRequest): AsyncGenerator<ReadItem> {
  const format = (request.options.format as JsonFormat | undefined) ?? 'auto'
  const task = request.task as 'ir' | 'sts'
  const mapping = resolveFields(request.task, request.fields, 'json')
  const kind = trainingKind(task)
  for await (const item of jsonObjects(request, 'json', kind, 'a JSON object', format)) {
    if (item.type !== 'object') {
      yield item
      continue
    }
    const {split, at, object} = item
    yield mappedItem(task, mapping, {
      split,
      at,
      value: (ref) => getPath(object, String(ref)),
      // The line (JSON lines) or the 1-based element number (an array may hold several per line).
      fallbackId: String(item.element ?? at.line),
      raw: () => excerpt(JSON.stringify(object)),
    })
  }
})
