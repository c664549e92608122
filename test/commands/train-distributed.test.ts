/** `codiemb train --nproc-per-node 2` end to end on the torch backend (the real CLI, two local ranks). */
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import {REPO_ROOT, shared} from '../helpers/env.js'
import {runCliAsync} from '../helpers/cli.js'
import {distributedAvailable} from '../helpers/dist.js'
import {writeToyTrainingData} from '../helpers/toy-training-data.js'

/** 32 IR rows (1 positive, 1 negative) and 24 STS pairs. */
const writeData = (dir: string) => writeToyTrainingData(dir, {irRows: 32, negativeOffsets: () => [1]})

test('codiemb train --nproc-per-node 2 trains with cross-device negatives, rank 0 checkpoints and saves; a resume with another world size is refused, one with the same gives the uninterrupted model', async (t) => {
  if (!(await distributedAvailable(t))) return
  const vocab = shared(t, 'data', 'bert-vocab-zh')
  if (!vocab) return
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-train-dist-'))
  try {
    await writeData(dir)
    const configFile = (name: string, extra: Record<string, unknown> = {}) => {
      const file = join(dir, `${name}.json`)
      writeFileSync(file, JSON.stringify({
        train: {
          model: {init: {arch: 'bert', tokenizer: vocab, layers: 1, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32, seed: 3}},
          output: join(dir, name), dataDir: dir, data: ['ir.arrow', 'sts.arrow'],
          tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 1, temperature: 0.05, crossDeviceNegatives: true}}], maxLength: {query: 16, passage: 16}}, sts: {maxLength: 16}},
          // Per-process batch sizes: the global batches are 8 IR queries and 6 STS pairs.
          sampler: {name: 'dynamic', options: {batchSizes: {ir: 4, sts: 3}}},
          epochs: 1, learningRate: 1e-3, seed: 5, checkpoint: {everyEpoch: true, keepLast: 2},
          ...extra,
        },
      }))
      return file
    }
    const file = configFile('out')
    const events = join(dir, 'events.ndjson')
    const r = await runCliAsync(['train', '--config', file, '--backend', 'torch', '--nproc-per-node', '2', '--json', '--events', events], {cwd: REPO_ROOT})
    assert.equal(r.status, 0, r.stderr + r.stdout)
    const result = (r.json as any).result
    // 32 IR rows / 8 + 24 STS pairs / 6 = 8 global batches.
    assert.equal(result.summary.steps, 8)
    assert.equal(result.summary.examples, 32 + 24, 'rank 0 reports the examples of both ranks')
    assert.ok(existsSync(join(dir, 'out', 'model.safetensors')))
    const state = JSON.parse(readFileSync(join(dir, 'out-checkpoints', 'checkpoint-8', 'trainer_state.json'), 'utf8'))
    assert.equal(state.worldSize, 2)
    const lines = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(lines.filter((e) => e.type === 'step').length, 8, 'one event stream (rank 0)')

    const single = await runCliAsync(['train', '--config', file, '--backend', 'torch', '--json', '--resume', join(dir, 'out-checkpoints', 'checkpoint-8')], {cwd: REPO_ROOT})
    assert.equal(single.status, 2, single.stderr + single.stdout)
    assert.match((single.json as any).message, /checkpoint was trained by 2 process\(es\), this run has 1/)

    // Stopped after 4 steps and resumed by 2 ranks: the same model as the uninterrupted run, to the bit.
    const part = await runCliAsync(['train', '--config', configFile('part', {maxSteps: 4}), '--backend', 'torch', '--nproc-per-node', '2', '--json'], {cwd: REPO_ROOT})
    assert.equal(part.status, 0, part.stderr + part.stdout)
    const rest = await runCliAsync(['train', '--config', configFile('part'), '--backend', 'torch', '--nproc-per-node', '2', '--json', '--resume', join(dir, 'part-checkpoints', 'checkpoint-4')], {cwd: REPO_ROOT})
    assert.equal(rest.status, 0, rest.stderr + rest.stdout)
    assert.deepEqual((rest.json as any).result.summary.lossLast, result.summary.lossLast)
    assert.ok(readFileSync(join(dir, 'part', 'model.safetensors')).equals(readFileSync(join(dir, 'out', 'model.safetensors'))), 'resumed model differs from the uninterrupted one')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
