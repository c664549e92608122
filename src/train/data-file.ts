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
import {RecordRows} from '../io/record-rows.js'
import {RowNumbers} from './row-numbers.js'
import type {Data} from 'apache-arrow'
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

/** An open prepared file whose footer, manifest entry and columns passed the checks of the module comment (1–3). */
interface CheckedFile {
  records: RecordFile
  kind: 'ir-example' | 'sts-pair'
  checker: RecordChecker
  labels?: {range: LabelRangeLike; source: string}
  layout: string
  digest?: string
  warnings: string[]
}

async function openChecked(path: string): Promise<CheckedFile> {
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
    return {records, kind, checker, labels, layout, digest, warnings}
  } catch (error) {
    await records.close()
    throw error
  }
}

/** The error listing a file's row problems (the first few, and the count). */
function problemsError(path: string, file: CheckedFile, problems: ProblemList): TrainingDataError {
  const {kind, labels, layout} = file
  const against = labels ? ` and the label range ${describeLabelRange(labels.range)} of ${labels.source}` : ''
  const more = problems.count - problems.first.length
  return new TrainingDataError(
    `${path}: ${problems.count} problem${problems.count === 1 ? '' : 's'} against the ${kind} layout (${layout})${against}:\n` +
      problems.first.map((p) => `  ${formatRowProblem(undefined, p)}`).join('\n') +
      (more > 0 ? `\n  … and ${more} more` : '') +
      '\nRows are numbered from 0 in file order. Fix the source and re-run `codiemb prepare`.',
  )
}

/**
 * Reads and checks a prepared training file into memory (see the module comment). IR rows with
 * fewer than `negatives` hard negatives are dropped and counted (the loss cannot use them; the
 * layout allows them); every other problem is an error. The trainer streams instead
 * (openTrainingFile); this reads small files whole: validation sets, and the reference the
 * streamed trainer is tested against.
 */
export async function readTrainingFile(path: string, negatives: number): Promise<TrainingFile> {
  const file = await openChecked(path)
  const {records, kind, checker} = file
  try {
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
    if (problems.count > 0) throw problemsError(path, file, problems)
    return {kind, rows, fileRows, dropped, dataset: records.metadata['codiemb.dataset'], digest: file.digest, warnings: file.warnings} as TrainingFile
  } finally {
    await records.close()
  }
}

/** A prepared file open for row-level reads: what planning needs, and the rows read on demand. */
export interface StreamedTrainingFile {
  kind: 'ir-example' | 'sts-pair'
  /** The usable rows' file row numbers (IR rows with too few negatives left out), ascending. */
  fileRows: RowNumbers
  dropped: number
  dataset?: string
  digest?: string
  warnings: string[]
  rows: RecordRows
}

/**
 * Opens and checks a prepared training file without reading a text (see the module comment):
 * the footer, each record batch's metadata, then its validity, offset and numeric buffers, from
 * which the column checks run and each IR row's negatives are counted. Texts are read per row when
 * a batch is assembled (RecordRows), each record batch checked against its checksum on first read.
 * The caller closes `rows.file`.
 */
export async function openTrainingFile(path: string, negatives: number): Promise<StreamedTrainingFile> {
  const file = await openChecked(path)
  const {records, kind, checker} = file
  try {
    const rows = await RecordRows.open(records)
    const recorded = records.recordedRows
    if (recorded !== undefined && recorded !== rows.rows)
      throw new TrainingDataError(`${path}: the footer records ${recorded} rows (codiemb.rows), its record batches hold ${rows.rows}; the file is damaged`)
    const problems = new ProblemList()
    // Only the rows left out are listed (usually none): RowNumbers maps usable rows to file rows.
    const leftOut: number[] = []
    for (const place of rows.batches) {
      const batch = await rows.columnsOnly(place.index)
      const before = problems.count
      // Ids need text bytes: the listed problems get theirs below.
      checker.columnProblems(batch, place.firstRow, problems.add, {ids: false})
      if (problems.count > before) {
        // A damaged record batch shows as a checksum error, not as row problems its damage made up.
        await records.verifyBatch(place.index)
        continue
      }
      const offsets = kind === 'ir-example' ? ((batch.getChild('negatives')!.data[0] as Data).valueOffsets as Int32Array) : undefined
      for (let i = 0; i < place.numRows; i++) {
        if (offsets && offsets[i + 1]! - offsets[i]! < negatives) leftOut.push(place.firstRow + i)
      }
    }
    if (problems.count > 0) {
      for (const p of problems.first) {
        const {id} = await rows.row<{id: unknown}>(p.row)
        if (id !== null && id !== undefined) p.id = String(id)
      }
      throw problemsError(path, file, problems)
    }
    return {kind, fileRows: RowNumbers.without(rows.rows, leftOut), dropped: leftOut.length, dataset: records.metadata['codiemb.dataset'], digest: file.digest, warnings: file.warnings, rows}
  } catch (error) {
    await records.close()
    throw error
  }
}
