/**
 * `codiemb embed` as a library function: texts from a file (plain text, JSON lines, or Arrow) are
 * encoded in chunks and written, in input order, to an Arrow `embeddings` record file
 * (id Utf8, text Utf8, vector FixedSizeList<Float32>[dim]) atomically.
 *
 * Inputs:
 *   .txt            one text per line; id = the 1-based line number; blank lines are skipped
 *                   (.txt and .jsonl are decoded strictly in `encoding`, default utf-8)
 *   .jsonl / .json  JSON lines (or one JSON array) of objects; text from `textField` (default "text"),
 *                   id from `idField` (default "id", else the line/element number)
 *   .arrow/.feather/.ipc  an Arrow IPC file with a `text` column (codiemb corpus files: "title text")
 * Memory is bounded by one chunk of texts and vectors (chunkSize), not by the file.
 */
import {basename, extname} from 'node:path'
import type {Encoder, EncodeOptions} from './encoder.js'
import type {PoolingMode} from './pooling.js'
import {describePrompt, literalPrompt} from '../core/prompts.js'
import {CodiembError} from '../core/errors.js'
import type {EmbedProgressEvent} from '../core/events.js'
import type {ShardGroup, VectorBlock} from '../tensor/shards.js'

export interface TextItem {
  id: string
  text: string
}

export class EmbedInputError extends CodiembError {
  override name = 'EmbedInputError'
}

export interface TextSourceOptions {
  textField?: string
  idField?: string
  /** Text encoding of .txt/.jsonl input (a TextDecoder label, default utf-8); invalid bytes are an error at their line. */
  encoding?: string
}

/** Streams {id, text} from a txt, jsonl/json or Arrow file. */
export async function* readTextItems(file: string, options: TextSourceOptions = {}): AsyncGenerator<TextItem> {
  const ext = extname(file).toLowerCase()
  const textField = options.textField ?? 'text'
  const idField = options.idField ?? 'id'
  const {requireFile} = await import('../data/text-input.js')
  try {
    requireFile(file)
  } catch (error) {
    throw new EmbedInputError((error as Error).message)
  }
  if (ext === '.txt' || ext === '.text' || ext === '.tsv') {
    const {readLines} = await import('../data/text-input.js')
    for await (const {line, text} of readLines(file, options.encoding)) if (text.trim() !== '') yield {id: String(line), text}
    return
  }
  if (ext === '.jsonl' || ext === '.json' || ext === '.ndjson') {
    const {readJsonLines, readJsonArray, detectJsonFormat} = await import('../data/text-input.js')
    const items = (await detectJsonFormat(file, options.encoding)) === 'array' ? readJsonArray(file, options.encoding) : readJsonLines(file, options.encoding)
    let n = 0
    for await (const item of items) {
      n++
      const where = `${file}:${item.at.line}`
      if (item.error !== undefined) throw new EmbedInputError(`${where}: ${item.error}`)
      const value = item.value as Record<string, unknown> | string
      if (typeof value === 'string') {
        yield {id: String(n), text: value}
        continue
      }
      if (!value || typeof value !== 'object') throw new EmbedInputError(`${where}: expected an object with a "${textField}" string, got ${JSON.stringify(value)}`)
      const text = value[textField]
      if (typeof text !== 'string') {
        throw new EmbedInputError(`${where}: field "${textField}" must be a string, got ${text === undefined ? 'nothing' : JSON.stringify(text)} (choose the field with --text-field)`)
      }
      const id = value[idField] ?? value._id
      yield {id: id === undefined || id === null ? String(n) : String(id), text}
    }
    return
  }
  if (ext === '.arrow' || ext === '.feather' || ext === '.ipc') {
    const {readRecords, readArrowMeta} = await import('../io/arrow-records.js')
    const meta = await readArrowMeta(file)
    const names = meta.fields.map((f) => f.name)
    if (!names.includes(textField)) throw new EmbedInputError(`${file}: Arrow file has no "${textField}" column (columns: ${names.join(', ')})`)
    const withTitle = meta.kind === 'corpus' && names.includes('title')
    let n = 0
    for await (const row of readRecords(file)) {
      n++
      const r = row as unknown as Record<string, unknown>
      const body = r[textField]
      if (typeof body !== 'string') throw new EmbedInputError(`${file}: row ${n}: column "${textField}" is ${body === null ? 'null' : typeof body}, expected text`)
      const title = withTitle && typeof r.title === 'string' ? r.title.trim() : ''
      const id = r[idField]
      yield {id: id === undefined || id === null ? String(n) : String(id), text: title ? `${title} ${body}` : body}
    }
    return
  }
  throw new EmbedInputError(`${file}: unsupported input type "${ext || '(none)'}": expected .txt, .jsonl/.json or .arrow`)
}

