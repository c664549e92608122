/**
 * Reading one prepared training file (kind ir-example or sts-pair) and trusting nothing in it:
 *
 * 1. The file: a missing, empty, truncated or damaged file is an error naming it (io/record-file.ts
 *    checks the footer's structure and checksum on open and each record batch's checksum as it is
 *    read). A file without checksums (prepared by an earlier codiemb) is checked against the sha256
 *    that manifest.json recorded for it, read in full once; with no manifest entry either, it is
 *    accepted with a warning, its rows still checked.
 * 2. The manifest: when `<out>/manifest.json` beside the file lists it, its kind, rows and bytes must
 *    be the file's (a swapped or half-copied file is refused), and its dataset's label range is the
 *    one STS scores are checked against.
 * 3. The columns: every column of the layout, of its type (io/record-checks.ts schemaProblems).
 * 4. The rows: numeric, count and length checks from each record batch's columns and offsets as it
 *    is read (non-finite or out-of-range scores, raw scores outside the label range, empty texts,
 *    IR examples without a positive). Every problem is collected; the error lists the first few and
 *    the count. Text checks run later, as batches are assembled (data.ts batchTexts).
 *
 * Every check is per row or per record batch, so the same code serves a trainer that streams rows.
 */
import {existsSync} from 'node:fs'
import {dirname, join, relative, resolve} from 'node:path'
import {CodiembError} from '../core/errors.js'
import {hashFile} from '../data/text-input.js'
import {MANIFEST, readManifest, type ManifestFile} from '../data/prepare.js'
import {RecordFile, batchToRows, type IrExampleRecord, type StsPairRecord} from '../io/arrow-records.js'
import {RecordChecker, describeLabelRange, formatRowProblem, type LabelRangeLike, type RowProblem} from '../io/record-checks.js'

export class TrainingDataError extends CodiembError {
  override name = 'TrainingDataError'
}

/** Row problems listed in full in an error message; the rest are counted. */
const LISTED_PROBLEMS = 5

/** What a training file holds, checked. */
export type TrainingFile =
  | {kind: 'ir-example'; rows: IrExampleRecord[]; fileRows: number[]; dropped: number; dataset?: string; digest?: string; warnings: string[]}
  | {kind: 'sts-pair'; rows: StsPairRecord[]; fileRows: number[]; dropped: number; dataset?: string; digest?: string; warnings: string[]}

/** The manifest.json of the prepare output a file sits in (`<out>/<dataset>/<file>`), and the file's entry, when it lists it. */
function manifestEntry(path: string): {manifest: string; entry: ManifestFile; labelRange?: LabelRangeLike} | undefined {
  const out = dirname(dirname(resolve(path)))
  const manifestPath = join(out, MANIFEST)
  if (!existsSync(manifestPath)) return undefined
  const manifest = readManifest(out)
  const rel = relative(out, resolve(path)).split('\\').join('/')
  const entry = manifest?.files?.find((f) => f.path.split('\\').join('/') === rel)
  if (!entry) return undefined
  return {manifest: manifestPath, entry, labelRange: manifest?.datasets?.[entry.dataset]?.labelRange}
}

/** The label range an STS file's scores are checked against: the manifest's, else the file's own `codiemb.label_range`; both must agree. */
function labelRangeOf(path: string, metadata: Record<string, string>, listed: ReturnType<typeof manifestEntry>): {range: LabelRangeLike; source: string} | undefined {
  let own: LabelRangeLike | undefined
  const raw = metadata['codiemb.label_range']
  if (raw !== undefined) {
    try {
      own = JSON.parse(raw) as LabelRangeLike
    } catch (error) {
      throw new TrainingDataError(`${path}: codiemb.label_range is not valid JSON (${(error as Error).message})`)
    }
    if (!(own && Number.isFinite(own.min) && Number.isFinite(own.max) && own.max > own.min))
      throw new TrainingDataError(`${path}: codiemb.label_range: expected {"min", "max"} with max > min, got ${raw}`)
  }
  const declared = listed?.labelRange
  if (declared && own && JSON.stringify([declared.min, declared.max, declared.values ?? null]) !== JSON.stringify([own.min, own.max, own.values ?? null]))
    throw new TrainingDataError(
      `${path}: its label range ${describeLabelRange(own)} (codiemb.label_range) differs from ${describeLabelRange(declared)}, which ${listed!.manifest} declares for dataset ${listed!.entry.dataset}; re-run \`codiemb prepare\``,
    )
  if (declared) return {range: declared, source: `dataset ${listed!.entry.dataset} in ${listed!.manifest}`}
  if (own) return {range: own, source: `${path} (codiemb.label_range)`}
  return undefined
}

