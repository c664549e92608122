/**
 * safetensors reader (https://github.com/huggingface/safetensors format).
 *
 * File layout: 8 bytes little-endian u64 N = header length, then N bytes of UTF-8 JSON
 * `{"<tensor name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}`,
 * then the data buffer; offsets are relative to the start of the data buffer, little-endian values.
 *
 * The reader validates the header before trusting any of it (bounded header length, known dtypes,
 * integer shapes, byte size = product(shape) x dtype size, offsets inside the file, no overlap and
 * no hole, as the reference Rust implementation requires) and then reads one tensor at a time with
 * positioned reads, so a checkpoint is never held twice in memory. Values are upcast as described
 * in safetensors-dtypes.ts (floating -> Float32Array, I64 -> BigInt64Array, ...).
 *
 * Sharded checkpoints (`model.safetensors.index.json` with a `weight_map` of tensor name -> shard
 * file) open as one logical checkpoint. The writer is src/io/safetensors-stream.ts.
 */
import {existsSync, readFileSync, statSync} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {decodeTensorBytes, DTYPE_SIZE, type SafetensorsDtype, type TensorData} from './safetensors-dtypes.js'
import {CodiembError} from '../core/errors.js'
import {readJsonFile} from '../core/json-file.js'

export {
  decodeTensorBytes,
  DTYPE_SIZE,
  FLOAT_DTYPES,
  float32ToBf16Bits,
  float32ToF16Bits,
  type SafetensorsDtype,
  type TensorData,
  type WritableTensorData,
} from './safetensors-dtypes.js'

/** The largest header accepted (the Rust implementation uses the same bound). */
export const MAX_HEADER_BYTES = 100_000_000

export interface TensorInfo {
  name: string
  dtype: SafetensorsDtype
  shape: number[]
}

export interface LoadedTensor {
  /** The dtype stored in the file (data is upcast: see the module comment). */
  dtype: SafetensorsDtype
  shape: number[]
  data: TensorData
}

/** A tensor's stored bytes, undecoded (little-endian, in an 8-byte aligned buffer of their own). */
export interface RawTensor {
  dtype: SafetensorsDtype
  shape: number[]
  bytes: Uint8Array
}

export interface SafetensorsFile {
  /** The file (single checkpoint) or index file (sharded checkpoint) that was opened. */
  readonly path: string
  /** `__metadata__` of the (first) file; string values only, per the format. */
  readonly metadata: Record<string, string>
  tensors(): TensorInfo[]
  has(name: string): boolean
  info(name: string): TensorInfo
  read(name: string): Promise<LoadedTensor>
  /** The tensor's bytes as stored (one positioned read of its byte range), for callers that convert them themselves. */
  readRaw(name: string): Promise<RawTensor>
  close(): Promise<void>
}

/** A malformed or unusable checkpoint; the message names the file and, where known, the tensor. */
export class SafetensorsError extends CodiembError {
  override name = 'SafetensorsError'
  constructor(
    readonly file: string,
    message: string,
    readonly tensor?: string,
  ) {
    super(`${file}: ${tensor === undefined ? '' : `tensor "${tensor}": `}${message}`)
  }
}

interface HeaderEntry extends TensorInfo {
  /** Absolute byte offset of the tensor's data in the file. */
  start: number
  byteLength: number
}

