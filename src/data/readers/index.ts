import type {RegistryEntry} from '../../registry/types.js'
import * as options from './options.js'

/**
 * Built-in readers. Each entry imports its implementation lazily in load(); `meta.tasks` lists the
 * tasks it can prepare. A reader module exports `{reader, optionsSchema}` (see src/data/types.ts).
 */
export const entries: RegistryEntry[] = [
  {
    kind: 'reader',
    name: 'beir',
    description: 'BEIR/MTEB retrieval layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) -> corpus/queries/qrels, or IR examples from qrels positives',
    optionsSchema: options.beirOptions,
    meta: {tasks: ['eval', 'ir']},
    load: async () => import('./beir.js'),
  },
  {
    kind: 'reader',
    name: 'codiemb-jsonl',
    description: 'CoDiEmb training JSON lines: task_type, query/positives/negatives as [task instruction, instance instruction, text], scores',
    optionsSchema: options.codiembJsonlOptions,
    meta: {tasks: ['ir', 'sts']},
    load: async () => import('./codiemb-jsonl.js'),
  },
  {
    kind: 'reader',
    name: 'flagembedding-jsonl',
    description: 'FlagEmbedding/BGE JSON lines {query, pos[], neg[], pos_scores?, neg_scores?, prompt?} -> IR examples',
    optionsSchema: options.flagembeddingJsonlOptions,
    meta: {tasks: ['ir']},
    load: async () => import('./flagembedding-jsonl.js'),
  },
  {
    kind: 'reader',
    name: 'delimited',
    description: 'TSV/CSV with or without header, columns by name or 1-based index, plain split or RFC 4180 quoting',
    optionsSchema: options.delimitedOptions,
    meta: {tasks: ['sts', 'ir']},
    load: async () => import('./delimited.js'),
  },
  {
    kind: 'reader',
    name: 'json',
    description: 'JSON lines or a JSON array of objects, fields mapped by name; numeric strings accepted as numbers',
    optionsSchema: options.jsonOptions,
    meta: {tasks: ['sts', 'ir']},
    load: async () => import('./json.js'),
  },
  {
    kind: 'reader',
    name: 'nli',
    description: 'NLI premise/hypothesis/label (SentEval s1/s2/labels files or triplet JSON lines) -> IR triplets or STS pairs (1 / 0.5 / 0)',
    optionsSchema: options.nliOptions,
    meta: {tasks: ['ir', 'sts']},
    load: async () => import('./nli.js'),
  },
  {
    kind: 'reader',
    name: 'sts-gold',
    description: 'Sentence pairs with scores in a parallel gold file (SemEval STS 2012-2016: STS.input.<name>.txt + STS.gs.<name>.txt; blank gold = unscored)',
    optionsSchema: options.stsGoldOptions,
    meta: {tasks: ['sts']},
    load: async () => import('./sts-gold.js'),
  },
  {
    kind: 'reader',
    name: 'parquet',
    description: 'Parquet files or shard directories (Hugging Face hub datasets), read row group by row group with hyparquet',
    optionsSchema: options.parquetOptions,
    meta: {tasks: ['sts', 'ir']},
    load: async () => import('./parquet.js'),
  },
  {
    kind: 'reader',
    name: 'hf-arrow',
    description: 'Arrow files written by Hugging Face datasets (save_to_disk directories, cache files), streamed batch by batch',
    optionsSchema: options.hfArrowOptions,
    meta: {tasks: ['sts', 'ir']},
    load: async () => import('./hf-arrow.js'),
  },
]