export interface EmbedFileOptions extends TextSourceOptions {
  /** Name of a prompt the checkpoint defines (e.g. "query"). */
  prompt?: string
  /** A literal prefix for every text (no placeholders are read); overrides `prompt`. */
  instruction?: string
  pooling?: PoolingMode
  normalize?: boolean
  batchSize?: number
  maxLength?: number
  /** Texts read and encoded per chunk (default 64 batches). */
  chunkSize?: number
  modelLabel?: string
  /** Progress after each encoder batch: texts embedded so far, their tokens, seconds since the start. */
  onEvent?: (event: EmbedProgressEvent) => void
  /**
   * The ranks of a job encoding in parallel (tensor/shards.ts): every rank reads the whole input,
   * chunk i is encoded by rank i mod W, every chunk's vectors are gathered, rank 0 alone writes
   * `out` (the other ranks open nothing) and reports progress.
   */
  group?: ShardGroup
}

export interface EmbedFileResult {
  out: string
  rows: number
  dim: number
  tokens: number
  seconds: number
  textsPerSecond: number
  tokensPerSecond: number
  pooling: PoolingMode
  normalized: boolean
  prompt: string | null
}

/** Embeds every text of `input` into the Arrow embeddings file `out`. */
export async function embedFile(encoder: Encoder, input: string, out: string, options: EmbedFileOptions = {}): Promise<EmbedFileResult> {
  const {ArrowRecordWriter} = await import('../io/arrow-records.js')
  const batchSize = options.batchSize ?? 32
  const chunkSize = Math.max(batchSize, options.chunkSize ?? batchSize * 64)
  const pooling = options.pooling ?? encoder.pooling
  const normalize = options.normalize ?? true
  if (options.prompt !== undefined && !(options.prompt in encoder.prompts)) {
    const known = Object.keys(encoder.prompts)
    throw new EmbedInputError(`prompt "${options.prompt}" is not defined by the model (prompts: ${known.length ? known.join(', ') : 'none'})`)
  }
  // Without --prompt/--instruction the model's default prompt applies, as in sentence-transformers.
  const promptName = options.prompt ?? encoder.defaultPromptName
  const prompt = literalPrompt(options.instruction ?? (promptName !== undefined ? encoder.prompts[promptName]! : ''))
  const group = options.group && options.group.worldSize > 1 ? options.group : undefined
  const writer = group && group.rank !== 0 ? undefined : new ArrowRecordWriter(out, 'embeddings', {
    dim: encoder.hiddenSize,
    metadata: {
      'codiemb.dataset': basename(input),
      'codiemb.instruction': describePrompt(prompt),
      'codiemb.model': options.modelLabel ?? encoder.sourceDir ?? '',
      'codiemb.pooling': pooling,
      'codiemb.normalized': String(normalize),
      'codiemb.prompt': options.instruction === undefined ? (promptName ?? '') : '',
    },
  })
  const started = performance.now()
  let rows = 0
  let tokens = 0
  const encodeOptions: EncodeOptions = {
    instruction: prompt,
    prompt: undefined,
    pooling,
    normalize,
    batchSize,
    maxLength: options.maxLength,
  }
  // One round: a chunk, or in a job one chunk per rank (chunk i of the round encoded by rank i), gathered.
  const encodeRound = async (round: TextItem[][]) => {
    const rowsBefore = rows
    const tokensBefore = tokens
    const progress = (done: number, chunkTokens: number) =>
      (!group || group.rank === 0) && options.onEvent?.({type: 'embed-progress', done: rowsBefore + done, tokens: tokensBefore + chunkTokens, seconds: (performance.now() - started) / 1000})
    if (!group) {
      const chunk = round[0]!
      tokens += await encodeAndWrite(encoder, chunk, encodeOptions, progress, (v) => writeChunk(writer!, chunk, v))
      rows += chunk.length
      return
    }
    const own = round[group.rank]
    let block: VectorBlock | undefined
    if (own) {
      let vectors: Float32Array[] = []
      const ownTokens = await encodeAndWrite(encoder, own, encodeOptions, progress, (v) => (vectors = v))
      const dim = vectors[0]?.length ?? 0
      const flat = new Float32Array(vectors.length * dim)
      vectors.forEach((v, i) => flat.set(v, i * dim))
      block = {rows: vectors.length, dim, vectors: flat, extra: ownTokens}
    }
    const blocks = await group.gather(block)
    round.forEach((chunk, i) => {
      const b = blocks[i]
      if (!b || b.rows !== chunk.length) throw new Error(`rank ${i} sent ${b?.rows ?? 0} vectors for the ${chunk.length} texts of its chunk`)
      if (writer) writeChunk(writer, chunk, Array.from({length: b.rows}, (_, r) => b.vectors.subarray(r * b.dim, (r + 1) * b.dim)))
      rows += b.rows
      tokens += b.extra ?? 0
    })
    if (group.rank === 0) options.onEvent?.({type: 'embed-progress', done: rows, tokens, seconds: (performance.now() - started) / 1000})
  }
  const perRound = group?.worldSize ?? 1
  try {
    let chunk: TextItem[] = []
    let round: TextItem[][] = []
    for await (const item of readTextItems(input, options)) {
      chunk.push(item)
      if (chunk.length < chunkSize) continue
      round.push(chunk)
      chunk = []
      if (round.length === perRound) {
        await encodeRound(round)
        round = []
      }
    }
    if (chunk.length) round.push(chunk)
    if (round.length) await encodeRound(round)
    if (rows === 0) throw new EmbedInputError(`${input}: no texts to embed`)
    await writer?.finish()
  } catch (error) {
    writer?.abort()
    throw error
  }
  const seconds = (performance.now() - started) / 1000
  return {
    out,
    rows,
    dim: encoder.hiddenSize,
    tokens,
    seconds,
    textsPerSecond: rows / seconds,
    tokensPerSecond: tokens / seconds,
    pooling,
    normalized: normalize,
    prompt: options.instruction === undefined ? (promptName ?? null) : null,
  }
}

function writeChunk(writer: {write(row: {id: string; text: string; vector: Float32Array}): void}, chunk: TextItem[], vectors: Float32Array[]): void {
  chunk.forEach((c, i) => writer.write({id: c.id, text: c.text, vector: vectors[i]!}))
}

/**
 * Encodes one chunk, calling `progress` with the chunk's texts and tokens encoded so far after each
 * batch; returns the number of (non-padding) tokens encoded.
 */
async function encodeAndWrite(
  encoder: Encoder,
  chunk: TextItem[],
  encodeOptions: EncodeOptions,
  progress: (done: number, tokens: number) => void,
  write: (vectors: Float32Array[]) => void,
): Promise<number> {
  let tokens = 0
  const vectors = await encoder.encode(
    chunk.map((c) => c.text),
    {
      ...encodeOptions,
      onEvent: (e) => {
        tokens = e.tokens ?? 0
        progress(e.done, tokens)
      },
    },
  )
  write(vectors)
  return tokens
}
