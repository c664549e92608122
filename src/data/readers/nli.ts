/**
 * `nli` reader: natural-language-inference pairs (premise, hypothesis, label) into IR triplets or
 * STS pairs, as the dataset's task says.
 *
 * Formats (option `format`):
 * - `senteval` (default): SentEval's SNLI layout, three parallel files per split under `path`:
 *   `s1.<split>` (premises), `s2.<split>` (hypotheses), `labels.<split>` (entailment | neutral |
 *   contradiction), one item per line. Files of different lengths are an error.
 * - `triplets`: JSON lines `{anchor, positive, negative}` (field names configurable with `fields`),
 *   optionally tagged with a split (`splitField`, e.g. "split"): one file may then serve several
 *   splits, each row going to the split it names.
 * - `json`: one labelled pair per JSON line (or array element), read by the `json` reader: CLUE's
 *   OCNLI/CMNLI `{sentence1, sentence2, label, id, genre, label0…label4}`. `fields` maps `text1`
 *   (premise), `text2` (hypothesis), `score` (the label) and `id`; default
 *   `{text1: sentence1, text2: sentence2, score: label, id: id}`.
 * - `delimited`: one labelled pair per row of a TSV/CSV file, read by the `delimited` reader (its
 *   options `delimiter`, `quoting`, `header`, `columns`; `fields` by header name or column number,
 *   default columns 1, 2, 3 = premise, hypothesis, label).
 *
 * Labels: `labels` maps each label (text, or a number written as text: `{"0": 1, "1": 0.5, "2": 0}`)
 * to a score; default `{entailment: 1, neutral: 0.5, contradiction: 0}`. A pair whose label is "-"
 * (CLUE/SNLI: the annotators did not agree) is counted as unused in every format; one whose label is
 * not in `labels` is unused in the json and delimited formats (CLUE files carry such rows), a reject
 * in SentEval files (whose labels are a fixed vocabulary).
 * For task ir, the labels with the highest score are entailments (positives) and those with the
 * lowest contradictions (hard negatives); the others (neutral) take part in no example.
 *
 * Task `sts`: each pair becomes an STS pair scored entailment 1, neutral 0.5, contradiction 0
 * (declare `labelRange: {values: [0, 0.5, 1]}`); a triplet gives (anchor, positive, 1) and
 * (anchor, negative, 0).
 * Task `ir`: pairs are grouped by premise (consecutive lines, as SNLI lists them). With
 * `irShape: triplets` (default, SimCSE style) every entailment x contradiction of a premise is one
 * example (query premise, one positive, one hard negative); with `irShape: grouped` each premise is one
 * example with all its entailments as positives and its contradictions as negatives. Pairs that take
 * part in no example (neutral ones; a premise without an entailment, or, for triplets, without a
 * contradiction) are counted as unused, never dropped silently.
 *
 * Option `encoding`: the text encoding of the files (default utf-8).
 */
import {join} from 'node:path'
import {excerpt, readJsonLines, readLines, requireDir, requireFile} from '../text-input.js'
import {DataError, type PreparedKind, type ReadItem, type Reader, type ReadRequest, type SourceLocation, type SplitSource, type Task} from '../types.js'
import {encodingOf, isObject, show, splitFiles, trainingKind} from './common.js'

export {nliOptions as optionsSchema} from './options.js'

const LABEL_SCORE: Record<string, number> = {entailment: 1, neutral: 0.5, contradiction: 0}

interface Pair {
  split: string
  at: SourceLocation
  premise: string
  hypothesis: string
  /** The label's role: entailment (highest score), contradiction (lowest) or another. */
  label: string
  score: number
  id?: unknown
  source?: (ref: string | number) => unknown
}

/** The label map, and which labels are IR positives (highest score) and hard negatives (lowest). */
function labelRoles(request: ReadRequest): {scores: Record<string, number>; role: (label: string) => string} {
  const scores = (request.options.labels as Record<string, number> | undefined) ?? LABEL_SCORE
  const values = Object.values(scores)
  const max = Math.max(...values)
  const min = Math.min(...values)
  if (!(max > min)) throw new DataError(`dataset ${request.dataset}: options.labels must give at least two different scores, got ${JSON.stringify(scores)}`)
  return {scores, role: (label) => (scores[label] === max ? 'entailment' : scores[label] === min ? 'contradiction' : 'neutral')}
}

function senteval(request: ReadRequest, split: SplitSource): {s1: string; s2: string; labels: string} {
  const dir = split.path ?? request.path
  if (!dir) throw new DataError(`dataset ${request.dataset}: the nli reader (senteval) needs path: <directory with s1.<split>, s2.<split>, labels.<split>>`)
  requireDir(dir, `dataset ${request.dataset}: SentEval NLI directory`)
  const f = {s1: join(dir, `s1.${split.name}`), s2: join(dir, `s2.${split.name}`), labels: join(dir, `labels.${split.name}`)}
  for (const file of Object.values(f)) requireFile(file, `dataset ${request.dataset}, split "${split.name}"`)
  return f
}

