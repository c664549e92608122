/**
 * A safetensors writer that streams: the header (names, dtypes, shapes, offsets) is written first
 * from a plan known up front, then each tensor's bytes as they are produced, so writing a model
 * never holds more than one tensor. (src/io/safetensors.ts `writeSafetensors` collects every
 * tensor before writing, which would cost a whole model of memory in a merge.) The file is not
 * atomic by itself: the merge engine writes it inside a temporary directory that is renamed into
 * place when complete.
 */
import {open, type FileHandle} from 'node:fs/promises'
import {endianness} from 'node:os'
import {DTYPE_SIZE, float32ToBf16Bits, float32ToF16Bits, type SafetensorsDtype, type TensorData} from './safetensors.js'

export interface PlannedTensor {
  name: string
  dtype: SafetensorsDtype
  shape: readonly number[]
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE'

export class SafetensorsStreamWriter {
  private next = 0
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly plan: readonly PlannedTensor[],
    private position: number,
  ) {}

  /** Creates `path` and writes the header for `plan` (tensors must then be written in plan order). */
  static async create(path: string, plan: readonly PlannedTensor[], metadata?: Record<string, string>): Promise<SafetensorsStreamWriter> {
    const header: Record<string, unknown> = {}
    if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = {...metadata}
    let offset = 0
    for (const t of plan) {
      const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype]
      header[t.name] = {dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes]}
      offset += bytes
    }
    let text = JSON.stringify(header)
    // Pad so the data buffer starts 8-byte aligned, as the reference writer does.
    text += ' '.repeat((8 - ((8 + Buffer.byteLength(text, 'utf8')) % 8)) % 8)
    const headerBytes = Buffer.from(text, 'utf8')
    const prefix = Buffer.alloc(8)
    prefix.writeBigUInt64LE(BigInt(headerBytes.length))
    const handle = await open(path, 'w')
    try {
      await handle.write(prefix, 0, 8, 0)
      await handle.write(headerBytes, 0, headerBytes.length, 8)
    } catch (error) {
      await handle.close()
      throw error
    }
    return new SafetensorsStreamWriter(path, handle, plan, 8 + headerBytes.length)
  }

  /** Writes the next planned tensor; `data` is encoded to the planned dtype. */
  async write(name: string, data: TensorData): Promise<void> {
    const t = this.plan[this.next]
    if (!t || t.name !== name) throw new Error(`${this.path}: expected tensor "${t?.name ?? '(none: all written)'}" next, got "${name}"`)
    const count = t.shape.reduce((a, b) => a * b, 1)
    if (data.length !== count) throw new Error(`${this.path}: tensor "${name}" has ${data.length} values; shape [${t.shape.join(', ')}] needs ${count}`)
    const bytes = encode(data, t.dtype, name)
    let done = 0
    while (done < bytes.byteLength) {
      const {bytesWritten} = await this.handle.write(bytes, done, bytes.byteLength - done, this.position + done)
      done += bytesWritten
    }
    this.position += bytes.byteLength
    this.next++
  }

  /** Flushes to disk and closes; fails if a planned tensor was not written. */
  async finish(): Promise<void> {
    try {
      if (this.next !== this.plan.length) throw new Error(`${this.path}: only ${this.next} of ${this.plan.length} tensors were written`)
      await this.handle.sync()
    } finally {
      await this.handle.close()
    }
  }

  /** Closes without checking (after an error). */
  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined)
  }
}

function encode(data: TensorData, dtype: SafetensorsDtype, name: string): Uint8Array {
  const n = data.length
  if (dtype === 'F32' && data instanceof Float32Array && LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if ((dtype === 'U8' || dtype === 'BOOL') && data instanceof Uint8Array) return data
  if (dtype === 'I64' && data instanceof BigInt64Array && LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  const out = new Uint8Array(n * DTYPE_SIZE[dtype])
  const view = new DataView(out.buffer)
  const isFloat = data instanceof Float32Array
  if (isFloat !== (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' || dtype === 'F64'))
    throw new Error(`cannot write ${data.constructor.name} data of tensor "${name}" as ${dtype}`)
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) view.setFloat32(i * 4, data[i] as number, true)
      break
    case 'F64':
      for (let i = 0; i < n; i++) view.setFloat64(i * 8, data[i] as number, true)
      break
    case 'F16':
      for (let i = 0; i < n; i++) view.setUint16(i * 2, float32ToF16Bits(data[i] as number), true)
      break
    case 'BF16': {
      const f = data as Float32Array
      const bits = new Uint32Array(f.buffer, f.byteOffset, n)
      for (let i = 0; i < n; i++) view.setUint16(i * 2, float32ToBf16Bits(bits[i]!), true)
      break
    }
    case 'I64':
      for (let i = 0; i < n; i++) view.setBigInt64(i * 8, typeof data[i] === 'bigint' ? (data[i] as bigint) : BigInt(data[i] as number), true)
      break
    case 'I32':
      for (let i = 0; i < n; i++) view.setInt32(i * 4, Number(data[i]), true)
      break
    case 'I16':
      for (let i = 0; i < n; i++) view.setInt16(i * 2, Number(data[i]), true)
      break
    case 'U16':
      for (let i = 0; i < n; i++) view.setUint16(i * 2, Number(data[i]), true)
      break
    case 'I8':
      for (let i = 0; i < n; i++) view.setInt8(i, Number(data[i]))
      break
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) view.setUint8(i, Number(data[i]))
      break
  }
  return out
}
