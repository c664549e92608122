import assert from 'node:assert/strict'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {CodiembError} from '../../src/core/errors.js'
import {deepMerge, loadConfig} from '../../src/config/load.js'
import {configSchema} from '../../src/config/schema.js'

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'codiemb-cfg-'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text)
  return d
}

async function configError(p: Promise<unknown>): Promise<CodiembError> {
  try {
    await p
  } catch (error) {
    assert.ok(error instanceof CodiembError, String(error))
    return error
  }
  assert.fail('expected a configuration error')
}

describe('loadConfig', () => {
  it('loads JSON and YAML files given explicitly', async () => {
    const d = dir({'a.json': '{"seed": 7, "backend": {"name": "cpu"}}', 'b.yaml': 'seed: 8\nbackend:\n  device: cuda:1\n'})
    assert.deepEqual((await loadConfig(join(d, 'a.json'))).config, {seed: 7, backend: {name: 'cpu'}})
    const b = await loadConfig(join(d, 'b.yaml'))
    assert.deepEqual(b.asWritten, {seed: 8, backend: {device: 'cuda:1'}})
    // The loaded configuration has the schema's defaults filled in (backend.name: "auto").
    assert.deepEqual(b.config, {seed: 8, backend: {device: 'cuda:1', name: 'auto'}})
  })

  it('loads .mjs configs', async () => {
    const d = dir({'c.mjs': 'export default {seed: 3 * 3}'})
    assert.deepEqual((await loadConfig(join(d, 'c.mjs'))).config, {seed: 9})
  })

  it('finds .codiembrc.yaml by the standard search when no file is given', async () => {
    const d = dir({'.codiembrc.yaml': 'seed: 11\n'})
    const loaded = await loadConfig(undefined, d)
    assert.equal(loaded.filepath, join(d, '.codiembrc.yaml'))
    assert.deepEqual(loaded.config, {seed: 11})
  })

  it('layers $import bases: objects merge, scalars and arrays are replaced, imports chain', async () => {
    const d = dir({
      'root.yaml': 'seed: 1\nbackend:\n  name: cpu\n  precision: fp32\n',
      'base.yaml': '$import: root.yaml\nbackend:\n  device: cpu\n',
      'run.json': '{"$import": ["base.yaml"], "backend": {"precision": "bf16"}}',
    })
    const loaded = await loadConfig(join(d, 'run.json'))
    assert.deepEqual(loaded.config, {seed: 1, backend: {name: 'cpu', device: 'cpu', precision: 'bf16'}})
    assert.deepEqual(deepMerge({a: [1, 2], b: {c: 1}}, {a: [3], b: {d: 2}}), {a: [3], b: {c: 1, d: 2}})
  })

  it('fills in the schema defaults of every section once, and keeps the configuration as written beside it', async () => {
    const d = dir({'m.yaml': 'merge:\n  checkpoints: [a, b]\ntrain:\n  model: m\n  output: o\n  data: [x.arrow]\n  epochs: 3\n'})
    const loaded = await loadConfig(join(d, 'm.yaml'))
    assert.deepEqual(loaded.asWritten, {merge: {checkpoints: ['a', 'b']}, train: {model: 'm', output: 'o', data: ['x.arrow'], epochs: 3}})
    assert.deepEqual(loaded.config.merge, {checkpoints: ['a', 'b'], method: 'delta', dtype: 'keep', force: false})
    const train = loaded.config.train as Record<string, unknown>
    assert.equal(train.epochs, 3)
    assert.equal(train.learningRate, 1e-5)
    assert.deepEqual(train.checkpoint, {everyEpoch: true, everySteps: 0, keepLast: 2})
    assert.deepEqual(train.tasks, {ir: {maxLength: {query: 64, passage: 256}}, sts: {maxLength: 64}})
  })

  it('reports $import cycles and missing imports with the file', async () => {
    const d = dir({'x.yaml': '$import: y.yaml\n', 'y.yaml': '$import: x.yaml\n', 'z.yaml': '$import: nowhere.yaml\n'})
    assert.match((await configError(loadConfig(join(d, 'x.yaml')))).message, /cannot read config .*x\.yaml: .*(circular|cycle)/i)
    const missing = await configError(loadConfig(join(d, 'z.yaml')))
    assert.match(missing.message, /cannot read config .*z\.yaml: .*nowhere\.yaml/)
    assert.equal(missing.exitCode, 2)
  })

  it('reports a missing config file and unparsable YAML with the path', async () => {
    const d = dir({'broken.yaml': 'seed: [1, 2\n'})
    assert.match((await configError(loadConfig(join(d, 'none.yaml')))).message, /config file not found: .*none\.yaml/)
    assert.match((await configError(loadConfig(join(d, 'broken.yaml')))).message, /cannot read config .*broken\.yaml/)
  })

  it('lists every problem with its JSON pointer, expectation and value; unknown keys are errors', async () => {
    const d = dir({'bad.yaml': 'seed: "64"\nbackend:\n  precision: fp8\n  device: tpu\n  colour: blue\nsurprise: 1\n'})
    const e = await configError(loadConfig(join(d, 'bad.yaml')))
    assert.equal(e.exitCode, 2)
    const problems = (e.data as {problems: string[]}).problems
    assert.deepEqual(problems.sort(), [
      '/backend/colour: unknown key (allowed here: name, device, precision)',
      '/backend/device: expected string matching /^(cpu|cuda(:[0-9]+)?)$/, got "tpu"',
      '/backend/precision: expected one of "fp32", "tf32", "bf16", got "fp8"',
      '/seed: expected integer >= 0, got "64"',
      // every section schema in data-schemas/config/ is an allowed key too
      `/surprise: unknown key (allowed here: ${Object.keys((configSchema() as {properties: object}).properties).join(', ')})`,
    ])
    assert.match(problems.at(-1)!, /^\/surprise: unknown key \(allowed here: \$schema, \$import, backend, seed/)
    for (const p of problems) assert.ok(e.message.includes(p))
  })
})
