/**
 * The layouts of codiemb's Arrow record files: one record kind per file, each with a fixed Arrow
 * schema (documented in data-schemas/README.md) and the schema metadata keys every file carries.
 * The writer (arrow-writer.ts) and the reader (arrow-records.ts) share these definitions.
 */
import {Field, FixedSizeList, Float32, Int32, List, Utf8, type DataType} from 'apache-arrow'
import {CodiembError} from '../core/errors.js'

export const RECORD_KINDS = ['ir-example', 'sts-pair', 'corpus', 'queries', 'qrels', 'embeddings'] as const
export type RecordKind = (typeof RECORD_KINDS)[number]

/** Version of the record layouts (metadata `codiemb.layout`); bumped when a layout changes incompatibly. */
export const RECORDS_VERSION = '1'

export interface IrExampleRecord {
  id: string
  query: string
  /** Task instruction ("" when none). */
  instruction: string
  positives: string[]
  negatives: string[]
  positive_scores: number[] | null
  negative_scores: number[] | null
}
export interface StsPairRecord {
  id: string
  text1: string
  text2: string
  /** Normalised to [0, 1] from the dataset's declared label range. */
  score: number
  /** The label as the source gave it. */
  raw_score: number
  instruction: string
}
export interface CorpusRecord {
  id: string
  title: string
  text: string
}
export interface QueryRecord {
  id: string
  text: string
  instruction: string
}
export interface QrelRecord {
  query_id: string
  corpus_id: string
  score: number
}
export interface EmbeddingRecord {
  id: string
  text: string
  vector: Float32Array
}
export interface RecordOfKind {
  'ir-example': IrExampleRecord
  'sts-pair': StsPairRecord
  corpus: CorpusRecord
  queries: QueryRecord
  qrels: QrelRecord
  embeddings: EmbeddingRecord
}
export type AnyRecord = RecordOfKind[RecordKind]

/** Metadata keys every codiemb record file carries in its Arrow schema. */
export const META = {
  kind: 'codiemb.kind',
  dataset: 'codiemb.dataset',
  task: 'codiemb.task',
  instruction: 'codiemb.instruction',
  /** The codiemb package version that wrote the file. */
  version: 'codiemb.version',
  /** RECORDS_VERSION of the layout. */
  layout: 'codiemb.layout',
  /** Row count, written into the footer's copy of the schema when the file is finished. */
  rows: 'codiemb.rows',
} as const

export class RecordFileError extends CodiembError {
  override name = 'RecordFileError'
}

const utf8 = () => new Utf8()
const listOf = (child: DataType, nullable = false) => new List(new Field('item', child, nullable))

/** The Arrow schema (without metadata) of a record kind. `dim` is required for `embeddings`. */
export function recordFields(kind: RecordKind, dim?: number): Field[] {
  switch (kind) {
    case 'ir-example':
      return [
        new Field('id', utf8(), false),
        new Field('query', utf8(), false),
        new Field('instruction', utf8(), false),
        new Field('positives', listOf(utf8()), false),
        new Field('negatives', listOf(utf8()), false),
        new Field('positive_scores', listOf(new Float32()), true),
        new Field('negative_scores', listOf(new Float32()), true),
      ]
    case 'sts-pair':
      return [
        new Field('id', utf8(), false),
        new Field('text1', utf8(), false),
        new Field('text2', utf8(), false),
        new Field('score', new Float32(), false),
        new Field('raw_score', new Float32(), false),
        new Field('instruction', utf8(), false),
      ]
    case 'corpus':
      return [new Field('id', utf8(), false), new Field('title', utf8(), false), new Field('text', utf8(), false)]
    case 'queries':
      return [new Field('id', utf8(), false), new Field('text', utf8(), false), new Field('instruction', utf8(), false)]
    case 'qrels':
      return [new Field('query_id', utf8(), false), new Field('corpus_id', utf8(), false), new Field('score', new Int32(), false)]
    case 'embeddings': {
      if (!Number.isInteger(dim) || (dim as number) < 1) throw new RecordFileError(`embeddings need a vector dimension >= 1, got ${dim}`)
      return [
        new Field('id', utf8(), false),
        new Field('text', utf8(), false),
        new Field('vector', new FixedSizeList(dim as number, new Field('item', new Float32(), false)), false),
      ]
    }
    default:
      throw new RecordFileError(`unknown record kind ${JSON.stringify(kind)}; expected one of ${RECORD_KINDS.join(', ')}`)
  }
}
