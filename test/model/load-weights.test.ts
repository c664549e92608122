/**
 * Sharded checkpoints (Hugging Face's model.safetensors.index.json + model-0000i-of-0000n.safetensors)
 * load tensor by tensor (src/model/load-weights.ts) to exactly the embeddings of the single file, for
 * the decoder fixtures (qwen3-tiny F32, minicpm-tiny BF16) and bert-tiny; a missing shard, an index
 * naming a tensor its shard lacks, an index leaving a weight out and a truncated shard fail with an
 * input error (exit 2) naming the file and the tensor, on the library and on the command line.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {loadEncoder, type Encoder} from '../../src/model/encoder.js'
import {CodiembError} from '../../src/core/errors.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'
import {runCommandJson} from '../helpers/cli.js'
import {loadableFixture, readExpected, textFor} from '../helpers/decoder-fixtures.js'
import {shardCheckpoint} from '../helpers/sharded.js'

const POOLING = {'qwen3-tiny': 'last-token', 'minicpm-tiny': 'weighted-mean'} as const

async function encodeAll(dir: string, texts: string[], pooling?: Encoder['pooling']): Promise<number[][]> {
  const enc = await loadEncoder(dir, {registry: BUILTINS, trainable: false})
  try {
    if (pooling) enc.pooling = pooling
    return (await enc.encode(texts, {normalize: true, batchSize: 3})).map((v) => [...v])
  } finally {
    enc.dispose()
  }
}

/** A model directory ready to load and the texts to embed with it, for each fixture. */
function prepare(t: Parameters<typeof shared>[0], name: string): {dir: string; texts: string[]; pooling?: Encoder['pooling']; expected?: number[][]} | undefined {
  const fixture = shared(t, 'fixtures', 'models', name)
  if (!fixture) return undefined
  if (name === 'bert-tiny') {
    const dir = join(mkdtempSync(join(tmpdir(), 'codiemb-shard-')), 'model')
    cpSync(join(fixture, 'model'), dir, {recursive: true})
    return {dir, texts: ['A man is playing a guitar.', 'Hi', '今天天气很好']}
  }
  const expected = readExpected(fixture)
  return {dir: loadableFixture(fixture, 'right'), texts: expected.sequences.map((ids) => textFor(expected, ids)), pooling: POOLING[name as keyof typeof POOLING], expected: expected.embeddings}
}

for (const [name, shards] of [['qwen3-tiny', 3], ['minicpm-tiny', 2], ['bert-tiny', 3]] as const) {
  test(`${name} split into ${shards} shards with an index loads to identical embeddings`, async (t) => {
    const setup = prepare(t, name)
    if (!setup) return
    await useTestBackend()
    const {dir, texts, pooling, expected} = setup
    try {
      const single = await encodeAll(dir, texts, pooling)
      const copy = join(dirname(dir), 'sharded')
      cpSync(dir, copy, {recursive: true})
      const {weightMap, files} = await shardCheckpoint(copy, shards)
      assert.ok(files.length >= 2 && new Set(Object.values(weightMap)).size === files.length, `shards: ${files.join(', ')}`)
      t.diagnostic(`${files.length} shards`)
      assert.deepEqual(await encodeAll(copy, texts, pooling), single, 'sharded and single-file checkpoints give the same vectors')
      if (expected) {
        const diff = Math.max(...expected.flatMap((row, b) => row.map((x, i) => Math.abs(x - single[b]![i]!))))
        assert.ok(diff <= 1e-5, `embeddings differ from the fixture by ${diff}`)
      }
    } finally {
      rmSync(dirname(dir), {recursive: true, force: true})
    }
  })
}

/** Asserts `promise` rejects with an input error (exit 2) whose message holds every one of `parts`. */
async function rejectsNaming(promise: Promise<unknown>, ...parts: string[]): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof CodiembError, `expected a CodiembError, got ${String(e)}`)
    assert.equal(e.exitCode, 2)
    for (const p of parts) assert.ok(e.message.includes(p), `"${p}" not in: ${e.message}`)
    return true
  })
}

test('a broken sharded checkpoint fails with exit 2 naming the file and the tensor', async (t) => {
  const setup = prepare(t, 'qwen3-tiny')
  if (!setup) return
  await useTestBackend()
  const root = dirname(setup.dir)
  const fresh = (label: string) => {
    const dir = join(root, label)
    cpSync(join(root, 'base'), dir, {recursive: true})
    return dir
  }
  try {
    cpSync(setup.dir, join(root, 'base'), {recursive: true})
    const {weightMap, files} = await shardCheckpoint(join(root, 'base'), 3)
    assert.ok(files.length >= 3, `shards: ${files.join(', ')}`)
    const n = files.length
    const inShard = (i: number) => Object.keys(weightMap).filter((name) => weightMap[name] === files[i])
    const load = (dir: string) => loadEncoder(dir, {registry: BUILTINS, trainable: false})

    // A shard the index names is not there: the index, the shard and a tensor it should hold.
    const missing = fresh('missing')
    rmSync(join(missing, files[1]!))
    await rejectsNaming(load(missing), 'model.safetensors.index.json', files[1]!, `"${inShard(1)[0]}"`, 'does not exist')
    // The index places a tensor in a shard that lacks it.
    const stray = fresh('stray')
    const index = JSON.parse(readFileSync(join(stray, 'model.safetensors.index.json'), 'utf8'))
    const moved = inShard(n - 1)[0]!
    index.weight_map[moved] = files[0]!
    writeFileSync(join(stray, 'model.safetensors.index.json'), JSON.stringify(index))
    await rejectsNaming(load(stray), files[0]!, `"${moved}"`, 'missing from this shard')
    // The index leaves a weight of the model out.
    const omitted = fresh('omitted')
    const index2 = JSON.parse(readFileSync(join(omitted, 'model.safetensors.index.json'), 'utf8'))
    delete index2.weight_map[moved]
    writeFileSync(join(omitted, 'model.safetensors.index.json'), JSON.stringify(index2))
    await rejectsNaming(load(omitted), 'model.safetensors.index.json', `"${moved}"`, 'is missing')
    // A truncated shard: its last tensor runs past the end of the file.
    const truncated = fresh('truncated')
    const last = join(truncated, files[n - 1]!)
    truncateSync(last, statSync(last).size - 16)
    await rejectsNaming(load(truncated), files[n - 1]!, `"${inShard(n - 1).at(-1)}"`, 'truncated')

    // The command line: exit 2 and the same message.
    writeFileSync(join(root, 'in.txt'), 't5 t7\n')
    const {envelope, status} = runCommandJson('embed.js', ['--model', missing, '--input', join(root, 'in.txt'), '--out', join(root, 'out.arrow')])
    assert.equal(status, 2, JSON.stringify(envelope))
    assert.match(JSON.stringify(envelope), new RegExp(files[1]!.replace(/\./g, '\\.')))
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
