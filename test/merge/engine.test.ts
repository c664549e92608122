import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {existsSync, readdirSync, readFileSync, rmSync, writeFileSync, truncateSync, statSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {after, describe, it, type TestContext} from 'node:test'
import {mergeCheckpoints, type MergeReport} from '../../src/merge/engine.js'
import {MergeInputError} from '../../src/merge/types.js'
import {readOutputMarker} from '../../src/core/outputs.js'
import {openSafetensors} from '../../src/io/safetensors.js'
import {builtinRegistry} from '../../src/builtins.js'
import {shared, BUILTINS} from '../helpers/env.js'
import {baseTensors, noise, perturbed, readTensors, tempDir, writeCheckpoint, type Tensors} from './checkpoints.js'

const root = tempDir('merge-engine')
after(() => rmSync(root, {recursive: true, force: true}))

interface Fixtures {
  base: string
  a: string
  b: string
  c: string
  aCopy: string
  aHalf: string
  aDouble: string
  tensors: {base: Tensors; a: Tensors; b: Tensors; c: Tensors}
}
let fixtures: Promise<Fixtures> | undefined
async function setup(t: TestContext): Promise<Fixtures | undefined> {
  const models = shared(t, 'fixtures', 'models')
  if (!models) return undefined
  fixtures ??= (async () => {
    const base = await baseTensors(models)
    const delta = (seed: number, scale: number) => (name: string, n: number) => noise(n, seed + name.length).map((x) => x * scale)
    const reversed = (_: string, d: unknown) => (d as BigInt64Array).slice().reverse()
    const a = perturbed(base, delta(1, 0.01), reversed)
    const b = perturbed(base, delta(2, 0.02), reversed)
    const c = perturbed(base, delta(3, 0.005), reversed)
    const scaled = (s: number) => perturbed(base, (name, n) => delta(1, 0.01)(name, n).map((x) => x * s))
    return {
      base: await writeCheckpoint(models, join(root, 'base'), base, false),
      a: await writeCheckpoint(models, join(root, 'a'), a),
      b: await writeCheckpoint(models, join(root, 'b'), b),
      c: await writeCheckpoint(models, join(root, 'c'), c),
      aCopy: await writeCheckpoint(models, join(root, 'a-copy'), a),
      aHalf: await writeCheckpoint(models, join(root, 'a-half'), scaled(0.5)),
      aDouble: await writeCheckpoint(models, join(root, 'a-double'), scaled(2)),
      tensors: {base, a, b, c},
    }
  })()
  return fixtures
}

let outCount = 0
const outDir = (label: string) => join(root, 'out', `${label}-${++outCount}`)

function assertTensorsClose(actual: Tensors, expected: Tensors, tol: number, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: tensor names`)
  for (const [name, e] of expected) {
    const a = actual.get(name)!
    assert.deepEqual(a.shape, e.shape, `${what}: ${name} shape`)
    if (!(e.data instanceof Float32Array)) {
      assert.deepEqual(Array.from(a.data as BigInt64Array), Array.from(e.data as BigInt64Array), `${what}: ${name}`)
      continue
    }
    let worst = 0
    for (let i = 0; i < e.data.length; i++) worst = Math.max(worst, Math.abs((a.data as Float32Array)[i]! - e.data[i]!))
    assert.ok(worst <= tol, `${what}: ${name} differs by ${worst} (tolerance ${tol})`)
  }
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

function leftovers(): string[] {
  return readdirSync(join(root, 'out')).filter((n) => n.startsWith('.'))
}

describe('merge engine on real bert-tiny checkpoints', () => {
  it('soup of three identical checkpoints returns it, as a complete sentence-transformers checkpoint with merge.json', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const out = outDir('soup')
    const report = await mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [fx.a, fx.aCopy, fx.a], out})
    const expected = new Map(fx.tensors.a)
    expected.set('embeddings.position_ids', fx.tensors.a.get('embeddings.position_ids')!) // no base: integers from checkpoint 1
    assertTensorsClose(await readTensors(out), expected, 1e-7, 'soup')
    for (const f of ['model.safetensors', 'merge.json', 'modules.json', '1_Pooling/config.json', '2_Normalize/config.json', 'config_sentence_transformers.json', 'sentence_bert_config.json', 'tokenizer.json', 'vocab.txt', 'config.json'])
      assert.ok(existsSync(join(out, f)), `output lacks ${f}`)
    assert.equal(readFileSync(join(out, 'config_sentence_transformers.json'), 'utf8'), readFileSync(join(fx.a, 'config_sentence_transformers.json'), 'utf8'))
    const onDisk = JSON.parse(readFileSync(join(out, 'merge.json'), 'utf8')) as MergeReport
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(report)))
    assert.equal(report.method, 'soup')
    assert.equal(report.base, null)
    assert.deepEqual(report.checkpoints.map((c) => c.path), [fx.a, fx.aCopy, fx.a])
    assert.equal(report.checkpoints[1]!.files[0]!.sha256, sha256(join(fx.aCopy, 'model.safetensors')))
    assert.equal(report.checkpoints[1]!.files[0]!.file, 'model.safetensors')
    assert.equal(report.summary.merged, 37)
    assert.equal(report.summary.copied, 1)
    const merged = report.tensors.find((x) => x.name === 'encoder.layer.0.attention.self.query.weight')!
    assert.equal(merged.action, 'merged')
    assert.deepEqual(merged.action === 'merged' && merged.weights, [0.333333, 0.333333, 0.333333])
    assert.deepEqual(report.warnings, [])
  })

  it('copies the model files of --files-from, not its run records, training checkpoints or other exports', async (t) => {
    const fx = await setup(t)
    const models = shared(t, 'fixtures', 'models')
    if (!fx || !models) return
    const run = await writeCheckpoint(models, join(root, 'trained-run'), fx.tensors.b)
    writeFileSync(join(run, 'codiemb_training.json'), '{"steps": 60}')
    mkdirSync(join(run, 'checkpoints', 'checkpoint-40'), {recursive: true})
    writeFileSync(join(run, 'checkpoints', 'checkpoint-40', 'trainer.json'), '{}')
    mkdirSync(join(run, 'onnx'))
    writeFileSync(join(run, 'onnx', 'tokenizer_extra.json'), '{}')
    const out = outDir('files')
    const report = await mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [run, fx.a], out, filesFrom: 1})
    assert.deepEqual(report.output.files, [
      '1_Pooling/config.json', '2_Normalize/config.json', 'config.json', 'config_sentence_transformers.json', 'merge.json',
      'model.safetensors', 'modules.json', 'sentence_bert_config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt',
    ])
    for (const f of report.output.files) assert.ok(existsSync(join(out, f)), f)
    for (const f of ['codiemb_training.json', 'checkpoints', 'onnx']) assert.equal(existsSync(join(out, f)), false, f)
  })

  it('delta and task-arithmetic with one checkpoint and λ=1 return it; λ=0 returns the base; integer tensors come from the base', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const withBaseInts = (x: Tensors) => new Map(x).set('embeddings.position_ids', fx.tensors.base.get('embeddings.position_ids')!)
    for (const method of ['delta', 'task-arithmetic']) {
      const one = outDir(method)
      await mergeCheckpoints({registry: BUILTINS, method, base: fx.base, checkpoints: [fx.b], out: one, options: {lambda: 1}})
      assertTensorsClose(await readTensors(one), withBaseInts(fx.tensors.b), 1e-7, `${method} λ=1`)
      const zero = outDir(method)
      const report = await mergeCheckpoints({registry: BUILTINS, method, base: fx.base, checkpoints: [fx.a, fx.b, fx.c], out: zero, options: {lambda: 0}})
      assertTensorsClose(await readTensors(zero), fx.tensors.base, 0, `${method} λ=0`)
      const ids = report.tensors.find((x) => x.name === 'embeddings.position_ids')!
      assert.deepEqual(ids.action === 'copied' && [ids.from, ids.dtype], ['base', 'I64'])
    }
  })

  it('ties with density 1 and no sign conflict equals task-arithmetic with λ=1/K', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const inputs = {base: fx.base, checkpoints: [fx.a, fx.aHalf, fx.aDouble]}
    const ties = outDir('ties')
    const ta = outDir('ta')
    const r = await mergeCheckpoints({registry: BUILTINS, method: 'ties', ...inputs, out: ties, options: {density: 1}})
    await mergeCheckpoints({registry: BUILTINS, method: 'task-arithmetic', ...inputs, out: ta, options: {lambda: 1 / 3}})
    assertTensorsClose(await readTensors(ties), await readTensors(ta), 1e-7, 'ties vs task-arithmetic')
    assert.deepEqual(r.summary.meanWeights, [0.333333, 0.333333, 0.333333])
    // …and with the default density 0.2 they differ.
    const trimmed = outDir('ties')
    await mergeCheckpoints({registry: BUILTINS, method: 'ties', ...inputs, out: trimmed})
    await assert.rejects(async () => assertTensorsClose(await readTensors(trimmed), await readTensors(ta), 1e-4, 'trimmed'))
  })

  it('dare with p=0 equals its base method, byte for byte', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const inputs = {base: fx.base, checkpoints: [fx.a, fx.b, fx.c]}
    for (const [dareOptions, method, options] of [
      [{p: 0, lambda: 0.5}, 'task-arithmetic', {lambda: 0.5}],
      [{p: 0, combine: 'ties', density: 0.3}, 'ties', {density: 0.3}],
    ] as const) {
      const d = outDir('dare')
      const m = outDir(method)
      await mergeCheckpoints({registry: BUILTINS, method: 'dare', ...inputs, out: d, options: dareOptions})
      await mergeCheckpoints({registry: BUILTINS, method, ...inputs, out: m, options})
      assert.ok(readFileSync(join(d, 'model.safetensors')).equals(readFileSync(join(m, 'model.safetensors'))), `dare p=0 vs ${method}`)
    }
  })

  it("delta's per-tensor weights sum to 1 and favour the checkpoint that moved most; output stays between base and checkpoints", async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const out = outDir('delta')
    const report = await mergeCheckpoints({registry: BUILTINS, base: fx.base, checkpoints: [fx.a, fx.b, fx.c], out})
    assert.equal(report.method, 'delta')
    assert.deepEqual(report.options, {granularity: 'element', weighting: 'power', gamma: 1, temperature: 1, lambda: 1, epsilon: 0})
    for (const x of report.tensors) {
      if (x.action !== 'merged') continue
      const sum = x.weights.reduce((s, w) => s + w, 0)
      assert.ok(Math.abs(sum - 1) < 1e-5, `${x.name}: weights ${x.weights} sum to ${sum}`)
    }
    const [wa, wb, wc] = report.summary.meanWeights as [number, number, number]
    assert.ok(wb > wa && wa > wc, `checkpoint b moved most (scale 0.02), then a (0.01), then c (0.005): ${report.summary.meanWeights}`)
    // Each merged element is a convex combination of the checkpoints' values.
    const merged = await readTensors(out)
    for (const [name, m] of merged) {
      if (!(m.data instanceof Float32Array)) continue
      const vals = [fx.tensors.a, fx.tensors.b, fx.tensors.c].map((x) => x.get(name)!.data as Float32Array)
      for (let i = 0; i < m.data.length; i++) {
        const lo = Math.min(vals[0]![i]!, vals[1]![i]!, vals[2]![i]!)
        const hi = Math.max(vals[0]![i]!, vals[1]![i]!, vals[2]![i]!)
        assert.ok(m.data[i]! >= lo - 1e-6 && m.data[i]! <= hi + 1e-6, `${name}[${i}] = ${m.data[i]} outside [${lo}, ${hi}]`)
      }
    }
  })

  it('include/exclude filters merge some layers and copy the rest from the chosen checkpoint', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const out = outDir('filtered')
    const report = await mergeCheckpoints({registry: BUILTINS, 
      method: 'soup', base: fx.base, checkpoints: [fx.a, fx.b], out,
      include: ['^encoder\\.layer\\.1\\.'], exclude: ['LayerNorm'], copyFrom: 2,
    })
    const got = await readTensors(out)
    for (const [name, tensor] of got) {
      const a = fx.tensors.a.get(name)!.data, b = fx.tensors.b.get(name)!.data
      const rec = report.tensors.find((x) => x.name === name)!
      if (!(tensor.data instanceof Float32Array)) {
        assert.deepEqual(Array.from(tensor.data as BigInt64Array), Array.from(fx.tensors.base.get(name)!.data as BigInt64Array))
        continue
      }
      const shouldMerge = name.startsWith('encoder.layer.1.') && !name.includes('LayerNorm')
      assert.equal(rec.action, shouldMerge ? 'merged' : 'copied', name)
      const expected = shouldMerge ? (a as Float32Array).map((x, i) => 0.5 * x + 0.5 * (b as Float32Array)[i]!) : b
      assertTensorsClose(new Map([[name, tensor]]), new Map([[name, {shape: tensor.shape, data: expected}]]), 1e-7, 'filtered')
      if (!shouldMerge) assert.equal(rec.action === 'copied' && rec.from, 'checkpoint 2')
    }
    assert.equal(report.summary.merged, 12)
    await assert.rejects(
      mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [fx.a, fx.b], out: outDir('x'), include: ['^nothing']}),
      /nothing to merge: the include\/exclude filters select none of them/,
    )
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [fx.a], out: outDir('x'), include: ['(']}), /--include "\(": not a valid regular expression/)
  })

  it('a shape or name mismatch names the tensor and both files', async (t) => {
    const fx = await setup(t)
    const models = shared(t, 'fixtures', 'models')
    if (!fx || !models) return
    const wrongShape = new Map(fx.tensors.a)
    wrongShape.set('encoder.layer.1.output.dense.bias', {shape: [32], data: new Float32Array(32)})
    const bad = await writeCheckpoint(models, join(root, 'bad-shape'), wrongShape)
    await assert.rejects(
      mergeCheckpoints({registry: BUILTINS, base: fx.base, checkpoints: [fx.a, bad], out: outDir('x')}),
      (e: Error) =>
        e instanceof MergeInputError &&
        e.message.includes('tensor "encoder.layer.1.output.dense.bias" has shape [64]') &&
        e.message.includes(join(fx.base, 'model.safetensors')) &&
        e.message.includes(`but [32] in ${join(bad, 'model.safetensors')} (checkpoint 2)`),
    )
    const missing = new Map(fx.tensors.a)
    missing.delete('encoder.layer.0.intermediate.dense.weight')
    const short = await writeCheckpoint(models, join(root, 'missing'), missing)
    await assert.rejects(
      mergeCheckpoints({registry: BUILTINS, base: fx.base, checkpoints: [short], out: outDir('x')}),
      /tensor\(s\) "encoder.layer.0.intermediate.dense.weight" of .*base\/model.safetensors \(base\) are missing from .*missing\/model.safetensors \(checkpoint 1\)/,
    )
    assert.deepEqual(leftovers(), [])
  })

  it('corrupt input fails with the file named and leaves no output or temporary directory', async (t) => {
    const fx = await setup(t)
    const models = shared(t, 'fixtures', 'models')
    if (!fx || !models) return
    const corrupt = await writeCheckpoint(models, join(root, 'corrupt'), fx.tensors.c)
    const weights = join(corrupt, 'model.safetensors')
    truncateSync(weights, statSync(weights).size - 100)
    const out = outDir('corrupt')
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, base: fx.base, checkpoints: [fx.a, corrupt], out}), (e: Error) => e.message.startsWith(weights) && /truncated/.test(e.message))
    writeFileSync(weights, 'not a safetensors file at all')
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, base: fx.base, checkpoints: [fx.a, corrupt], out}), (e: Error) => e.message.startsWith(weights))
    const empty = join(root, 'empty-dir')
    mkdirSync(empty, {recursive: true})
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, base: fx.base, checkpoints: [empty], out}), /neither model.safetensors nor model.safetensors.index.json/)
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, base: fx.base, checkpoints: [join(root, 'nope')], out}), /checkpoint 1 .*nope: no such directory/)
    assert.equal(existsSync(out), false)
    assert.deepEqual(leftovers(), [])
  })

  it('writes atomically: a failure mid-merge leaves nothing; an existing output needs force and is then replaced', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const registry = await builtinRegistry()
    const soup = await registry.load<{mergeTensor: (...a: unknown[]) => number[]}>('merger', 'soup')
    let calls = 0
    registry.add('test', [{
      kind: 'merger', name: 'fails-midway', description: 'throws on its fifth tensor', optionsSchema: {type: 'object'},
      load: async () => ({...soup, name: 'fails-midway', mergeTensor: (...a: unknown[]) => {
        if (++calls === 5) throw new Error('boom on the fifth tensor')
        return soup.mergeTensor(...a)
      }}),
    }])
    const out = outDir('atomic')
    await assert.rejects(mergeCheckpoints({method: 'fails-midway', registry, checkpoints: [fx.a, fx.b], out}), /boom on the fifth tensor/)
    assert.equal(existsSync(out), false)
    assert.deepEqual(leftovers(), [])

    await mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [fx.a], out})
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [fx.b], out}), /already exists; pass --force/)
    assertTensorsClose(await readTensors(out), fx.tensors.a, 0, 'kept')
    await mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [fx.b], out, force: true})
    assertTensorsClose(await readTensors(out), new Map(fx.tensors.b), 0, 'replaced')
    assert.equal(readOutputMarker(out)?.command, 'merge', 'the output carries the marker that lets a later --force replace it')
    assert.deepEqual(leftovers(), [])
    const notes = outDir('notes')
    mkdirSync(notes, {recursive: true})
    writeFileSync(join(notes, 'notes.txt'), 'mine')
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [fx.b], out: notes, force: true}), /is not a model codiemb wrote \(no \.codiemb-output\.json\); merge never replaces it, --force or not/)
    assert.deepEqual(readdirSync(notes), ['notes.txt'])
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [fx.a], out: fx.a, force: true}), /would replace checkpoint 1/)
  })

  it('checks method, base and options before reading anything', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, method: 'avg', checkpoints: [fx.a], out: outDir('x')}), /unknown merger "avg"; registered mergers: dare, delta, soup, task-arithmetic, ties/)
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, method: 'ties', checkpoints: [fx.a], out: outDir('x')}), /needs the base model: pass --base DIR/)
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, base: fx.base, checkpoints: [fx.a], out: outDir('x'), options: {gamma: -1}}), /\/gamma: expected number >= 0, got -1/)
    await assert.rejects(mergeCheckpoints({registry: BUILTINS, checkpoints: [fx.a], method: 'soup', out: outDir('x'), copyFrom: 'base'}), /copyFrom "base": no --base was given/)
  })

  it('writes F16 output when asked, and warns when the files come from a plain Hugging Face checkpoint', async (t) => {
    const fx = await setup(t)
    if (!fx) return
    const out = outDir('f16')
    const report = await mergeCheckpoints({registry: BUILTINS, method: 'task-arithmetic', base: fx.base, checkpoints: [fx.a], out, dtype: 'F16', filesFrom: 'base'})
    const f = await openSafetensors(out)
    assert.equal(f.info('encoder.layer.0.attention.self.query.weight').dtype, 'F16')
    assert.equal(f.info('embeddings.position_ids').dtype, 'I64')
    await f.close()
    assertTensorsClose(await readTensors(out), new Map(fx.tensors.a).set('embeddings.position_ids', fx.tensors.base.get('embeddings.position_ids')!), 2e-3, 'f16')
    assert.equal(existsSync(join(out, 'modules.json')), false)
    assert.match(report.warnings.join('\n'), /base .* has no modules.json: the output is a plain Hugging Face checkpoint/)
  })
})
