/**
 * `sts-gold` reader: sentence pairs in one file, gold scores in a parallel file — the SemEval STS
 * 2012–2016 layout — into STS pairs.
 *
 * Inputs: each split's files are the pair files (`STS.input.<name>.txt`: two tab-separated sentences
 * per line, no CSV quoting, quotes are text); a split made of several sources lists them or gives a
 * pattern (`splits: {test: sts2015/STS.input.*.txt}`), read in order. Each pair file's gold file is
 * found by replacing, in its name, `gold.replace` with `gold.with` (default `.input.` -> `.gs.`:
 * `STS.input.x.txt` -> `STS.gs.x.txt`, `STS2016.input.x.txt` -> `STS2016.gs.x.txt`): one score per
 * line (0–5), line i scoring pair line i.
 *
 * - A blank gold line is a pair the organisers did not score: counted as unused ("unscored pair").
 * - A blank line in both files is counted as unused too; files of different lengths are an error
 *   naming the file that ended first.
 * - `fields` may move the sentences (`{text1: 1, text2: 2}` by default, 1-based columns of the pair
 *   file); extra columns (source ids) are ignored unless `columns` asks for an exact count.
 * - Row ids are `<name>:<line>` (`MSRpar:12`), so they stay unique across the files of a split.
 *
 * Options: `delimiter` (tab), `columns`, `gold` {replace, with}, `encoding`. The score is the gold
 * line as written; `prepare` checks it is a number within the dataset's `labelRange`.
 */
import {basename, dirname, join} from 'node:path'
import {excerpt, readLines, requireFile} from '../text-input.js'
import {DataError, type PreparedKind, type ReadItem, type Reader, type ReadRequest, type SplitSource} from '../types.js'
import {encodingOf, splitFile} from './common.js'

export {stsGoldOptions as optionsSchema} from './options.js'

interface Options {
  delimiter?: string
  columns?: number
  gold?: {replace?: string; with?: string}
}

/** The pair file of a split source and its gold file (checked to exist). */
function pairFiles(request: ReadRequest, split: SplitSource): {input: string; gold: string; name: string} {
  const input = splitFile(request, split, 'sts-gold')
  const opts = request.options as Options
  const from = opts.gold?.replace ?? '.input.'
  const to = opts.gold?.with ?? '.gs.'
  const base = basename(input)
  if (!base.includes(from))
    throw new DataError(`dataset ${request.dataset}, split "${split.name}": ${input}: its name does not contain ${JSON.stringify(from)} (options.gold.replace), so its gold file cannot be named`)
  const gold = join(dirname(input), base.replace(from, to))
  requireFile(gold, `dataset ${request.dataset}, split "${split.name}": gold file of ${base}`)
  return {input, gold, name: base.slice(base.indexOf(from) + from.length).replace(/\.txt$/, '')}
}

export const reader: Reader = {
  tasks: ['sts'],
  kindsFor: (): PreparedKind[] => ['sts-pair'],
  async sources(request) {
    encodingOf(request)
    return [...new Set(request.splits.flatMap((s) => Object.values(pairFiles(request, s)).slice(0, 2)))]
  },
  async *read(request: ReadRequest): AsyncGenerator<ReadItem> {
    const opts = request.options as Options
    const delimiter = opts.delimiter ?? '\t'
    const encoding = encodingOf(request)
    const fields = {text1: 1, text2: 2, ...(request.fields ?? {})} as Record<string, string | number>
    for (const [target, ref] of Object.entries(fields))
      if (!['text1', 'text2', 'id'].includes(target) || typeof ref !== 'number')
        throw new DataError(`dataset ${request.dataset}: fields.${target}: the sts-gold reader maps text1, text2 (and id) to 1-based columns of the pair file; the score comes from the gold file`)
    const need = Math.max(...Object.values(fields).map(Number))
    for (const split of request.splits) {
      const {input, gold, name} = pairFiles(request, split)
      const pairs = readLines(input, encoding)
      const golds = readLines(gold, encoding)
      for (;;) {
        const [p, g] = await Promise.all([pairs.next(), golds.next()])
        if (p.done || g.done) {
          if (!p.done || !g.done) {
            const ended = p.done ? input : gold
            const line = (p.done ? g.value! : p.value!).line
            // a trailing blank line in the longer file is not a missing pair
            const rest = p.done ? g.value!.text : p.value!.text
            if (rest.trim() === '' && (await (p.done ? golds : pairs).next()).done) break
            throw new DataError(`parallel files differ in length: ${ended} ended before line ${line} of ${p.done ? gold : input}`, {file: p.done ? gold : input, line})
          }
          break
        }
        const at = {file: input, line: p.value.line}
        const text = p.value.text
        const score = g.value.text.trim()
        if (text.trim() === '' && score === '') {
          yield {type: 'unused', split: split.name, at, reason: 'blank line in both files'}
          continue
        }
        if (score === '') {
          yield {type: 'unused', split: split.name, at, reason: 'unscored pair (blank gold line)'}
          continue
        }
        const cols = text.split(delimiter)
        if (opts.columns !== undefined ? cols.length !== opts.columns : cols.length < need) {
          const expected = opts.columns !== undefined ? `${opts.columns}` : `at least ${need}`
          yield {type: 'reject', kind: 'sts-pair', split: split.name, at, reason: `wrong column count: expected ${expected} fields, got ${cols.length}`, raw: excerpt(text)}
          continue
        }
        const item = {
          type: 'row',
          kind: 'sts-pair',
          split: split.name,
          at,
          row: {id: fields.id ? cols[Number(fields.id) - 1] : `${name}:${at.line}`, text1: cols[Number(fields.text1) - 1], text2: cols[Number(fields.text2) - 1], score},
          raw: excerpt(`${text}\t[gold ${score}]`),
        }
        // filters read the pair file's columns by number
        Object.defineProperty(item, 'source', {value: (ref: string | number) => (typeof ref === 'number' ? cols[ref - 1] : undefined)})
        yield item as ReadItem
      }
    }
  },
}
