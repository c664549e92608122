/**
 * The safetensors writer. It streams: the header (names, dtypes, shapes, offsets) is written first
 * from a plan known up front, then each tensor's bytes as they are produced, so writing a model
 * never holds more than one tensor beyond what the caller holds (the merge engine relies on this).
 * `writeSafetensors` is the buffered form on top of it, for callers that have all tensors at hand.
 *
 * Header: the JSON object lists `__metadata__` first (when given) and then the tensors in plan
 * order, with data_offsets packed back to back from 0; it is padded with spaces so that
 * 8 + header length is a multiple of 8 and the data buffer starts 8-byte aligned, as the
 * reference Python writer does. Equal inputs therefore give byte-identical files through either API.
 *
 * The file is written atomically (src/core/fs-atomic.ts): under a temporary sibling name, fsynced
 * and renamed over the target by finish(); abort() or any failure deletes the temporary and leaves
 * the target as it was.
 */
import {AtomicFile} from '../core/fs-atomic.js'
import {SafetensorsError} from './safetensors.js'
import {DTYPE_SIZE, encodeTensorBytes, encodingProblem, type SafetensorsDtype, type WritableTensorData} from './safetensors-dtypes.js'

export interface PlannedTensor {
  name: string
  dtype: SafetensorsDtype
  shape: readonly number[]
}

/** A tensor to write with writeSafetensors. Float data defaults to F32; `dtype` F16/BF16 converts on write. */
export interface TensorToWrite {
  name: string
  shape: readonly number[]
  dtype?: SafetensorsDtype
  data: WritableTensorData
}

export interface WriteOptions {
  /** Store every floating tensor that has no explicit dtype in this precision (default F32). */
  floatDtype?: 'F32' | 'F16' | 'BF16'
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

/** Checks one planned tensor (name free and not reserved, known dtype, valid shape) and records its name in `seen`. */
function checkPlanned(path: string, t: PlannedTensor, seen: Set<string>): void {
  if (t.name === '__metadata__' || t.name === '') throw new SafetensorsError(path, 'reserved or empty tensor name', t.name)
  if (seen.has(t.name)) throw new SafetensorsError(path, 'duplicate tensor name', t.name)
  seen.add(t.name)
  if (!Object.hasOwn(DTYPE_SIZE, t.dtype)) throw new SafetensorsError(path, `unsupported dtype ${JSON.stringify(t.dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`, t.name)
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(path, `invalid shape [${t.shape.join(', ')}]`, t.name)
}

/** Checks that `data` has the planned element count and can be stored as the planned dtype. */
function checkData(path: string, t: PlannedTensor, data: WritableTensorData): void {
  const count = elementCount(t.shape)
  if (data.length !== count) throw new SafetensorsError(path, `data has ${data.length} elements but shape [${t.shape.join(', ')}] needs ${count}`, t.name)
  const problem = encodingProblem(t.dtype, data)
  if (problem) throw new SafetensorsError(path, problem, t.name)
}

/** The 8-byte length prefix and the padded JSON header for `plan`. */
function encodeHeader(plan: readonly PlannedTensor[], metadata: Record<string, string> | undefined): Buffer {
  const header: Record<string, unknown> = {}
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = {...metadata}
  let offset = 0
  for (const t of plan) {
    const bytes = elementCount(t.shape) * DTYPE_SIZE[t.dtype]
    header[t.name] = {dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes]}
    offset += bytes
  }
  let text = JSON.stringify(header)
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text, 'utf8')) % 8)) % 8)
  const json = Buffer.from(text, 'utf8')
  const prefix = Buffer.alloc(8)
  prefix.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([prefix, json])
}

export class SafetensorsStreamWriter {
  private next = 0

  private constructor(
    readonly path: string,
    private readonly file: AtomicFile,
    private readonly plan: readonly PlannedTensor[],
  ) {}

  /**
   * Starts writing `path` (under a temporary name) with the header for `plan`; the tensors must
   * then be written in plan order. `metadata` becomes `__metadata__` (transformers expects
   * `{"format": "pt"}` there for PyTorch weights).
   */
  static async create(path: string, plan: readonly PlannedTensor[], metadata?: Record<string, string>): Promise<SafetensorsStreamWriter> {
    const seen = new Set<string>()
    for (const t of plan) checkPlanned(path, t, seen)
    const header = encodeHeader(plan, metadata)
    return new SafetensorsStreamWriter(path, AtomicFile.create(path, header), plan)
  }

  /** Writes the next planned tensor; `data` is encoded to the planned dtype. */
  async write(name: string, data: WritableTensorData): Promise<void> {
    const t = this.plan[this.next]
    if (!t || t.name !== name) throw new SafetensorsError(this.path, `expected tensor "${t?.name ?? '(none: all written)'}" next, got "${name}"`)
    checkData(this.path, t, data)
    this.file.write(encodeTensorBytes(t.dtype, data))
    this.next++
  }

  /** Syncs the file to disk and renames it into place; fails (and deletes it) if a planned tensor was not written. */
  async finish(): Promise<void> {
    if (this.next !== this.plan.length) {
      this.file.abort()
      throw new SafetensorsError(this.path, `only ${this.next} of ${this.plan.length} tensors were written`)
    }
    this.file.commit({fsync: true})
  }

  /** Deletes the unfinished file (after an error); the target is left as it was. */
  async abort(): Promise<void> {
    this.file.abort()
  }
}

/** The dtype `data` is written as when none is given: `floatDtype` for float data, else the array's own integer type. */
export function defaultDtype(data: WritableTensorData, floatDtype: SafetensorsDtype): SafetensorsDtype {
  if (data instanceof Float32Array || data instanceof Float64Array) return floatDtype
  if (data instanceof BigInt64Array) return 'I64'
  if (data instanceof Int32Array) return 'I32'
  return 'U8'
}

/**
 * Writes a whole safetensors file from an (async) iterable of tensors, through
 * SafetensorsStreamWriter: every tensor is collected and checked first, so bad input fails before
 * anything touches the disk; the file then appears at `path` atomically.
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<TensorToWrite> | AsyncIterable<TensorToWrite>,
  metadata?: Record<string, string>,
  options: WriteOptions = {},
): Promise<void> {
  const plan: PlannedTensor[] = []
  const data: WritableTensorData[] = []
  const seen = new Set<string>()
  for await (const t of tensors as AsyncIterable<TensorToWrite>) {
    const planned: PlannedTensor = {name: t.name, shape: t.shape, dtype: t.dtype ?? defaultDtype(t.data, options.floatDtype ?? 'F32')}
    checkPlanned(path, planned, seen)
    checkData(path, planned, t.data)
    plan.push(planned)
    data.push(t.data)
  }
  const writer = await SafetensorsStreamWriter.create(path, plan, metadata)
  try {
    for (const [i, t] of plan.entries()) await writer.write(t.name, data[i]!)
    await writer.finish()
  } catch (error) {
    await writer.abort()
    throw error
  }
}
