import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {
  float32ToBf16Bits,
  float32ToF16Bits,
  openSafetensors,
  SafetensorsError,
  type SafetensorsDtype,
  type TensorData,
} from '../../src/io/safetensors.js'
import {SafetensorsStreamWriter, writeSafetensors} from '../../src/io/safetensors-stream.js'
import {shared} from '../helpers/env.js'

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'codiemb-st-'))
}

/** Builds a raw safetensors file from a header object and a data buffer (for corrupt-file tests). */
function rawFile(path: string, header: unknown, data: Uint8Array, lengthOverride?: bigint): void {
  const h = Buffer.from(JSON.stringify(header))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length))
  writeFileSync(path, Buffer.concat([len, h, Buffer.from(data)]))
}

async function rejectsWith(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<void> {
  await assert.rejects(p, (error: unknown) => {
    assert.ok(error instanceof SafetensorsError, `expected SafetensorsError, got ${String(error)}`)
    for (const part of parts) {
      if (typeof part === 'string') assert.ok(error.message.includes(part), `"${error.message}" should include "${part}"`)
      else assert.match(error.message, part)
    }
    return true
  })
}

test('round-trips every writable dtype with metadata, 8-byte aligned header', async () => {
  const dir = tmp()
  try {
    const path = join(dir, 'a.safetensors')
    const f = new Float32Array([1, -2.5, 3.25, 0, 1e-3, 65504])
    await writeSafetensors(
      path,
      [
        {name: 'f32', shape: [2, 3], data: f},
        {name: 'f16', shape: [6], dtype: 'F16', data: f},
        {name: 'bf16', shape: [3, 2], dtype: 'BF16', data: f},
        {name: 'ids', shape: [1, 4], data: new BigInt64Array([0n, 1n, 2n, -3n])},
        {name: 'i32', shape: [2], data: new Int32Array([7, -9])},
        {name: 'mask', shape: [3], dtype: 'BOOL', data: new Uint8Array([1, 0, 1])},
        {name: 'empty', shape: [0, 4], data: new Float32Array(0)},
      ],
      {format: 'pt', note: 'x'},
    )
    const bytes = readFileSync(path)
    assert.equal((8 + Number(bytes.readBigUInt64LE(0))) % 8, 0)
    const st = await openSafetensors(path)
    assert.deepEqual(st.metadata, {format: 'pt', note: 'x'})
    assert.deepEqual(
      st.tensors().map((t) => [t.name, t.dtype, t.shape.join('x')]),
      [
        ['f32', 'F32', '2x3'],
        ['f16', 'F16', '6'],
        ['bf16', 'BF16', '3x2'],
        ['ids', 'I64', '1x4'],
        ['i32', 'I32', '2'],
        ['mask', 'BOOL', '3'],
        ['empty', 'F32', '0x4'],
      ],
    )
    assert.deepEqual([...(await st.read('f32')).data], [...f])
    const half = (await st.read('f16')).data as Float32Array
    assert.ok(half instanceof Float32Array)
    for (let i = 0; i < f.length; i++) assert.ok(Math.abs(half[i]! - f[i]!) <= Math.abs(f[i]!) * 1e-3 + 1e-7, `f16[${i}]`)
    const bf = (await st.read('bf16')).data as Float32Array
    for (let i = 0; i < f.length; i++) assert.ok(Math.abs(bf[i]! - f[i]!) <= Math.abs(f[i]!) * 8e-3, `bf16[${i}]`)
    assert.deepEqual([...((await st.read('ids')).data as BigInt64Array)], [0n, 1n, 2n, -3n])
    assert.deepEqual([...(await st.read('i32')).data], [7, -9])
    assert.deepEqual([...(await st.read('mask')).data], [1, 0, 1])
    assert.equal((await st.read('empty')).data.length, 0)
    await rejectsWith(st.read('nope'), 'a.safetensors', 'tensor "nope"')
    await st.close()
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

/** One tensor per dtype the reader knows, with edge values that each dtype holds exactly, and what reading gives back. */
const EVERY_DTYPE: {dtype: SafetensorsDtype; data: TensorData | Float64Array; back: TensorData}[] = [
  {dtype: 'F64', data: new Float64Array([-0.125, 3.5, 1024, 0]), back: new Float32Array([-0.125, 3.5, 1024, 0])},
  {dtype: 'F32', data: new Float32Array([1, -2.5, 3.25, 1e-3]), back: new Float32Array([1, -2.5, 3.25, 1e-3])},
  {dtype: 'F16', data: new Float32Array([1, -2.5, 65504, 2 ** -24]), back: new Float32Array([1, -2.5, 65504, 2 ** -24])},
  {dtype: 'BF16', data: new Float32Array([1, -2.5, 3.25, 2 ** 100]), back: new Float32Array([1, -2.5, 3.25, 2 ** 100])},
  {dtype: 'I64', data: new BigInt64Array([0n, -(2n ** 63n), 2n ** 63n - 1n, 42n]), back: new BigInt64Array([0n, -(2n ** 63n), 2n ** 63n - 1n, 42n])},
  {dtype: 'I32', data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, 7]), back: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, 7])},
  {dtype: 'I16', data: new Int32Array([-32768, 32767, 0, -1]), back: new Int32Array([-32768, 32767, 0, -1])},
  {dtype: 'I8', data: new Int32Array([-128, 127, 0, 5]), back: new Int32Array([-128, 127, 0, 5])},
  {dtype: 'U16', data: new Int32Array([0, 65535, 1, 300]), back: new Int32Array([0, 65535, 1, 300])},
  {dtype: 'U8', data: new Uint8Array([0, 255, 1, 128]), back: new Uint8Array([0, 255, 1, 128])},
  {dtype: 'BOOL', data: new Uint8Array([1, 0, 0, 1]), back: new Uint8Array([1, 0, 0, 1])},
]