/** Reads the three parallel files in lockstep. */
async function* sentevalPairs(
  split: string,
  files: {s1: string; s2: string; labels: string},
  encoding: string,
  labels: ReturnType<typeof labelRoles>,
): AsyncGenerator<Pair | ReadItem> {
  const a = readLines(files.s1, encoding)
  const b = readLines(files.s2, encoding)
  const c = readLines(files.labels, encoding)
  for (;;) {
    const [x, y, z] = await Promise.all([a.next(), b.next(), c.next()])
    if (x.done || y.done || z.done) {
      if (!(x.done && y.done && z.done)) {
        const ended = [x.done && files.s1, y.done && files.s2, z.done && files.labels].filter(Boolean)
        const going = [!x.done && x.value, !y.done && y.value, !z.done && z.value].find(Boolean) as {line: number}
        throw new DataError(`parallel files differ in length: ${ended.join(', ')} ended before line ${going.line}`, {file: files.labels, line: going.line})
      }
      return
    }
    const at = {file: files.s1, line: x.value.line}
    const label = z.value.text.trim()
    if (x.value.text.trim() === '' && y.value.text.trim() === '' && label === '') continue
    if (label === '-') {
      yield {type: 'unused', split, at: {file: files.labels, line: z.value.line}, reason: 'label "-": no gold label (annotators disagreed)'}
      continue
    }
    if (!Object.hasOwn(labels.scores, label)) {
      const expected = Object.keys(labels.scores)
      yield {
        type: 'reject',
        split,
        at: {file: files.labels, line: z.value.line},
        reason: `label: expected ${expected.slice(0, -1).join(', ')} or ${expected[expected.length - 1]}, got ${JSON.stringify(label)}`,
        raw: excerpt(z.value.text),
      }
      continue
    }
    yield {split, at, premise: x.value.text, hypothesis: y.value.text, label: labels.role(label), score: labels.scores[label]}
  }
}

/** The pairs of the json and delimited formats, read by those readers (fields default to CLUE's names). */
async function* mappedPairs(request: ReadRequest, labels: ReturnType<typeof labelRoles>): AsyncGenerator<Pair | ReadItem> {
  const format = request.options.format as 'json' | 'delimited'
  const {format: _f, irShape: _s, splitField: _sf, labels: _l, ...rest} = request.options
  const mod = format === 'json' ? await import('./json.js') : await import('./delimited.js')
  const defaults: Record<string, string | number> | undefined = format === 'json' ? {text1: 'sentence1', text2: 'sentence2', score: 'label', id: 'id'} : rest.header ? undefined : {text1: 1, text2: 2, score: 3}
  const fields = request.fields ?? defaults
  const inner: ReadRequest = {...request, task: 'sts', options: rest, fields}
  for await (const item of mod.reader.read(inner)) {
    if (item.type !== 'row') {
      yield item
      continue
    }
    const row = item.row as {id?: unknown; text1: unknown; text2: unknown; score: unknown}
    const split = item.split ?? ''
    const label = row.score === undefined || row.score === null ? '' : String(row.score).trim()
    if (!Object.hasOwn(labels.scores, label)) {
      const reason = label === '-' ? 'label "-": no gold label (annotators disagreed)' : `label ${JSON.stringify(label)} is not in options.labels`
      yield {type: 'unused', split, at: item.at, reason}
      continue
    }
    if (typeof row.text1 !== 'string' || typeof row.text2 !== 'string') {
      // prepare names the bad field
      yield {...item, row: {...row, score: labels.scores[label]}} as ReadItem
      continue
    }
    yield {split, at: item.at, premise: row.text1, hypothesis: row.text2, label: labels.role(label), score: labels.scores[label], id: row.id, source: item.source}
  }
}