/** Parses and validates a safetensors header; exported for tests and tools that only need shapes. */
export function parseSafetensorsHeader(
  file: string,
  headerBytes: Uint8Array,
  fileSize: number,
): {entries: Map<string, HeaderEntry>; metadata: Record<string, string>} {
  const dataStart = 8 + headerBytes.length
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', {fatal: true}).decode(headerBytes))
  } catch (error) {
    throw new SafetensorsError(file, `header is not valid UTF-8 JSON (${(error as Error).message}); the file is corrupt or not a safetensors file`)
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SafetensorsError(file, 'header must be a JSON object of tensor name -> {dtype, shape, data_offsets}')
  }
  const metadata: Record<string, string> = {}
  const entries = new Map<string, HeaderEntry>()
  const dataSize = fileSize - dataStart
  const spans: {name: string; begin: number; end: number}[] = []
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new SafetensorsError(file, '__metadata__ must be an object of string values')
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__.${k} must be a string, got ${JSON.stringify(v)}`)
        metadata[k] = v
      }
      continue
    }
    if (raw === null || typeof raw !== 'object') throw new SafetensorsError(file, 'expected an object {dtype, shape, data_offsets}', name)
    const {dtype, shape, data_offsets: offsets} = raw as {dtype?: unknown; shape?: unknown; data_offsets?: unknown}
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE)) {
      throw new SafetensorsError(file, `unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`, name)
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`, name)
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw new SafetensorsError(file, `data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`, name)
    }
    const [begin, end] = offsets as [number, number]
    const count = (shape as number[]).reduce((a, b) => a * b, 1)
    const expected = count * DTYPE_SIZE[dtype as SafetensorsDtype]
    if (end - begin !== expected) {
      throw new SafetensorsError(
        file,
        `byte size ${end - begin} (data_offsets ${begin}..${end}) does not match shape [${shape.join(', ')}] x ${dtype} = ${expected} bytes`,
        name,
      )
    }
    if (end > dataSize) {
      throw new SafetensorsError(
        file,
        `data_offsets end ${end} lies past the end of the data (${Math.max(0, dataSize)} bytes): the file is truncated or corrupt`,
        name,
      )
    }
    spans.push({name, begin, end})
    entries.set(name, {name, dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], start: dataStart + begin, byteLength: expected})
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end)
  let cursor = 0
  for (const span of spans) {
    if (span.begin < cursor) throw new SafetensorsError(file, `data_offsets ${span.begin}..${span.end} overlap another tensor's data`, span.name)
    if (span.begin > cursor) {
      throw new SafetensorsError(file, `data_offsets start at ${span.begin} but the previous tensor ends at ${cursor}: the data buffer has a hole`, span.name)
    }
    cursor = span.end
  }
  if (cursor !== dataSize) {
    throw new SafetensorsError(file, `the header describes ${cursor} data bytes but the file holds ${dataSize}: the file is truncated or has trailing bytes`)
  }
  return {entries, metadata}
}

class SingleFile implements SafetensorsFile {
  private constructor(
    readonly path: string,
    private handle: FileHandle | undefined,
    private readonly entries: Map<string, HeaderEntry>,
    readonly metadata: Record<string, string>,
  ) {}