async function readAll(path: string) {
  const st = await openSafetensors(path)
  try {
    const out = []
    for (const info of st.tensors()) out.push({...info, ...(await st.read(info.name))})
    return {metadata: st.metadata, tensors: out}
  } finally {
    await st.close()
  }
}

test('every dtype round-trips through both writers, which write byte-identical files', async () => {
  const dir = tmp()
  try {
    const tensors = EVERY_DTYPE.map((t, i) => ({name: `t${i}.${t.dtype}`, dtype: t.dtype, shape: [2, 2], data: t.data}))
    const buffered = join(dir, 'buffered.safetensors')
    await writeSafetensors(buffered, tensors, {format: 'pt'})
    const streamed = join(dir, 'streamed.safetensors')
    const writer = await SafetensorsStreamWriter.create(streamed, tensors, {format: 'pt'})
    for (const t of tensors) await writer.write(t.name, t.data)
    await writer.finish()
    assert.deepEqual(readFileSync(streamed), readFileSync(buffered))
    assert.deepEqual(readdirSync(dir).sort(), ['buffered.safetensors', 'streamed.safetensors'])

    const back = await readAll(buffered)
    assert.deepEqual(back.metadata, {format: 'pt'})
    for (const [i, t] of EVERY_DTYPE.entries()) {
      const got = back.tensors[i]!
      assert.equal(got.dtype, t.dtype)
      assert.deepEqual(got.shape, [2, 2])
      assert.equal(got.data.constructor, t.back.constructor, `${t.dtype} reads back as ${t.back.constructor.name}`)
      assert.deepEqual([...got.data], [...t.back], t.dtype)
    }
    // What the reader returns writes back, under the dtype it was read from, to the same bytes.
    const rewritten = join(dir, 'rewritten.safetensors')
    await writeSafetensors(rewritten, back.tensors, back.metadata)
    assert.deepEqual(readFileSync(rewritten), readFileSync(buffered))
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('both writers agree on defaults and conversions: F16/BF16 from float32 or float64, I64 from Int32Array', async () => {
  const dir = tmp()
  try {
    const f = new Float32Array([1, -2.5, 3.3, 1e-3, 70000, -0])
    const tensors = [
      {name: 'w', shape: [3, 2], data: f},
      {name: 'h', shape: [6], dtype: 'F16' as const, data: Float64Array.from(f)},
      {name: 'b', shape: [6], dtype: 'BF16' as const, data: Float64Array.from(f)},
      {name: 'pos', shape: [1, 3], dtype: 'I64' as const, data: new Int32Array([0, 1, 2])},
      {name: 'ids', shape: [2], data: new Int32Array([5, -5])},
      {name: 'mask', shape: [2], data: new Uint8Array([1, 0])},
      {name: 'none', shape: [0], data: new Float32Array(0)},
    ]
    const buffered = join(dir, 'a.safetensors')
    await writeSafetensors(buffered, tensors, undefined, {floatDtype: 'BF16'})
    const defaultDtype = (data: unknown): SafetensorsDtype => (data instanceof Float32Array ? 'BF16' : data instanceof Int32Array ? 'I32' : 'U8')
    const plan = tensors.map((t) => ({name: t.name, shape: t.shape, dtype: t.dtype ?? defaultDtype(t.data)}))
    const streamed = join(dir, 'b.safetensors')
    const writer = await SafetensorsStreamWriter.create(streamed, plan)
    for (const t of tensors) await writer.write(t.name, t.data)
    await writer.finish()
    assert.deepEqual(readFileSync(streamed), readFileSync(buffered))
    const back = await readAll(buffered)
    assert.deepEqual(back.tensors.map((t) => t.dtype), ['BF16', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BF16'])
    assert.deepEqual([...back.tensors[3]!.data], [0n, 1n, 2n])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('the stream writer checks order, values and completeness, and never leaves a partial file', async () => {
  const dir = tmp()
  try {
    const path = join(dir, 's.safetensors')
    writeFileSync(path, 'previous')
    const plan = [
      {name: 'a', dtype: 'I8' as const, shape: [2]},
      {name: 'b', dtype: 'F32' as const, shape: [1]},
    ]
    await rejectsWith(SafetensorsStreamWriter.create(path, [...plan, {name: 'a', dtype: 'F32', shape: [1]}]), 'tensor "a"', 'duplicate tensor name')
    const w = await SafetensorsStreamWriter.create(path, plan)
    await rejectsWith(w.write('b', new Float32Array([1])), 'expected tensor "a" next, got "b"')
    await rejectsWith(w.write('a', new Int32Array([1, 200])), 'tensor "a"', 'value 200 at index 1 does not fit I8 [-128, 127]')
    await rejectsWith(w.write('a', new Float32Array([1, 2])), 'tensor "a"', 'cannot write Float32Array data as I8')
    await rejectsWith(w.write('a', new Int32Array([1])), 'tensor "a"', 'data has 1 elements but shape [2] needs 2')
    await w.write('a', new Int32Array([-1, 1]))
    await rejectsWith(w.finish(), 's.safetensors', 'only 1 of 2 tensors were written')
    assert.equal(readFileSync(path, 'utf8'), 'previous')
    assert.deepEqual(readdirSync(dir), ['s.safetensors'])

    const aborted = await SafetensorsStreamWriter.create(path, plan)
    await aborted.write('a', new Int32Array([1, 2]))
    await aborted.abort()
    assert.equal(readFileSync(path, 'utf8'), 'previous')
    assert.deepEqual(readdirSync(dir), ['s.safetensors'])
    await rejectsWith(writeSafetensors(path, [{name: 'x', shape: [1], dtype: 'U16', data: new BigInt64Array([70000n])}]), 'does not fit U16')
    await rejectsWith(writeSafetensors(path, [{name: 'x', shape: [1], dtype: 'BOOL', data: new Uint8Array([2])}]), 'does not fit BOOL [0, 1]')
    assert.deepEqual(readdirSync(dir), ['s.safetensors'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('half and bfloat16 conversion rounds to nearest even and handles the edges', () => {
  assert.equal(float32ToF16Bits(1), 0x3c00)
  assert.equal(float32ToF16Bits(-2), 0xc000)
  assert.equal(float32ToF16Bits(65504), 0x7bff)
  assert.equal(float32ToF16Bits(70000), 0x7c00) // overflow -> inf
  assert.equal(float32ToF16Bits(2 ** -24), 0x0001) // smallest subnormal
  assert.equal(float32ToF16Bits(2 ** -26), 0x0000)
  assert.equal(float32ToF16Bits(1 + 2 ** -11), 0x3c00) // tie -> even
  assert.equal(float32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02) // tie -> even (up)
  assert.equal(float32ToF16Bits(NaN) & 0x7c00, 0x7c00)
  const bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!
  assert.equal(float32ToBf16Bits(bits(1)), 0x3f80)
  assert.equal(float32ToBf16Bits(bits(1 + 2 ** -8)), 0x3f80) // tie -> even
  assert.equal(float32ToBf16Bits(bits(1 + 3 * 2 ** -8)), 0x3f82)
  assert.equal(float32ToBf16Bits(bits(NaN)) & 0x7fc0, 0x7fc0)
})

test('reads F64, F16, BF16, I32 and U8 written by hand', async () => {
  const dir = tmp()
  try {
    const path = join(dir, 'h.safetensors')
    const data = new Uint8Array(8 + 4 + 4 + 8 + 2)
    const v = new DataView(data.buffer)
    v.setFloat64(0, -0.125, true)
    v.setUint16(8, 0x3c00, true) // f16 1.0
    v.setUint16(10, 0xc100, true) // f16 -2.5
    v.setUint16(12, 0x3f80, true) // bf16 1.0
    v.setUint16(14, 0xc020, true) // bf16 -2.5
    v.setInt32(16, -5, true)
    v.setInt32(20, 123456, true)
    data[24] = 200
    data[25] = 3
    rawFile(
      path,
      {
        a: {dtype: 'F64', shape: [1], data_offsets: [0, 8]},
        b: {dtype: 'F16', shape: [2], data_offsets: [8, 12]},
        c: {dtype: 'BF16', shape: [2], data_offsets: [12, 16]},
        d: {dtype: 'I32', shape: [2], data_offsets: [16, 24]},
        e: {dtype: 'U8', shape: [2], data_offsets: [24, 26]},
      },
      data,
    )
    const st = await openSafetensors(path)
    assert.deepEqual([...(await st.read('a')).data], [-0.125])
    assert.deepEqual([...(await st.read('b')).data], [1, -2.5])
    assert.deepEqual([...(await st.read('c')).data], [1, -2.5])
    assert.deepEqual([...(await st.read('d')).data], [-5, 123456])
    assert.deepEqual([...(await st.read('e')).data], [200, 3])
    await st.close()
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('corrupt, truncated and inconsistent files fail naming the file and the tensor', async () => {
  const dir = tmp()
  try {
    const good = join(dir, 'good.safetensors')
    await writeSafetensors(good, [
      {name: 'w', shape: [4, 4], data: new Float32Array(16).fill(1)},
      {name: 'b', shape: [4], data: new Float32Array(4)},
    ])
    const bytes = readFileSync(good)
    const trunc = join(dir, 'trunc.safetensors')
    writeFileSync(trunc, bytes.subarray(0, bytes.length - 5))
    await rejectsWith(openSafetensors(trunc), 'trunc.safetensors', /tensor "(w|b)"/, 'truncated')
    const tiny = join(dir, 'tiny.safetensors')
    writeFileSync(tiny, bytes.subarray(0, 5))
    await rejectsWith(openSafetensors(tiny), 'tiny.safetensors', 'shorter than')
    const cutHeader = join(dir, 'cuthdr.safetensors')
    writeFileSync(cutHeader, bytes.subarray(0, 20))
    await rejectsWith(openSafetensors(cutHeader), 'cuthdr.safetensors', 'runs past the end')

    const p = (n: string) => join(dir, n)
    rawFile(p('huge.safetensors'), {}, new Uint8Array(0), 200_000_000n)
    await rejectsWith(openSafetensors(p('huge.safetensors')), 'huge.safetensors', 'exceeds')
    writeFileSync(p('json.safetensors'), Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a"')]))
    await rejectsWith(openSafetensors(p('json.safetensors')), 'json.safetensors', 'not valid UTF-8 JSON')
    rawFile(p('dtype.safetensors'), {x: {dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1]}}, new Uint8Array(1))
    await rejectsWith(openSafetensors(p('dtype.safetensors')), 'dtype.safetensors', 'tensor "x"', 'unsupported dtype')
    rawFile(p('size.safetensors'), {x: {dtype: 'F32', shape: [3], data_offsets: [0, 8]}}, new Uint8Array(8))
    await rejectsWith(openSafetensors(p('size.safetensors')), 'tensor "x"', 'does not match shape [3]')
    rawFile(
      p('overlap.safetensors'),
      {x: {dtype: 'F32', shape: [2], data_offsets: [0, 8]}, y: {dtype: 'F32', shape: [2], data_offsets: [4, 12]}},
      new Uint8Array(12),
    )
    await rejectsWith(openSafetensors(p('overlap.safetensors')), 'overlap.safetensors', 'tensor "y"', 'overlap')
    rawFile(
      p('hole.safetensors'),
      {x: {dtype: 'F32', shape: [1], data_offsets: [0, 4]}, y: {dtype: 'F32', shape: [1], data_offsets: [8, 12]}},
      new Uint8Array(12),
    )
    await rejectsWith(openSafetensors(p('hole.safetensors')), 'tensor "y"', 'hole')
    rawFile(p('trail.safetensors'), {x: {dtype: 'F32', shape: [1], data_offsets: [0, 4]}}, new Uint8Array(9))
    await rejectsWith(openSafetensors(p('trail.safetensors')), 'trail.safetensors', 'trailing bytes')
    rawFile(p('shape.safetensors'), {x: {dtype: 'F32', shape: [-1], data_offsets: [0, 4]}}, new Uint8Array(4))
    await rejectsWith(openSafetensors(p('shape.safetensors')), 'tensor "x"', 'shape must be')
    await rejectsWith(openSafetensors(p('absent.safetensors')), 'absent.safetensors', 'no such file')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('sharded checkpoints open as one, and a bad index names the shard and tensor', async () => {
  const dir = tmp()
  try {
    await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [{name: 'a', shape: [2], data: new Float32Array([1, 2])}], {format: 'pt'})
    await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [{name: 'b', shape: [1], data: new Float32Array([3])}], {format: 'pt'})
    const index = {metadata: {total_size: 12}, weight_map: {a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors'}}
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index))
    const st = await openSafetensors(dir)
    assert.deepEqual(st.tensors().map((t) => t.name).sort(), ['a', 'b'])
    assert.deepEqual([...(await st.read('a')).data], [1, 2])
    assert.deepEqual([...(await st.read('b')).data], [3])
    assert.deepEqual(st.metadata, {format: 'pt'})
    await st.close()

    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({weight_map: {...index.weight_map, c: 'model-00002-of-00002.safetensors'}}))
    await rejectsWith(openSafetensors(dir), 'model-00002-of-00002.safetensors', 'tensor "c"', 'missing from this shard')
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({weight_map: {a: 'gone.safetensors'}}))
    await rejectsWith(openSafetensors(dir), 'model.safetensors.index.json', 'gone.safetensors')
    rmSync(join(dir, 'model.safetensors.index.json'))
    await rejectsWith(openSafetensors(dir), 'neither model.safetensors')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('writing is atomic: a failing write leaves the previous file and no temporary', async () => {
  const dir = tmp()
  try {
    const path = join(dir, 'm.safetensors')
    await writeSafetensors(path, [{name: 'a', shape: [1], data: new Float32Array([5])}])
    const before = readFileSync(path)
    async function* bad() {
      yield {name: 'a', shape: [2], data: new Float32Array([1, 2])}
      yield {name: 'b', shape: [3], data: new Float32Array([1])}
    }
    await rejectsWith(writeSafetensors(path, bad()), 'tensor "b"', 'needs 3')
    await rejectsWith(writeSafetensors(path, [{name: 'i', shape: [1], dtype: 'F16', data: new Int32Array([1])}]), 'cannot write Int32Array data as F16')
    assert.deepEqual(readFileSync(path), before)
    assert.deepEqual(readdirSync(dir), ['m.safetensors'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('reads the bert-tiny fixture checkpoint', async (t) => {
  const dir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!dir) return
  const st = await openSafetensors(dir)
  const infos = st.tensors()
  assert.equal(infos.length, 37)
  assert.deepEqual(st.info('embeddings.word_embeddings.weight').shape, [2757, 64])
  const w = await st.read('encoder.layer.1.output.dense.weight')
  assert.deepEqual(w.shape, [64, 128])
  assert.equal(w.data.length, 64 * 128)
  assert.ok([...w.data].every((x) => Number.isFinite(x as number)))
  await st.close()
})
