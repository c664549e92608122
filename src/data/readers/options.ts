/**
 * Option schemas of the built-in readers, kept apart from the implementations so that listing the
 * registry imports none of them.
 */
import type {JsonSchema} from '../../registry/types.js'

/** The `encoding` option of every reader of text files (checked against TextDecoder's labels when read). */
const encoding: JsonSchema = {
  type: 'string',
  minLength: 1,
  default: 'utf-8',
  description: 'text encoding of the input files: a label TextDecoder knows (utf-8, gbk, gb18030, big5, shift_jis, euc-kr, utf-16le, windows-1252, …); bytes invalid in it are an error at their line',
}

export const delimitedOptions: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    delimiter: {type: 'string', minLength: 1, maxLength: 1, default: '\t', description: 'field separator (one character)'},
    quoting: {enum: ['none', 'csv'], default: 'none', description: 'none: plain split, quotes are text; csv: RFC 4180 quoted fields'},
    header: {enum: [true, false, 'auto'], default: false, description: "the first line of each file holds column names: false (default; a first line that looks like a header is warned about), true, or auto (a header when fields name columns or the line looks like one)"},
    columns: {type: 'integer', minimum: 1, description: 'exact number of fields per row (default: header length, or no check)'},
    encoding,
  },
}

export const jsonOptions: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    format: {enum: ['auto', 'lines', 'array'], default: 'auto', description: 'JSON lines, one JSON array, or detect from the first character'},
    encoding,
  },
}

export const flagembeddingJsonlOptions: JsonSchema = {type: 'object', additionalProperties: false, properties: {encoding}}

export const codiembJsonlOptions: JsonSchema = {type: 'object', additionalProperties: false, properties: {encoding}}

export const beirOptions: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    corpus: {type: 'string', minLength: 1, default: 'corpus.jsonl'},
    queries: {type: 'string', minLength: 1, default: 'queries.jsonl'},
    qrels: {type: 'string', minLength: 1, default: 'qrels', description: 'directory holding <split>.tsv'},
    minScore: {type: 'number', default: 1, description: 'task ir: qrels score that makes a document a positive'},
    encoding,
  },
}

export const nliOptions: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    format: {enum: ['senteval', 'triplets', 'json', 'delimited'], default: 'senteval', description: 'senteval: s1/s2/labels files under path; triplets: {anchor, positive, negative} JSON lines; json: labelled pairs per JSON line/array element (CLUE OCNLI/CMNLI); delimited: labelled pairs per TSV/CSV row'},
    labels: {
      type: 'object',
      minProperties: 2,
      additionalProperties: {type: 'number'},
      description: 'label -> score (default {entailment: 1, neutral: 0.5, contradiction: 0}); task ir: highest-scored labels are positives, lowest hard negatives; json/delimited: "-" and labels not listed are unused',
    },
    delimiter: {type: 'string', minLength: 1, maxLength: 1, description: 'format delimited: field separator (default tab)'},
    quoting: {enum: ['none', 'csv'], description: 'format delimited: as the delimited reader'},
    header: {enum: [true, false, 'auto'], description: 'format delimited: as the delimited reader'},
    columns: {type: 'integer', minimum: 1, description: 'format delimited: exact number of fields per row'},
    irShape: {enum: ['triplets', 'grouped'], default: 'triplets', description: 'task ir, senteval: one example per (entailment, contradiction) or per premise'},
    splitField: {type: 'string', minLength: 1, description: 'triplets: the field naming each row\'s split'},
    encoding,
  },
}

export const stsGoldOptions: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    delimiter: {type: 'string', minLength: 1, maxLength: 1, default: '\t', description: 'field separator of the pair file (one character; no quoting)'},
    columns: {type: 'integer', minimum: 1, description: 'exact number of fields per pair line (default: at least the mapped columns)'},
    gold: {
      type: 'object',
      additionalProperties: false,
      properties: {replace: {type: 'string', minLength: 1, default: '.input.'}, with: {type: 'string', minLength: 1, default: '.gs.'}},
      description: "the gold file's name: the pair file's name with `replace` replaced by `with`",
    },
    encoding,
  },
}

export const parquetOptions: JsonSchema = {type: 'object', additionalProperties: false, properties: {}}

export const hfArrowOptions: JsonSchema = {type: 'object', additionalProperties: false, properties: {}}

/** Every built-in reader's options schema by reader name. */
export const readerOptionsSchema: Record<string, JsonSchema> = {
  beir: beirOptions,
  'codiemb-jsonl': codiembJsonlOptions,
  'flagembedding-jsonl': flagembeddingJsonlOptions,
  delimited: delimitedOptions,
  json: jsonOptions,
  nli: nliOptions,
  'sts-gold': stsGoldOptions,
  parquet: parquetOptions,
  'hf-arrow': hfArrowOptions,
}
