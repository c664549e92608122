/**
 * `codiemb-jsonl` reader: the CoDiEmb paper's training format, one JSON object per line:
 *
 *     {"task_type": "ir" | "sts",
 *      "query": [task instruction, instance instruction, text],
 *      "positives": [[task instruction, instance instruction, text], ...],
 *      "negatives": [[...], ...],
 *      "positive_scores": [number, ...], "negative_scores": [number, ...]}
 *
 * A triple's text may also be given as a plain string. The task instruction becomes the record's
 * `instruction`; a non-empty instance instruction is prepended to its text with a space (it is
 * part of what the encoder reads for that instance).
 *
 * - `task_type: "ir"` -> one IR example (query, positives, negatives, their scores).
 * - `task_type: "sts"` -> one STS pair per scored candidate: (query, positive i, positive_scores[i])
 *   and (query, negative j, negative_scores[j]); ids are `<line>` or `<line>.<n>` when a line gives
 *   several pairs. Scores are required and checked against the dataset's label range.
 *
 * Lines whose task_type differs from the dataset's task are rejected (declare a second dataset for
 * them); malformed JSON is rejected at its line. Option: `encoding` (default utf-8).
 */
import {excerpt} from '../text-input.js'
import type {ReadItem, ReadRequest} from '../types.js'
import {show, splitFileReader, trainingKind} from './common.js'
import {jsonObjects} from './json-objects.js'

export {codiembJsonlOptions as optionsSchema} from './options.js'

type Instance = {text: string; instruction: string}

/** A [task instruction, instance instruction, text] triple (or a bare string) -> text + instruction. */
function instance(value: unknown, field: string): Instance | string {
  if (typeof value === 'string') return {text: value, instruction: ''}
  if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === 'string'))
    return `${field}: expected [task instruction, instance instruction, text] (three strings), got ${show(value)}`
  const [task, inst, text] = value as string[]
  return {text: inst.trim() ? `${inst.trim()} ${text}` : text, instruction: task}
}

function instances(value: unknown, field: string): Instance[] | string {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) return `${field}: expected a list of [task instruction, instance instruction, text], got ${show(value)}`
  const out: Instance[] = []
  for (let i = 0; i < value.length; i++) {
    const r = instance(value[i], `${field}[${i}]`)
    if (typeof r === 'string') return r
    out.push(r)
  }
  return out
}

export const reader = splitFileReader('codiemb-jsonl', ['ir', 'sts'], async function* (request: ReadRequest): AsyncGenerator<ReadItem> {
  const kind = trainingKind(request.task)
  for await (const item of jsonObjects(request, 'codiemb-jsonl', kind, 'a JSON object with task_type, query, positives, negatives')) {
    if (item.type !== 'object') {
      yield item
      continue
    }
    const {split, at, object: o} = item
    const raw = excerpt(JSON.stringify(o))
    const reject = (reason: string): ReadItem => ({type: 'reject', kind, split, at, reason, raw})
    if (o.task_type !== 'ir' && o.task_type !== 'sts') {
      yield reject(`task_type: expected "ir" or "sts", got ${show(o.task_type)}`)
      continue
    }
    if (o.task_type !== request.task) {
      yield reject(`task_type "${o.task_type}" does not match the dataset's task "${request.task}" (declare a second dataset for these lines)`)
      continue
    }
    if (o.query === undefined) {
      yield reject('missing field "query"')
      continue
    }
    const q = instance(o.query, 'query')
    const pos = instances(o.positives, 'positives')
    const neg = instances(o.negatives, 'negatives')
    const problem = [q, pos, neg].find((x): x is string => typeof x === 'string')
    if (problem) {
      yield reject(problem)
      continue
    }
    const query = q as Instance
    const positives = pos as Instance[]
    const negatives = neg as Instance[]
    if (request.task === 'ir') {
      yield {
        type: 'row',
        kind: 'ir-example',
        split,
        at,
        row: {
          id: String(at.line),
          query: query.text,
          instruction: query.instruction,
          positives: positives.map((p) => p.text),
          negatives: negatives.map((n) => n.text),
          positive_scores: o.positive_scores,
          negative_scores: o.negative_scores,
        },
      }
      continue
    }
    // STS: every scored candidate is one pair with the query.
    const pairs: {text: string; score: unknown}[] = []
    const lists: [Instance[], unknown, string][] = [
      [positives, o.positive_scores, 'positive_scores'],
      [negatives, o.negative_scores, 'negative_scores'],
    ]
    let bad: string | undefined
    for (const [list, scores, name] of lists) {
      if (list.length === 0) continue
      if (!Array.isArray(scores) || scores.length !== list.length) {
        bad = `${name}: an STS example needs one score per candidate (${list.length}), got ${show(scores)}`
        break
      }
      list.forEach((c, i) => pairs.push({text: c.text, score: scores[i]}))
    }
    if (bad) {
      yield reject(bad)
      continue
    }
    if (pairs.length === 0) {
      yield reject('positives: an STS example needs at least one scored candidate')
      continue
    }
    for (let i = 0; i < pairs.length; i++) {
      yield {
        type: 'row',
        kind: 'sts-pair',
        split,
        at,
        row: {
          id: pairs.length === 1 ? String(at.line) : `${at.line}.${i + 1}`,
          text1: query.text,
          text2: pairs[i].text,
          score: pairs[i].score,
          instruction: query.instruction,
        },
      }
    }
  }
})