export const reader: Reader = {
  tasks: ['ir', 'sts'],
  kindsFor(task: Task): PreparedKind[] {
    return [trainingKind(task)]
  },
  async sources(request) {
    encodingOf(request)
    const format = request.options.format ?? 'senteval'
    if (format === 'senteval') return request.splits.flatMap((s) => Object.values(senteval(request, s)))
    if (format === 'triplets') return [...new Set(request.splits.map((s) => tripletFile(request, s)))]
    return splitFiles(request, 'nli')
  },
  async *read(request: ReadRequest): AsyncGenerator<ReadItem> {
    const format = (request.options.format as string | undefined) ?? 'senteval'
    if (format === 'triplets') {
      yield* readTriplets(request)
      return
    }
    const kind = trainingKind(request.task)
    const encoding = encodingOf(request)
    const labels = labelRoles(request)
    const shape = (request.options.irShape as string | undefined) ?? 'triplets'
    const pairs =
      format === 'senteval'
        ? (async function* () {
            for (const split of request.splits) yield* sentevalPairs(split.name, senteval(request, split), encoding, labels)
          })()
        : mappedPairs(request, labels)
    let group: Pair[] = []
    const flush = function* (): Generator<ReadItem> {
      if (group.length === 0) return
      const split = group[0].split
      const ent = group.filter((p) => p.label === 'entailment')
      const con = group.filter((p) => p.label === 'contradiction')
      const usable = ent.length > 0 && (shape === 'grouped' || con.length > 0)
      for (const p of group) {
        if (p.label === 'neutral') yield {type: 'unused', split, at: p.at, reason: 'neutral pair (IR uses entailment and contradiction)'}
        else if (!usable) yield {type: 'unused', split, at: p.at, reason: ent.length === 0 ? 'premise has no entailment hypothesis' : 'premise has no contradiction hypothesis'}
      }
      if (usable && shape === 'grouped') {
        yield {
          type: 'row',
          kind: 'ir-example',
          split,
          at: group[0].at,
          row: {id: String(group[0].at.line), query: group[0].premise, positives: ent.map((e) => e.hypothesis), negatives: con.map((c) => c.hypothesis)},
        }
      } else if (usable) {
        let n = 0
        for (const e of ent)
          for (const c of con)
            yield {type: 'row', kind: 'ir-example', split, at: e.at, row: {id: `${group[0].at.line}.${++n}`, query: e.premise, positives: [e.hypothesis], negatives: [c.hypothesis]}}
      }
      group = []
    }
    for await (const p of pairs) {
      if (!('premise' in p)) {
        yield p.type === 'reject' ? {...p, kind} : p
        continue
      }
      if (request.task === 'sts') {
        const item = {type: 'row', kind: 'sts-pair', split: p.split, at: p.at, row: {id: p.id ?? String(p.at.line), text1: p.premise, text2: p.hypothesis, score: p.score}}
        if (p.source) Object.defineProperty(item, 'source', {value: p.source})
        yield item as ReadItem
        continue
      }
      // Pairs are grouped by premise in consecutive runs (as SNLI and CLUE list them), split by split.
      if (group.length && (group[0].split !== p.split || group[0].premise.trim() !== p.premise.trim())) yield* flush()
      group.push(p)
    }
    yield* flush()
  },
}

function tripletFile(request: ReadRequest, split: SplitSource): string {
  const file = split.path ?? request.path
  if (!file) throw new DataError(`dataset ${request.dataset}: the nli reader (triplets) needs a file for split "${split.name}"`)
  requireFile(file, `dataset ${request.dataset}, split "${split.name}": triplets file`)
  return file
}

async function* readTriplets(request: ReadRequest): AsyncGenerator<ReadItem> {
  const splitField = request.options.splitField as string | undefined
  const names = {anchor: 'anchor', positive: 'positive', negative: 'negative', ...(request.fields ?? {})} as Record<string, string | number>
  for (const key of Object.keys(names))
    if (!['anchor', 'positive', 'negative'].includes(key)) throw new DataError(`fields.${key}: the nli triplets format maps anchor, positive, negative`)
  const kind = trainingKind(request.task)
  // Read each file once; with a split field, every row goes to the split it names.
  const byFile = new Map<string, string[]>()
  for (const split of request.splits) {
    const file = tripletFile(request, split)
    byFile.set(file, [...(byFile.get(file) ?? []), split.name])
  }
  for (const [file, splits] of byFile) {
    if (!splitField && splits.length > 1)
      throw new DataError(`dataset ${request.dataset}: splits ${splits.join(', ')} share ${file}; set options.splitField to tell its rows apart`)
    for await (const item of readJsonLines(file, encodingOf(request))) {
      let split = splits[0]
      if (item.error !== undefined) {
        yield {type: 'reject', kind, split, at: item.at, reason: item.error, raw: excerpt(item.raw)}
        continue
      }
      const o = item.value
      if (!isObject(o)) {
        yield {type: 'reject', kind, split, at: item.at, reason: `expected a JSON object {anchor, positive, negative}, got ${show(o)}`, raw: excerpt(JSON.stringify(o))}
        continue
      }
      if (splitField) {
        const s = o[splitField]
        if (typeof s !== 'string' || !splits.includes(s)) {
          yield {type: 'unused', split: null, at: item.at, reason: `${splitField} ${show(s)} is not one of the configured splits (${splits.join(', ')})`}
          continue
        }
        split = s
      }
      const anchor = o[String(names.anchor)]
      const positive = o[String(names.positive)]
      const negative = o[String(names.negative)]
      if (anchor === undefined || positive === undefined) {
        yield {type: 'reject', kind, split, at: item.at, reason: `missing field ${JSON.stringify(anchor === undefined ? names.anchor : names.positive)}`, raw: excerpt(JSON.stringify(o))}
        continue
      }
      if (request.task === 'ir') {
        yield {type: 'row', kind: 'ir-example', split, at: item.at, row: {id: String(item.at.line), query: anchor, positives: [positive], negatives: negative === undefined ? [] : [negative]}}
      } else {
        yield {type: 'row', kind: 'sts-pair', split, at: item.at, row: {id: `${item.at.line}.1`, text1: anchor, text2: positive, score: 1}}
        if (negative !== undefined) yield {type: 'row', kind: 'sts-pair', split, at: item.at, row: {id: `${item.at.line}.2`, text1: anchor, text2: negative, score: 0}}
      }
    }
  }
}
