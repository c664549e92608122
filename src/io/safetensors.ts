/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors format).
 *
 * File layout: 8 bytes little-endian u64 N = header length, then N bytes of UTF-8 JSON
 * `{"<tensor name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}`,
 * then the data buffer; offsets are relative to the start of the data buffer, little-endian values.
 *
 * The reader validates the header before trusting any of it (bounded header length, known dtypes,
 * integer shapes, byte size = product(shape) x dtype size, offsets inside the file, no overlap and
 * no hole, as the reference Rust implementation requires) and then reads one tensor at a time with
 * positioned reads, so a checkpoint is never held twice in memory. Floating dtypes are upcast to
 * Float32Array; I64 stays BigInt64Array; I32/I16/I8/U16 become Int32Array; U8 and BOOL Uint8Array.
 *
 * Sharded checkpoints (`model.safetensors.index.json` with a `weight_map` of tensor name -> shard
 * file) open as one logical checkpoint.
 *
 * The writer takes an iterable of tensors, writes F32 (or F16/BF16 for float data on request, with
 * round-to-nearest-even), integer and bool data verbatim, pads the header to 8 bytes as the Python
 * writer does, and writes atomically (temporary file in the same directory, fsync, rename).
 */
import {closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {endianness} from 'node:os'
import {CodiembError} from '../core/errors.js'

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U16' | 'U8' | 'BOOL'

/** Bytes per element of each supported dtype. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U16: 2,
  U8: 1,
  BOOL: 1,
}

const FLOAT_DTYPES = new Set<SafetensorsDtype>(['F64', 'F32', 'F16', 'BF16'])

/** The largest header accepted (the Rust implementation uses the same bound). */
export const MAX_HEADER_BYTES = 100_000_000

export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array

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

export interface SafetensorsFile {
  /** The file (single checkpoint) or index file (sharded checkpoint) that was opened. */
  readonly path: string
  /** `__metadata__` of the (first) file; string values only, per the format. */
  readonly metadata: Record<string, string>
  tensors(): TensorInfo[]
  has(name: string): boolean
  info(name: string): TensorInfo
  read(name: string): Promise<LoadedTensor>
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

const LITTLE_ENDIAN_HOST = endianness() === 'LE'

/** Decodes raw little-endian bytes of `dtype` (buffer must start 8-byte aligned) into the upcast typed array. */
export function decodeTensorBytes(dtype: SafetensorsDtype, bytes: Uint8Array, count: number): TensorData {
  const buf = bytes.buffer
  const off = bytes.byteOffset
  const view = new DataView(buf, off, bytes.byteLength)
  switch (dtype) {
    case 'F32': {
      if (LITTLE_ENDIAN_HOST && off % 4 === 0) return new Float32Array(buf, off, count)
      const out = new Float32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true)
      return out
    }
    case 'F64': {
      const out = new Float32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true)
      return out
    }
    case 'F16': {
      const out = new Float32Array(count)
      const table = f16Table()
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(i * 2, true)]!
      return out
    }
    case 'BF16': {
      const out = new Float32Array(count)
      const bits = new Uint32Array(out.buffer)
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16
      return out
    }
    case 'I64': {
      if (LITTLE_ENDIAN_HOST && off % 8 === 0) return new BigInt64Array(buf, off, count)
      const out = new BigInt64Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getBigInt64(i * 8, true)
      return out
    }
    case 'I32': {
      if (LITTLE_ENDIAN_HOST && off % 4 === 0) return new Int32Array(buf, off, count)
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true)
      return out
    }
    case 'I16': {
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true)
      return out
    }
    case 'U16': {
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, true)
      return out
    }
    case 'I8': {
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i)
      return out
    }
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf, off, count)
  }
}

let F16_TABLE: Float32Array | undefined
/** All 65536 half-precision values as float32 (256 KiB, built once). */
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE
  const t = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1
    const exp = (h >> 10) & 0x1f
    const frac = h & 0x3ff
    if (exp === 0) t[h] = sign * frac * 2 ** -24
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15)
  }
  F16_TABLE = t
  return t
}