  static async open(path: string): Promise<SingleFile> {
    let handle: FileHandle
    try {
      handle = await open(path, 'r')
    } catch (error) {
      throw new SafetensorsError(path, `cannot open: ${(error as Error).message}`)
    }
    try {
      const {size} = await handle.stat()
      if (size < 8) throw new SafetensorsError(path, `file is ${size} bytes, shorter than the 8-byte header length: truncated or not a safetensors file`)
      const lenBuf = Buffer.alloc(8)
      await handle.read(lenBuf, 0, 8, 0)
      const headerLen = lenBuf.readBigUInt64LE(0)
      if (headerLen > BigInt(MAX_HEADER_BYTES)) {
        throw new SafetensorsError(path, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit: corrupt or not a safetensors file`)
      }
      const n = Number(headerLen)
      if (8 + n > size) throw new SafetensorsError(path, `header length ${n} runs past the end of the ${size}-byte file: truncated or corrupt`)
      const header = Buffer.alloc(n)
      await handle.read(header, 0, n, 8)
      const {entries, metadata} = parseSafetensorsHeader(path, header, size)
      return new SingleFile(path, handle, entries, metadata)
    } catch (error) {
      await handle.close()
      throw error
    }
  }

  tensors(): TensorInfo[] {
    return [...this.entries.values()].map(({name, dtype, shape}) => ({name, dtype, shape: [...shape]}))
  }

  has(name: string): boolean {
    return this.entries.has(name)
  }

  info(name: string): TensorInfo {
    const e = this.entry(name)
    return {name, dtype: e.dtype, shape: [...e.shape]}
  }

  private entry(name: string): HeaderEntry {
    const e = this.entries.get(name)
    if (!e) throw new SafetensorsError(this.path, 'not in this checkpoint', name)
    return e
  }

  async read(name: string): Promise<LoadedTensor> {
    const {dtype, shape, bytes} = await this.readRaw(name)
    return {dtype, shape, data: decodeTensorBytes(dtype, bytes, shape.reduce((a, b) => a * b, 1))}
  }

  async readRaw(name: string): Promise<RawTensor> {
    const e = this.entry(name)
    if (!this.handle) throw new SafetensorsError(this.path, 'file was closed', name)
    // An ArrayBuffer of its own keeps F32/I32/I64 views aligned and lets F32 data be used without a copy.
    const bytes = new Uint8Array(new ArrayBuffer(e.byteLength))
    let done = 0
    while (done < e.byteLength) {
      // At most 1 GiB per read: a single positioned read is limited to 2 GiB.
      const {bytesRead} = await this.handle.read(bytes, done, Math.min(e.byteLength - done, 1 << 30), e.start + done)
      if (bytesRead === 0) throw new SafetensorsError(this.path, `unexpected end of file after ${done} of ${e.byteLength} bytes`, name)
      done += bytesRead
    }
    return {dtype: e.dtype, shape: [...e.shape], bytes}
  }

  async close(): Promise<void> {
    const h = this.handle
    this.handle = undefined
    await h?.close()
  }
}

class ShardedFile implements SafetensorsFile {
  private readonly shards = new Map<string, Promise<SingleFile>>()
  private constructor(
    readonly path: string,
    private readonly weightMap: Map<string, string>,
    private readonly infos: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
    opened: Map<string, SingleFile>,
  ) {
    for (const [file, shard] of opened) this.shards.set(file, Promise.resolve(shard))
  }

  static async open(indexPath: string): Promise<ShardedFile> {
    const index = readJsonFile(indexPath, (reason) => new SafetensorsError(indexPath, `cannot read the shard index: ${reason}`))
    const weightMap = (index as {weight_map?: unknown})?.weight_map
    if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
      throw new SafetensorsError(indexPath, 'expected an object with "weight_map": {tensor name: shard file}')
    }
    const map = new Map<string, string>()
    for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file === '..') {
        throw new SafetensorsError(indexPath, `weight_map entry must name a shard file in the same directory, got ${JSON.stringify(file)}`, name)
      }
      map.set(name, file)
    }
    // Open every shard once to validate headers and check the index against them (shards stay open for reads).
    const dir = dirname(indexPath)
    const opened = new Map<string, SingleFile>()
    const infos = new Map<string, TensorInfo>()
    try {
      for (const file of new Set(map.values())) {
        const p = join(dir, file)
        if (!existsSync(p)) {
          const names = [...map].filter(([, f]) => f === file).map(([n]) => n)
          throw new SafetensorsError(indexPath, `is in shard ${file} by weight_map, and that file does not exist (${p}; it should hold ${names.length} tensor${names.length > 1 ? 's' : ''})`, names[0])
        }
        opened.set(file, await SingleFile.open(p))
      }
      for (const [name, file] of map) {
        const shard = opened.get(file)!
        if (!shard.has(name)) throw new SafetensorsError(shard.path, `listed in ${basename(indexPath)} but missing from this shard`, name)
        infos.set(name, shard.info(name))
      }
    } catch (error) {
      await Promise.all([...opened.values()].map((s) => s.close()))
      throw error
    }
    const firstMeta = opened.values().next().value?.metadata ?? {}
    return new ShardedFile(indexPath, map, infos, firstMeta, opened)
  }

  tensors(): TensorInfo[] {
    return [...this.infos.values()].map((i) => ({...i, shape: [...i.shape]}))
  }

  has(name: string): boolean {
    return this.infos.has(name)
  }

  info(name: string): TensorInfo {
    const i = this.infos.get(name)
    if (!i) throw new SafetensorsError(this.path, 'not in this checkpoint', name)
    return {...i, shape: [...i.shape]}
  }

  async read(name: string): Promise<LoadedTensor> {
    const file = this.weightMap.get(name)
    if (!file) throw new SafetensorsError(this.path, 'not in this checkpoint', name)
    return (await this.shards.get(file)!).read(name)
  }

  async readRaw(name: string): Promise<RawTensor> {
    const file = this.weightMap.get(name)
    if (!file) throw new SafetensorsError(this.path, 'not in this checkpoint', name)
    return (await this.shards.get(file)!).readRaw(name)
  }

  async close(): Promise<void> {
    const all = await Promise.all(this.shards.values())
    await Promise.all(all.map((s) => s.close()))
  }
}

/**
 * Opens a checkpoint: a `.safetensors` file, a `.safetensors.index.json` shard index, or a directory
 * holding `model.safetensors` or `model.safetensors.index.json`.
 */
export async function openSafetensors(pathOrDir: string): Promise<SafetensorsFile> {
  let path = pathOrDir
  if (existsSync(pathOrDir) && statSync(pathOrDir).isDirectory()) {
    const single = join(pathOrDir, 'model.safetensors')
    const index = join(pathOrDir, 'model.safetensors.index.json')
    if (existsSync(single)) path = single
    else if (existsSync(index)) path = index
    else throw new SafetensorsError(pathOrDir, 'directory holds neither model.safetensors nor model.safetensors.index.json')
  }
  if (!existsSync(path)) throw new SafetensorsError(path, 'no such file')
  return path.endsWith('.json') ? ShardedFile.open(path) : SingleFile.open(path)
}