/** Collects row problems: all are counted, the first few kept for the message. */
class ProblemList {
  count = 0
  readonly first: RowProblem[] = []
  add = (problem: RowProblem): void => {
    this.count++
    if (this.first.length < LISTED_PROBLEMS) this.first.push(problem)
  }
}

/**
 * Reads and checks a prepared training file (see the module comment). IR rows with fewer than
 * `negatives` hard negatives are dropped and counted (the loss cannot use them; the layout allows
 * them); every other problem is an error.
 */
export async function readTrainingFile(path: string, negatives: number): Promise<TrainingFile> {
  if (!existsSync(path)) throw new TrainingDataError(`${path}: training file not found (run \`codiemb prepare\` first)`)
  const records = await RecordFile.open(path)
  try {
    const kind = records.kind
    if (kind !== 'ir-example' && kind !== 'sts-pair')
      throw new TrainingDataError(`${path}: expected an "ir-example" or "sts-pair" record file, got ${kind === undefined ? 'a file without codiemb.kind metadata' : `"${kind}"`}`)
    const metadata = records.metadata
    const listed = manifestEntry(path)
    if (listed) {
      const {entry, manifest} = listed
      const rows = records.recordedRows
      if (entry.kind !== kind || entry.bytes !== records.bytes || (rows !== undefined && entry.rows !== rows))
        throw new TrainingDataError(
          `${path}: is not the file ${manifest} lists (${entry.kind}, ${entry.rows} rows, ${entry.bytes} bytes); it is ${kind}, ${rows ?? '?'} rows, ${records.bytes} bytes. Re-run \`codiemb prepare\``,
        )
    }
    const labels = kind === 'sts-pair' ? labelRangeOf(path, metadata, listed) : undefined
    const checker = new RecordChecker(kind, {labelRange: labels?.range, labelRangeSource: labels?.source})
    const layout = `data-schemas/records/${kind}.schema.json`
    const columns = checker.schemaProblems(records.schema)
    if (columns.length) throw new TrainingDataError(`${path}: the columns do not match the ${kind} layout (${layout}):\n${columns.map((p) => `  ${p}`).join('\n')}`)

    const warnings: string[] = []
    let digest = records.contentDigest
    if (records.checksums === 'none') {
      if (listed) {
        const {sha256} = await hashFile(path)
        if (sha256 !== listed.entry.sha256)
          throw new TrainingDataError(`${path}: its sha256 ${sha256} differs from the ${listed.entry.sha256} that ${listed.manifest} recorded: the file changed or is damaged; re-run \`codiemb prepare\``)
        digest = `sha256:${sha256}`
      } else
        warnings.push(`${path}: carries no checksums (prepared by an earlier codiemb or another tool) and no manifest.json lists it: damage to it cannot be detected; re-run \`codiemb prepare\` to add them`)
    }

    const problems = new ProblemList()
    const rows: (IrExampleRecord | StsPairRecord)[] = []
    const fileRows: number[] = []
    let dropped = 0
    for await (const {batch, firstRow} of records.batches()) {
      const before = problems.count
      checker.columnProblems(batch, firstRow, problems.add)
      if (problems.count > before) continue // the run stops; keep only counting
      batchToRows<IrExampleRecord | StsPairRecord>(batch).forEach((row, i) => {
        if (kind === 'ir-example' && (row as IrExampleRecord).negatives.length < negatives) {
          dropped++
          return
        }
        rows.push(row)
        fileRows.push(firstRow + i)
      })
    }
    if (problems.count > 0) {
      const against = labels ? ` and the label range ${describeLabelRange(labels.range)} of ${labels.source}` : ''
      const more = problems.count - problems.first.length
      throw new TrainingDataError(
        `${path}: ${problems.count} problem${problems.count === 1 ? '' : 's'} against the ${kind} layout (${layout})${against}:\n` +
          problems.first.map((p) => `  ${formatRowProblem(undefined, p)}`).join('\n') +
          (more > 0 ? `\n  … and ${more} more` : '') +
          '\nRows are numbered from 0 in file order. Fix the source and re-run `codiemb prepare`.',
      )
    }
    const dataset = metadata['codiemb.dataset']
    return {kind, rows, fileRows, dropped, dataset, digest, warnings} as TrainingFile
  } finally {
    await records.close()
  }
}
