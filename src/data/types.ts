/**
 * The contract between `prepare` and its readers. A reader turns files in some source format into
 * *draft* rows (values exactly as the source gave them, each with the file and line it came from);
 * `prepare` validates and converts drafts into the fixed Arrow record layouts, so every reader gets
 * the same checks and error messages for free.
 */
import type {JsonSchema} from '../registry/types.js'
import type {RecordKind} from '../io/arrow-records.js'
import {CodiembError} from '../core/errors.js'

/** What a prepared dataset is for: IR training examples, STS pairs, or a retrieval evaluation set. */
export type Task = 'ir' | 'sts' | 'eval'
export const TASKS: readonly Task[] = ['ir', 'sts', 'eval']

/** Where a row came from: the file and its 1-based line (for Parquet/Arrow sources: 1-based row). */
export interface SourceLocation {
  file: string
  line: number
}

/** Draft rows: fields as read from the source, unvalidated (`prepare` checks types and ranges). */
export interface StsDraft {
  id?: unknown
  text1: unknown
  text2: unknown
  score: unknown
  instruction?: unknown
}
export interface IrDraft {
  id?: unknown
  query: unknown
  instruction?: unknown
  positives: unknown
  negatives?: unknown
  positive_scores?: unknown
  negative_scores?: unknown
}
export interface CorpusDraft {
  id: unknown
  title?: unknown
  text: unknown
}
export interface QueryDraft {
  id: unknown
  text: unknown
  instruction?: unknown
}
export interface QrelDraft {
  query_id: unknown
  corpus_id: unknown
  score: unknown
}
export interface DraftOfKind {
  'ir-example': IrDraft
  'sts-pair': StsDraft
  corpus: CorpusDraft
  queries: QueryDraft
  qrels: QrelDraft
}
export type PreparedKind = keyof DraftOfKind

/** One item a reader yields. `split` null means the output is shared by all splits (a corpus). */
export type ReadItem =
  /** A draft row; `raw` is the source row as a reject would show it (rejects.jsonl), when the reader has it. */
  | {
      [K in PreparedKind]: {
        type: 'row'
        kind: K
        split: string | null
        at: SourceLocation
        row: DraftOfKind[K]
        raw?: string
        /**
         * The source row's value of a field reference (column name or 1-based number, JSON key or dotted
         * path; undefined when absent), for readers whose rows have named or numbered fields: row
         * filters and grouping by a source field read through it.
         */
        source?: (ref: string | number) => unknown
      }
    }[PreparedKind]
  /** A source row that cannot be read (malformed JSON, wrong column count...): an error unless --skip-invalid. */
  | {type: 'reject'; kind?: PreparedKind; split: string | null; at: SourceLocation; reason: string; raw?: string}
  /** A well-formed source row that this configuration does not use (e.g. a neutral NLI pair for IR triplets): counted, never an error. */
  | {type: 'unused'; split: string | null; at: SourceLocation; reason: string}
  /** Something read that looks wrong but is not an error (a header read as data...): reported among the dataset's warnings. */
  | {type: 'warning'; split: string | null; at?: SourceLocation; message: string}

/**
 * One split of a dataset: its name and, when the configuration maps it to a file, that file. A split
 * given several files (a list or a pattern, split-files.ts) appears once per file, in reading order,
 * each with the split's name: a reader that reads `request.splits` in order reads them all.
 */
export interface SplitSource {
  name: string
  /** Absolute path (file or directory), when the split was given one. */
  path?: string
}

/** What `prepare` asks a reader to read. */
export interface ReadRequest {
  dataset: string
  task: Task
  /** The dataset's own path (absolute; a file or directory), when configured. */
  path?: string
  splits: SplitSource[]
  /** Reader options, already validated against the reader's optionsSchema (defaults not filled in). */
  options: Record<string, unknown>
  /** Target field -> source field (column name, 1-based column index, or JSON key/dotted path). */
  fields?: Record<string, string | number>
}

export interface Reader {
  /** The tasks this reader can produce. */
  readonly tasks: readonly Task[]
  /** Record kinds it yields for `task` (in the order it yields them). */
  kindsFor(task: Task): PreparedKind[]
  /** The files it will read for this request (their sha256 goes into the output metadata). Throws on a missing input. */
  sources(request: ReadRequest): Promise<string[]>
  /** Streams items; throws DataError (file:line) on input it cannot continue past. */
  read(request: ReadRequest): AsyncIterable<ReadItem>
}

/** What a reader module's registry entry loads. */
export interface ReaderModule {
  reader: Reader
  optionsSchema: JsonSchema
}

/** Bad input or configuration, with where it was found. Exit code 2. */
export class DataError extends CodiembError {
  override name = 'DataError'
  constructor(
    message: string,
    readonly at?: SourceLocation,
  ) {
    super(at ? `${at.file}:${at.line}: ${message}` : message)
  }
}

export type {RecordKind}
