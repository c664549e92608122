import assert from 'node:assert/strict'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {before, describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {runCli} from '../helpers/cli.js'
import {REPO_ROOT, useTestBackend} from '../helpers/env.js'

const PLUGIN_DIR = join(REPO_ROOT, 'examples', 'codiemb-plugin-example')
const load = (file: string): Promise<any> => import(pathToFileURL(join(PLUGIN_DIR, 'src', file)).href)

describe('example plugin: cosine-mse loss', () => {
  before(async () => {
    await useTestBackend()
  })

  it('equals the mean squared error of cosine similarity and label, with the analytic gradient', async () => {
    const {create} = await load('cosine-mse.js')
    const loss = create({scale: 2})
    const l = tf.tensor2d([[0.6, 0.8], [1, 0], [0, 1]])
    const r = tf.tensor2d([[1, 0], [0.6, 0.8], [0, 1]])
    const labels = [0.5, 0.1, 1]
    // s = [0.6, 0.6, 1]; (s - y)^2 = [0.01, 0.25, 0]; mean = 0.0866..., scaled by 2
    const before = tf.memory().numTensors
    const value = loss.compute({left: l, right: r, labels})
    assert.ok(Math.abs(value.dataSync()[0] - (2 * 0.26) / 3) < 1e-6)
    value.dispose()
    assert.equal(tf.memory().numTensors, before, 'cosine-mse leaks tensors')
    // d/dleft_i = scale * 2/n * (s_i - y_i) * right_i
    const g = tf.grad((x: tf.Tensor) => loss.compute({left: x as tf.Tensor2D, right: r, labels}))(l)
    const expected = [[1, 0], [0.6, 0.8], [0, 0]].map((row, i) => row.map((v) => ((2 * 2) / 3) * ([0.1, 0.5, 0][i]) * v))
    const got = g.arraySync() as number[][]
    for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) assert.ok(Math.abs(got[i][j] - expected[i][j]) < 1e-6, `grad[${i}][${j}]`)
    tf.dispose([l, r, g])
  })

  it('rejects a batch whose labels do not match its pairs', async () => {
    const {create} = await load('cosine-mse.js')
    const x = tf.ones([2, 2]) as tf.Tensor2D
    assert.throws(() => create().compute({left: x, right: x, labels: [1]}), /2 pairs but 1 labels/)
    x.dispose()
  })
})

describe('example plugin: sequential sampler', () => {
  const datasets = [
    {name: 'ir-a', task: 'ir', size: 10},
    {name: 'sts-b', task: 'sts', size: 7},
  ]

  it('makes single-dataset batches of the task batch size, in order, using every row once', async () => {
    const {create} = await load('sequential.js')
    const s = create(datasets, {batchSizes: {ir: 4, sts: 3}})
    const plan = s.epochPlan()
    assert.deepEqual(plan.map((b: any) => [b.parts.length, b.parts[0].dataset, b.parts[0].rows.length]), [
      [1, 0, 4], [1, 0, 4], [1, 0, 2], [1, 1, 3], [1, 1, 3], [1, 1, 1],
    ])
    const seen = datasets.map((d) => new Array(d.size).fill(0))
    for (const b of plan) for (const r of b.parts[0].rows) seen[b.parts[0].dataset][r]++
    assert.ok(seen.every((rows) => rows.every((n) => n === 1)))
    assert.equal(s.batchSize('sts'), 3)
  })

  it('resumes from a saved position and drops short batches when asked', async () => {
    const {create} = await load('sequential.js')
    const a = create(datasets, {batchSizes: {ir: 4, sts: 3}})
    a.next()
    a.next()
    const b = create(datasets, {batchSizes: {ir: 4, sts: 3}})
    b.setState(a.getState())
    assert.deepEqual(b.next(), a.next())
    assert.throws(() => b.setState({epoch: 0, position: 99, epochRng: 0}), /cannot resume at batch 99/)
    const dropped = create(datasets, {batchSizes: {ir: 4, sts: 3}, dropLast: true})
    assert.equal(dropped.epochPlan().length, 4)
  })
})

describe('example plugin: linked into the CLI', () => {
  it('`codiemb plugins link` makes its loss and sampler appear in `codiemb list --json` with the plugin name', () => {
    const home = mkdtempSync(join(tmpdir(), 'codiemb-plugins-'))
    const env = {CODIEMB_DATA_DIR: join(home, 'data'), CODIEMB_CACHE_DIR: join(home, 'cache'), CODIEMB_CONFIG_DIR: join(home, 'config')}
    const before = runCli(['list', '--json'], {env})
    assert.ok(!before.json.result.entries.some((e: {name: string}) => e.name === 'cosine-mse'))
    const link = runCli(['plugins', 'link', PLUGIN_DIR, '--no-install'], {env})
    assert.equal(link.status, 0, link.stderr)
    const after = runCli(['list', '--json'], {env})
    assert.equal(after.status, 0, after.stderr)
    const mine = after.json.result.entries
      .filter((e: {plugin: string}) => e.plugin === 'codiemb-plugin-example')
      .map((e: {kind: string; name: string}) => `${e.kind}:${e.name}`)
      .sort()
    assert.deepEqual(mine, ['loss:cosine-mse', 'sampler:sequential'])
    assert.deepEqual(after.json.warnings, [])
    const unlink = runCli(['plugins', 'unlink', 'codiemb-plugin-example'], {env})
    assert.equal(unlink.status, 0, unlink.stderr)
    assert.ok(!runCli(['list', '--json'], {env}).json.result.entries.some((e: {name: string}) => e.name === 'cosine-mse'))
  })
})