/** float32 -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN. */
export function float32ToBf16Bits(bits32: number): number {
  if ((bits32 & 0x7f800000) === 0x7f800000 && bits32 & 0x007fffff) return ((bits32 >>> 16) | 0x0040) & 0xffff
  const rounded = (bits32 >>> 0) + 0x7fff + ((bits32 >>> 16) & 1)
  return (rounded >>> 16) & 0xffff
}

const F32_SCRATCH = new Float32Array(1)
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer)
/** float32 value -> IEEE half bits, round to nearest even, overflow to infinity, subnormals kept. */
export function float32ToF16Bits(value: number): number {
  F32_SCRATCH[0] = value
  const x = U32_SCRATCH[0]!
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 31) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign // underflows to signed zero
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const halfway = 1 << (shift - 1)
    if (rem > halfway || (rem === halfway && half & 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++ // may carry into the exponent, which is correct
  return sign | half
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
    const e = this.entry(name)
    if (!this.handle) throw new SafetensorsError(this.path, 'file was closed', name)
    const count = e.shape.reduce((a, b) => a * b, 1)
    // An ArrayBuffer of its own keeps F32/I32/I64 views aligned and lets F32 data be used without a copy.
    const bytes = new Uint8Array(new ArrayBuffer(e.byteLength))
    let done = 0
    while (done < e.byteLength) {
      // At most 1 GiB per read: a single positioned read is limited to 2 GiB.
      const {bytesRead} = await this.handle.read(bytes, done, Math.min(e.byteLength - done, 1 << 30), e.start + done)
      if (bytesRead === 0) throw new SafetensorsError(this.path, `unexpected end of file after ${done} of ${e.byteLength} bytes`, name)
      done += bytesRead
    }
    return {dtype: e.dtype, shape: [...e.shape], data: decodeTensorBytes(e.dtype, bytes, count)}
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
    let index: unknown
    try {
      index = JSON.parse(readFileSync(indexPath, 'utf8'))
    } catch (error) {
      throw new SafetensorsError(indexPath, `cannot read the shard index: ${(error as Error).message}`)
    }
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
        if (!existsSync(p)) throw new SafetensorsError(indexPath, `shard ${file} listed in weight_map does not exist`)
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
    const shard = await this.shards.get(file)!
    return shard.read(name)
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

/** A tensor to write. Float data defaults to F32; `dtype` F16/BF16 converts on write. */
export interface TensorToWrite {
  name: string
  shape: readonly number[]
  dtype?: SafetensorsDtype
  data: TensorData | Float64Array
}

export interface WriteOptions {
  /** Store every floating tensor that has no explicit dtype in this precision (default F32). */
  floatDtype?: 'F32' | 'F16' | 'BF16'
}

/**
 * Writes a safetensors file atomically: the data goes to a temporary file next to `path`, which is
 * fsynced and renamed over `path` only when complete. `metadata` becomes `__metadata__` (transformers
 * expects `{"format": "pt"}` there for PyTorch weights).
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<TensorToWrite> | AsyncIterable<TensorToWrite>,
  metadata?: Record<string, string>,
  options: WriteOptions = {},
): Promise<void> {
  const items: {t: TensorToWrite; dtype: SafetensorsDtype; byteLength: number}[] = []
  const seen = new Set<string>()
  for await (const t of tensors as AsyncIterable<TensorToWrite>) {
    if (t.name === '__metadata__' || t.name === '') throw new SafetensorsError(path, 'reserved or empty tensor name', t.name)
    if (seen.has(t.name)) throw new SafetensorsError(path, 'duplicate tensor name', t.name)
    seen.add(t.name)
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(path, `invalid shape [${t.shape.join(', ')}]`, t.name)
    const count = t.shape.reduce((a, b) => a * b, 1)
    if (t.data.length !== count) {
      throw new SafetensorsError(path, `data has ${t.data.length} elements but shape [${t.shape.join(', ')}] needs ${count}`, t.name)
    }
    const dtype = t.dtype ?? defaultDtype(t.data, options.floatDtype ?? 'F32')
    checkWritable(path, t, dtype)
    items.push({t, dtype, byteLength: count * DTYPE_SIZE[dtype]})
  }
  const header: Record<string, unknown> = {}
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = {...metadata}
  let offset = 0
  for (const {t, dtype, byteLength} of items) {
    header[t.name] = {dtype, shape: [...t.shape], data_offsets: [offset, offset + byteLength]}
    offset += byteLength
  }
  let headerText = JSON.stringify(header)
  const headerBytesRaw = Buffer.byteLength(headerText, 'utf8')
  headerText += ' '.repeat((8 - ((8 + headerBytesRaw) % 8)) % 8)
  const headerBuf = Buffer.from(headerText, 'utf8')
  const prefix = Buffer.alloc(8)
  prefix.writeBigUInt64LE(BigInt(headerBuf.length))

  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`)
  const fd = openSync(tmp, 'w')
  try {
    writeSync(fd, prefix)
    writeSync(fd, headerBuf)
    for (const {t, dtype} of items) writeAll(fd, encodeTensor(t.data, dtype))
    fsyncSync(fd)
    closeSync(fd)
    renameSync(tmp, path)
  } catch (error) {
    try {
      closeSync(fd)
    } catch {
      // already closed
    }
    rmSync(tmp, {force: true})
    throw error
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30))
}

function defaultDtype(data: TensorToWrite['data'], floatDtype: SafetensorsDtype): SafetensorsDtype {
  if (data instanceof Float32Array || data instanceof Float64Array) return floatDtype
  if (data instanceof BigInt64Array) return 'I64'
  if (data instanceof Int32Array) return 'I32'
  return 'U8'
}

function checkWritable(path: string, t: TensorToWrite, dtype: SafetensorsDtype): void {
  const isFloatData = t.data instanceof Float32Array || t.data instanceof Float64Array
  const ok =
    (FLOAT_DTYPES.has(dtype) && isFloatData) ||
    (dtype === 'I64' && (t.data instanceof BigInt64Array || t.data instanceof Int32Array)) ||
    (dtype === 'I32' && t.data instanceof Int32Array) ||
    ((dtype === 'U8' || dtype === 'BOOL') && t.data instanceof Uint8Array)
  if (!ok) throw new SafetensorsError(path, `cannot write ${t.data.constructor.name} data as ${dtype}`, t.name)
}

function encodeTensor(data: TensorToWrite['data'], dtype: SafetensorsDtype): Uint8Array {
  const n = data.length
  const out = new Uint8Array(n * DTYPE_SIZE[dtype])
  const view = new DataView(out.buffer)
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN_HOST && data instanceof Float32Array) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      for (let i = 0; i < n; i++) view.setFloat32(i * 4, data[i] as number, true)
      return out
    case 'F64':
      for (let i = 0; i < n; i++) view.setFloat64(i * 8, data[i] as number, true)
      return out
    case 'F16':
      for (let i = 0; i < n; i++) view.setUint16(i * 2, float32ToF16Bits(data[i] as number), true)
      return out
    case 'BF16': {
      const f = data instanceof Float32Array ? data : Float32Array.from(data as Float64Array)
      const bits = new Uint32Array(f.buffer, f.byteOffset, n)
      for (let i = 0; i < n; i++) view.setUint16(i * 2, float32ToBf16Bits(bits[i]!), true)
      return out
    }
    case 'I64':
      for (let i = 0; i < n; i++) view.setBigInt64(i * 8, data instanceof BigInt64Array ? data[i]! : BigInt(data[i] as number), true)
      return out
    case 'I32':
      for (let i = 0; i < n; i++) view.setInt32(i * 4, data[i] as number, true)
      return out
    case 'U8':
    case 'BOOL':
      return data as Uint8Array
    default:
      throw new Error(`writing ${dtype} is not supported`)
  }
}
