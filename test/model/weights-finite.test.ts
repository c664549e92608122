/**
 * A model whose weights hold NaN or ±Infinity (a diverged run saved by another tool, a damaged
 * file) is refused by loadEncoder, naming the file, the tensor and the first bad index, instead of
 * training or embedding with NaN.
 */
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import {initRandomEncoder, loadEncoder} from '../../src/model/encoder.js'
import {firstNonFiniteIndex} from '../../src/io/finite-values.js'
import {BUILTINS, useTestBackend} from '../helpers/env.js'

/** Overwrites element `index` of float32 tensor `name` in a safetensors file with `value`. */
function poke(file: string, name: string, index: number, value: number): void {
  const bytes = readFileSync(file)
  const headerLength = Number(bytes.readBigUInt64LE(0))
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, {dtype: string; data_offsets: [number, number]}>
  const entry = header[name]
  assert.ok(entry && entry.dtype === 'F32', `${name} is an F32 tensor of the file`)
  bytes.writeFloatLE(value, 8 + headerLength + entry.data_offsets[0] + 4 * index)
  writeFileSync(file, bytes)
}

test('firstNonFiniteIndex finds NaN and ±Infinity, and nothing in finite values however large', () => {
  assert.equal(firstNonFiniteIndex(new Float32Array([1, 3.4e38, -3.4e38, 0])), -1)
  assert.equal(firstNonFiniteIndex(new Float32Array([1, 2, NaN, Infinity])), 2)
  assert.equal(firstNonFiniteIndex([0, -Infinity]), 1)
  assert.equal(firstNonFiniteIndex(new Float32Array(0)), -1)
})

test('loadEncoder refuses weights holding NaN or Infinity, naming the file, tensor and index', async () => {
  await useTestBackend()
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-nanw-'))
  try {
    const vocab = join(dir, 'vocab')
    mkdirSync(vocab)
    writeFileSync(join(vocab, 'vocab.txt'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'b', 'c'].join('\n') + '\n')
    const model = join(dir, 'model')
    const encoder = await initRandomEncoder({registry: BUILTINS, arch: 'bert', tokenizerDir: vocab, layers: 1, hidden: 8, heads: 2, intermediate: 16, maxPositions: 16, seed: 1})
    await encoder.save(model)
    encoder.dispose()
    const weights = join(model, 'model.safetensors')
    const clean = readFileSync(weights)
    const ok = await loadEncoder(model, {registry: BUILTINS})
    ok.dispose()
    const tensor = Object.keys(JSON.parse(clean.subarray(8, 8 + Number(clean.readBigUInt64LE(0))).toString('utf8'))).find((n) => n.endsWith('attention.self.query.weight'))!
    for (const value of [NaN, Infinity, -Infinity]) {
      writeFileSync(weights, clean)
      poke(weights, tensor, 5, value)
      await assert.rejects(loadEncoder(model, {registry: BUILTINS}), {
        name: 'EncoderLoadError',
        message: `${weights}: tensor "${tensor}" holds ${value} at index 5; refusing weights that are not finite (a damaged or diverged checkpoint)`,
      })
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
